"""The scale-out online store: Redis, shared by many servers and projects.

Each entity key is one string ``fl:"<namespace>":online:"<view>":<key json>``
holding ``<event µs> US <created µs> US <JSON payload>`` (US is the ASCII unit
separator, which JSON always escapes). Names are JSON-quoted so that no
view's prefix is another's. Writes run a Lua script that compares the stored
``(event, created)`` before ``SET``, so a write is atomic per key however many
writers race; the script goes by EVALSHA for a chunk of keys at a time,
several chunks per pipeline. Reads are one ``MGET`` per chunk of keys.

Multi-key scripts need every key in one slot: Redis Cluster is not supported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import redis

from fourloops.errors import StoreError
from fourloops.storage.online.base import OnlineStoreBase

if TYPE_CHECKING:
    from fourloops.storage.online.encoding import EncodedRows

__all__ = ["RedisOnlineStore"]

#: Keys handled by one script call.
SCRIPT_KEYS = 500
#: Script calls sent per pipeline round trip.
PIPELINE_CALLS = 20
#: Keys read per MGET.
READ_CHUNK_KEYS = 10_000
#: Keys unlinked per round while deleting a view.
SCAN_COUNT = 1_000
#: Seconds to wait on connect and on every reply before failing.
SOCKET_TIMEOUT_S = 30.0

# ARGV[1] holds one record per key, in KEYS order: the value to store,
# "event_us US created_us US payload", followed by RS. One argument instead of
# three per key is what keeps the client fast. Times are integers below 2**53
# (or the -2**62 "missing created" marker), exact in Lua's doubles.
_MONOTONIC_SET = """
local blob = ARGV[1]
local at = 1
local written = 0
for _, key in ipairs(KEYS) do
  local us1 = string.find(blob, '\\31', at, true)
  local us2 = string.find(blob, '\\31', us1 + 1, true)
  local rs = string.find(blob, '\\30', us2 + 1, true)
  local event = tonumber(string.sub(blob, at, us1 - 1))
  local created = tonumber(string.sub(blob, us1 + 1, us2 - 1))
  local newer = true
  local stored = redis.call('GET', key)
  if stored then
    local s1 = string.find(stored, '\\31', 1, true)
    local s2 = string.find(stored, '\\31', s1 + 1, true)
    local stored_event = tonumber(string.sub(stored, 1, s1 - 1))
    local stored_created = tonumber(string.sub(stored, s1 + 1, s2 - 1))
    newer = event > stored_event or (event == stored_event and created > stored_created)
  end
  if newer then
    redis.call('SET', key, string.sub(blob, at, rs - 1))
    written = written + 1
  end
  at = rs + 1
end
return written
"""
_UNIT, _RECORD = "\x1f", "\x1e"
_UNIT_BYTES = _UNIT.encode()


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisOnlineStore(OnlineStoreBase):
    """Online store in Redis; ``namespace`` prefixes every key it touches.

    ``url`` is a redis-py URL, ``redis://host:port/db`` (``rediss://`` for TLS).
    The server is pinged on open, so a wrong URL fails here with
    :class:`~fourloops.errors.StoreError`.
    """

    def __init__(self, url: str, *, namespace: str = "default") -> None:
        self.url = url
        self.namespace = namespace
        self._prefix = f"fl:{json.dumps(namespace)}:"
        try:
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=SOCKET_TIMEOUT_S,
                socket_connect_timeout=SOCKET_TIMEOUT_S,
            )
            self._client.ping()
        except (redis.RedisError, ValueError) as err:
            raise StoreError(f"cannot reach the Redis online store {url!r}: {err}") from err
        self._script = self._client.register_script(_MONOTONIC_SET)

    def _view_prefix(self, view: str) -> str:
        return f"{self._prefix}online:{json.dumps(view)}:"

    def _upsert(self, view: str, rows: EncodedRows) -> int:
        prefix = self._view_prefix(view)
        stored = 0
        try:
            pipe = self._client.pipeline(transaction=False)
            calls = 0
            for start in range(0, len(rows.keys), SCRIPT_KEYS):
                stop = start + SCRIPT_KEYS
                blob = "".join(
                    f"{event}{_UNIT}{created}{_UNIT}{payload}{_RECORD}"
                    for event, created, payload in zip(
                        rows.event_us[start:stop],
                        rows.created_us[start:stop],
                        rows.payloads[start:stop],
                        strict=True,
                    )
                )
                keys = [prefix + key for key in rows.keys[start:stop]]
                self._script(keys=keys, args=[blob], client=pipe)
                calls += 1
                if calls == PIPELINE_CALLS:
                    stored += sum(pipe.execute())
                    calls = 0
            if calls:
                stored += sum(pipe.execute())
        except redis.RedisError as err:
            raise StoreError(f"writing view {view!r} to {self.url!r} failed: {err}") from err
        return stored

    def _fetch(self, view: str, keys: list[str]) -> Mapping[str, tuple[int, str | bytes]]:
        prefix = self._view_prefix(view)
        found: dict[str, tuple[int, str | bytes]] = {}
        try:
            for start in range(0, len(keys), READ_CHUNK_KEYS):
                part = keys[start : start + READ_CHUNK_KEYS]
                values = self._client.mget([prefix + key for key in part])
                for key, value in zip(part, values, strict=True):
                    if isinstance(value, bytes):  # None: not stored
                        event, _, payload = value.split(_UNIT_BYTES, 2)
                        found[key] = (int(event), payload)
        except redis.RedisError as err:
            raise StoreError(f"reading view {view!r} from {self.url!r} failed: {err}") from err
        return found

    def _set_watermark_us(self, view: str, micros: int) -> None:
        try:
            self._client.hset(self._prefix + "watermarks", view, micros)
        except redis.RedisError as err:
            raise StoreError(f"setting the watermark of {view!r} failed: {err}") from err

    def _watermark_us(self, view: str) -> int | None:
        try:
            raw = self._client.hget(self._prefix + "watermarks", view)
        except redis.RedisError as err:
            raise StoreError(f"reading the watermark of {view!r} failed: {err}") from err
        return None if raw is None else int(raw)

    def delete_view(self, view: str) -> None:
        """Remove every row and the watermark of ``view`` in this namespace."""
        try:
            self._unlink_matching(_glob_escape(self._view_prefix(view)) + "*")
            self._client.hdel(self._prefix + "watermarks", view)
        except redis.RedisError as err:
            raise StoreError(f"deleting view {view!r} from {self.url!r} failed: {err}") from err

    def drop_namespace(self) -> int:
        """Remove every key of this namespace (all views); returns how many."""
        try:
            return self._unlink_matching(_glob_escape(self._prefix) + "*")
        except redis.RedisError as err:
            raise StoreError(f"dropping namespace {self.namespace!r} failed: {err}") from err

    def _unlink_matching(self, pattern: str) -> int:
        removed = 0
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= SCAN_COUNT:
                removed += int(self._client.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(self._client.unlink(*batch))
        return removed

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
