"""Request ids: no two predictions are logged under one id.

A label finds its prediction by request id, so two predictions under one id
would make a label score both. The server therefore *claims* the id of every
event before it predicts: an id already claimed (a client resending its id,
or reusing another request's) is answered ``409 duplicate_request_id`` naming
it, and nothing is logged for that request. A claim is released when the
request is not acknowledged after all (its model and the fallback failed,
the event log refused it), so that the client's retry is answered.

Claims are remembered for more than ``window`` seconds (and at most twice
that), or for the last ``max_ids / 2`` ids if fewer: in-process by default
(:class:`RequestIdLedger`, seeded at start from the ids the event log
recorded within the window, so a restart does not forget), or in Redis
(:class:`RedisRequestIds`), shared by every worker and server of a project.
Past the window a reused id is accepted again; the event tables still keep
the first event per id, so evaluation stays exactly-once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from fourloops.errors import FourloopsError, StoreError

__all__ = ["DuplicateRequestId", "RedisRequestIds", "RequestIdLedger", "RequestIds"]

#: Seconds to wait on connecting to Redis and on every reply.
SOCKET_TIMEOUT_S = 5.0


class DuplicateRequestId(FourloopsError):
    """A request reused the id of a prediction already logged (answered 409)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request_id {request_id!r} was already used by a logged prediction; "
            "send a new id for a new request (the first answer is in the event log)"
        )
        self.request_id = request_id


class RequestIds(Protocol):
    """Where claims on request ids are kept."""

    #: Whether a claim is in-process memory only (may be made on the event loop).
    local: bool

    def claim(self, ids: Sequence[str]) -> str | None:
        """Claim all of ``ids`` at once, or none: the first id already claimed (then nothing changes)."""
        ...

    def release(self, ids: Iterable[str]) -> None:
        """Forget claims whose request was not acknowledged."""
        ...


class RequestIdLedger:
    """Claims in this process: two generations of sets, turned over by age and by size.

    Time is cut into slots of ``window`` seconds; the current generation
    holds the ids claimed in the current slot, the previous one those of the
    slot before, and older ones are forgotten. An id is therefore remembered
    for more than ``window`` and at most ``2 * window`` seconds. When the
    current generation reaches ``max_ids / 2`` ids it turns over early (a new
    slot starts), so memory stays under ``max_ids`` ids (about 100 bytes each)
    and the last ``max_ids / 2`` ids are always remembered. A claim costs two
    set lookups under a lock.
    """

    local = True

    def __init__(
        self,
        window: float,
        *,
        max_ids: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        if max_ids < 2:
            raise ValueError(f"max_ids must be at least 2, got {max_ids}")
        self.window = window
        self.max_ids = max_ids
        self._clock = clock
        self._lock = threading.Lock()
        self._current: set[str] = set()
        self._previous: set[str] = set()
        self._start = clock()  # when the current generation's slot began

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def seed(self, ids: Iterable[str]) -> None:
        """Remember ids logged before this process started (oldest first); they count as claimed now."""
        with self._lock:
            for rid in ids:
                self._turn_over()
                self._current.add(rid)

    def _turn_over(self) -> None:
        """Start a new slot if the current one is over or full (caller holds the lock)."""
        now = self._clock()
        slots = int((now - self._start) // self.window)
        if slots >= 2:  # nothing claimed since the slot before last: forget everything
            self._previous, self._current = set(), set()
            self._start += slots * self.window
        elif slots == 1:
            self._previous, self._current = self._current, set()
            self._start += self.window
        elif len(self._current) >= self.max_ids // 2:
            self._previous, self._current = self._current, set()
            self._start = now

    def claim(self, ids: Sequence[str]) -> str | None:
        with self._lock:
            self._turn_over()
            current, previous = self._current, self._previous
            for n, rid in enumerate(ids):
                if rid in current or rid in previous:
                    current.difference_update(ids[:n])
                    return rid
                current.add(rid)
            return None

    def release(self, ids: Iterable[str]) -> None:
        with self._lock:
            for rid in ids:
                self._current.discard(rid)
                self._previous.discard(rid)


class RedisRequestIds:
    """Claims in Redis, shared by every server of a project: one ``SET NX PX`` per id.

    Keys are ``fl:"<namespace>":rid:"<id>"`` and expire after ``window``
    seconds, so Redis holds only the ids of the window. A request with
    several ids claims them in one round trip and gives back the ones it got
    if any was taken. Redis failures raise :class:`~fourloops.errors.StoreError`
    (the request is answered 503: nothing is logged without its claim).
    """

    local = False

    def __init__(self, url: str, window: float, *, namespace: str = "default") -> None:
        import redis

        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.url = url
        self.window = window
        self.namespace = namespace
        self._prefix = f"fl:{json.dumps(namespace)}:rid:"
        self._window_ms = max(1, round(window * 1000))
        self._redis_error: type[Exception] = redis.RedisError
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S
            )
            self._client.ping()
        except (redis.RedisError, ValueError) as err:
            raise StoreError(f"cannot reach the Redis request-id store {url!r}: {err}") from err

    def __repr__(self) -> str:
        return f"RedisRequestIds(url={self.url!r}, window={self.window!r}, namespace={self.namespace!r})"

    def key(self, request_id: str) -> str:
        """The Redis key holding the claim on ``request_id``."""
        return self._prefix + json.dumps(request_id)

    def claim(self, ids: Sequence[str]) -> str | None:
        if not ids:
            return None
        try:
            pipe = self._client.pipeline(transaction=False)
            for rid in ids:
                pipe.set(self.key(rid), b"1", nx=True, px=self._window_ms)
            got = pipe.execute()
            taken = [rid for rid, ok in zip(ids, got, strict=True) if not ok]
            if taken:
                mine = [self.key(rid) for rid, ok in zip(ids, got, strict=True) if ok]
                if mine:
                    self._client.delete(*mine)
                return taken[0]
        except self._redis_error as err:
            raise StoreError(f"request-id store {self.url!r} failed: {err}") from err
        return None

    def release(self, ids: Iterable[str]) -> None:
        keys = [self.key(rid) for rid in ids]
        if not keys:
            return
        try:
            self._client.delete(*keys)
        except self._redis_error as err:
            raise StoreError(f"request-id store {self.url!r} failed to release claims: {err}") from err

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
