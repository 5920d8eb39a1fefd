"""The embedded online store: one SQLite file, safe across processes.

The file runs in WAL mode with a busy timeout, so a materialisation job and
several server workers can share it. Each write is one ``BEGIN IMMEDIATE``
transaction of monotonic upserts (``INSERT ... ON CONFLICT DO UPDATE ...
WHERE`` newer), so concurrent writers can never replace a newer row.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourloops.errors import ConfigError, StoreError
from fourloops.storage.online.base import OnlineStoreBase

if TYPE_CHECKING:
    from fourloops.storage.online.encoding import EncodedRows

__all__ = ["SQLiteOnlineStore", "sqlite_path"]

#: Seconds a connection waits for another writer's lock before failing.
BUSY_TIMEOUT_S = 30.0
#: Upper bound on keys per ``IN (...)`` read query.
READ_CHUNK_KEYS = 5_000

_MEMORY = ":memory:"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS fl_online_rows (
    namespace TEXT NOT NULL,
    view TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    event_us INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (namespace, view, entity_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fl_online_watermarks (
    namespace TEXT NOT NULL,
    view TEXT NOT NULL,
    until_us INTEGER NOT NULL,
    PRIMARY KEY (namespace, view)
);
"""
_UPSERT = """
INSERT INTO fl_online_rows (namespace, view, entity_key, event_us, created_us, payload)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (namespace, view, entity_key) DO UPDATE SET
    event_us = excluded.event_us,
    created_us = excluded.created_us,
    payload = excluded.payload
WHERE excluded.event_us > fl_online_rows.event_us
   OR (excluded.event_us = fl_online_rows.event_us
       AND excluded.created_us > fl_online_rows.created_us)
"""


def sqlite_path(url: str) -> str:
    """The file path (or ``:memory:``) named by a ``sqlite://`` URL.

    As in SQLAlchemy, ``sqlite:///rel.db`` is relative to the working folder
    and ``sqlite:////abs/path.db`` absolute.

    >>> sqlite_path("sqlite:///data/online.db"), sqlite_path("sqlite://:memory:")
    ('data/online.db', ':memory:')
    """
    if not url.startswith("sqlite://"):
        raise ConfigError(f"not a sqlite URL: {url!r}")
    rest = url[len("sqlite://") :]
    if rest in ("", _MEMORY, "/" + _MEMORY):
        return _MEMORY
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(f"a sqlite URL reads sqlite:///path/to/file.db, got {url!r}")
    return rest[1:]


class SQLiteOnlineStore(OnlineStoreBase):
    """Online store in a SQLite file (or in memory, for tests).

    >>> from datetime import datetime, timedelta, timezone
    >>> import polars as pl
    >>> store = SQLiteOnlineStore("sqlite://:memory:")
    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> rows = pl.DataFrame({"origin": ["EWR"], "ts": [t], "delay": [4.5]})
    >>> store.write("airport", rows, keys=["origin"], timestamp="ts", features=["delay"])
    WriteStats(written=1, skipped_older=0)
    >>> [v] = store.read("airport", [("EWR",)], ttl=timedelta(hours=1), now=t)
    >>> v.status, v.values
    (<Status.OK: 'ok'>, {'delay': 4.5})
    >>> store.close()
    """

    local_reads = True  # a file on this machine: reads take microseconds

    def __init__(self, url: str, *, namespace: str = "default") -> None:
        self.url = url
        self.namespace = namespace
        self._path = sqlite_path(url)
        self._lock = threading.Lock()
        try:
            if self._path != _MEMORY:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self._path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open the SQLite online store {url!r}: {err}") from err
        limit = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._read_chunk = max(1, min(READ_CHUNK_KEYS, limit - 2))

    def _upsert(self, view: str, rows: EncodedRows) -> int:
        params = [
            (self.namespace, view, key, event, created, payload)
            for key, event, created, payload in zip(
                rows.keys, rows.event_us, rows.created_us, rows.payloads, strict=True
            )
        ]
        # B-tree inserts in key order touch each page once
        params.sort(key=itemgetter(2))
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    before = conn.total_changes
                    conn.executemany(_UPSERT, params)
                    stored = conn.total_changes - before
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise StoreError(f"writing view {view!r} to {self.url!r} failed: {err}") from err
        return stored

    def _fetch(self, view: str, keys: list[str]) -> Mapping[str, tuple[int, str | bytes]]:
        found: dict[str, tuple[int, str | bytes]] = {}
        with self._lock:
            try:
                for start in range(0, len(keys), self._read_chunk):
                    part = keys[start : start + self._read_chunk]
                    marks = ",".join("?" * len(part))
                    cursor = self._conn.execute(
                        "SELECT entity_key, event_us, payload FROM fl_online_rows"
                        f" WHERE namespace = ? AND view = ? AND entity_key IN ({marks})",
                        (self.namespace, view, *part),
                    )
                    for key, event_us, payload in cursor:
                        found[key] = (event_us, payload)
            except sqlite3.Error as err:
                raise StoreError(f"reading view {view!r} from {self.url!r} failed: {err}") from err
        return found

    def _set_watermark_us(self, view: str, micros: int) -> None:
        self._execute(
            "INSERT INTO fl_online_watermarks (namespace, view, until_us) VALUES (?, ?, ?)"
            " ON CONFLICT (namespace, view) DO UPDATE SET until_us = excluded.until_us",
            (self.namespace, view, micros),
            doing=f"setting the watermark of {view!r}",
        )

    def _watermark_us(self, view: str) -> int | None:
        rows = self._execute(
            "SELECT until_us FROM fl_online_watermarks WHERE namespace = ? AND view = ?",
            (self.namespace, view),
            doing=f"reading the watermark of {view!r}",
        )
        return int(rows[0][0]) if rows else None

    def delete_view(self, view: str) -> None:
        """Remove every row and the watermark of ``view`` in this namespace."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for table in ("fl_online_rows", "fl_online_watermarks"):
                        conn.execute(
                            f"DELETE FROM {table} WHERE namespace = ? AND view = ?",
                            (self.namespace, view),
                        )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise StoreError(f"deleting view {view!r} from {self.url!r} failed: {err}") from err

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, params: tuple[object, ...], *, doing: str) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as err:
                raise StoreError(f"{doing} in {self.url!r} failed: {err}") from err
