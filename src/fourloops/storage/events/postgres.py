"""The scale-out event store: PostgreSQL, events partitioned by day.

Tables (created when the store opens, in the connection's ``search_path``):

* ``prediction_events``, range-partitioned on ``at`` with one partition per UTC
  day (``prediction_events_pYYYYMMDD``), created on demand before the first
  event of a day is written (and today's and tomorrow's when the store opens).
  Indexes on ``(model, at)`` and ``request_id``. There is no default partition,
  so dropping old days is a plain ``DROP TABLE``.
* ``prediction_labels``, primary key ``request_id``: the first label wins
  (``INSERT ... ON CONFLICT DO NOTHING``); ``known`` records whether the event
  existed when the label arrived.

:meth:`PostgresEventStore.append` sends a group with ``COPY`` in one
transaction and returns after the commit. With ``fsync=True`` (the default)
the commit waits for the WAL flush (``synchronous_commit`` on); with
``fsync=False`` the session uses ``synchronous_commit = off``: a committed group
survives the death of the client and of any backend process, but a crash of
the database machine can lose the last few hundred milliseconds.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import polars as pl
import pyarrow as pa

from fourloops.clock import require_aware
from fourloops.errors import ConfigError, StoreError
from fourloops.storage.events.base import (
    SCAN_SCHEMA,
    EventStoreBase,
    Label,
    LabelStats,
    PredictionEvent,
    check_window,
    dumps_json,
    first_labels,
    with_corrupt_count,
)
from fourloops.storage.events.columnar import (
    RAW_EVENT_COLUMNS,
    RAW_LABEL_COLUMNS,
    CompactionReport,
    EventSchema,
    EventTables,
    raw_events_frame,
    raw_labels_frame,
)
from fourloops.storage.events.decisions import refuse_bad_decisions

__all__ = ["COMPACT_CHUNK", "COMPACT_OVERLAP", "PostgresEventStore"]

T = TypeVar("T")

#: Seconds to wait for a connection.
CONNECT_TIMEOUT_S = 10
#: Advisory lock key serialising DDL (schema and partition creation) across processes.
_DDL_LOCK = 0x466C4576  # "FlEv"

_SCHEMA_DDL = [
    """
    CREATE TABLE IF NOT EXISTS prediction_events (
        request_id  text NOT NULL,
        unit_id     text,
        at          timestamptz NOT NULL,
        model       text NOT NULL,
        version     bigint NOT NULL,
        route       text NOT NULL,
        features    jsonb NOT NULL,
        output      jsonb NOT NULL,
        propensity  double precision,
        latency_ms  double precision,
        fallback    boolean NOT NULL,
        extra       jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
    ) PARTITION BY RANGE (at)
    """,
    "CREATE INDEX IF NOT EXISTS prediction_events_model_at ON prediction_events (model, at)",
    "CREATE INDEX IF NOT EXISTS prediction_events_request_id ON prediction_events (request_id)",
    "CREATE INDEX IF NOT EXISTS prediction_events_recorded ON prediction_events (recorded_at, request_id)",
    """
    CREATE TABLE IF NOT EXISTS prediction_labels (
        request_id  text PRIMARY KEY,
        value       jsonb NOT NULL,
        at          timestamptz NOT NULL,
        known       boolean NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX IF NOT EXISTS prediction_labels_recorded ON prediction_labels (recorded_at, request_id)",
]
_COPY = (
    "COPY prediction_events (request_id, unit_id, at, model, version, route, features, output,"
    " propensity, latency_ms, fallback, extra) FROM STDIN"
)
_LABELS = """
    INSERT INTO prediction_labels (request_id, value, at, known)
    SELECT u.request_id, u.value, u.at,
           EXISTS (SELECT 1 FROM prediction_events e WHERE e.request_id = u.request_id)
    FROM unnest(%s::text[], %s::jsonb[], %s::timestamptz[]) AS u(request_id, value, at)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING known
"""
_SCAN = """
    SELECT e.request_id, e.unit_id, e.at, e.model, e.version, e.route, e.features::text,
           e.output::text, e.propensity, e.latency_ms, e.fallback, e.extra::text,
           l.value::text, l.at
    FROM prediction_events e LEFT JOIN prediction_labels l ON l.request_id = e.request_id
"""


_EXPORT_EVENTS = """
    SELECT request_id, unit_id, at, model, version, route, features::text, output::text,
           propensity, latency_ms, fallback, extra::text, recorded_at
    FROM prediction_events WHERE (recorded_at, request_id) > (%s, %s)
    ORDER BY recorded_at, request_id LIMIT %s
"""
#: A label with the model, UTC day (the partition of its compacted event) and UTC hour of its
#: prediction. When the request id's events lie in different hours (a retry stamped a moment later)
#: or models, none is named: compaction keeps the earliest event, which need not be the first
#: recorded, and a label of no named place is read with every day's and hour's events.
_EXPORT_LABELS = """
    SELECT l.request_id, l.value::text, l.at, p.model,
           to_char(p.at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
           extract(hour FROM p.at AT TIME ZONE 'UTC')::int, l.recorded_at
    FROM prediction_labels l
    LEFT JOIN LATERAL (
        SELECT min(e.model) AS model, min(e.at) AS at
        FROM prediction_events e WHERE e.request_id = l.request_id
        HAVING count(DISTINCT (e.model, date_trunc('hour', e.at AT TIME ZONE 'UTC'))) = 1
    ) p ON true
    WHERE (l.recorded_at, l.request_id) > (%s, %s)
    ORDER BY l.recorded_at, l.request_id LIMIT %s
"""
#: Events exported per round trip.
COMPACT_CHUNK = 200_000
#: How far before the last watermark an export starts again (late commits are seen; repeats dropped).
COMPACT_OVERLAP = timedelta(minutes=1)
_NO_EVENTS = pl.DataFrame(schema=RAW_EVENT_COLUMNS)
_NO_LABELS = pl.DataFrame(schema=RAW_LABEL_COLUMNS)


def _fetch(query: str, params: tuple[Any, ...], conn: Any) -> list[tuple[Any, ...]]:
    return list(conn.execute(query, params).fetchall())


def _libpq(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ConfigError(f"unsupported PostgreSQL URL scheme {parts.scheme!r} in event store URL")
    return urlunsplit(parts._replace(scheme="postgresql"))


class PostgresEventStore(EventStoreBase):
    """Event store in PostgreSQL (``postgresql+psycopg://user@host:port/db``).

    One connection per store and process; calls from several threads are serialised.
    """

    def __init__(self, url: str, *, fsync: bool = True) -> None:
        try:
            import psycopg
        except ImportError as err:
            raise ConfigError(
                "the PostgreSQL event store needs psycopg: pip install 'fourloops[postgres]'"
            ) from err
        self._psycopg = psycopg
        self.url = url
        self.fsync = fsync
        self._conninfo = _libpq(url)
        self._lock = threading.Lock()
        self._conn: Any = None
        self._pid = 0
        self._days: set[date] = set()
        self.corrupt_records = 0

        def create(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                for ddl in _SCHEMA_DDL:
                    conn.execute(ddl)

        self._run(create)
        today = datetime.now(UTC).date()
        self._ensure_partitions({today, today + timedelta(days=1)})

    def __repr__(self) -> str:
        return f"PostgresEventStore(url={self._safe_url()!r}, fsync={self.fsync})"

    def _safe_url(self) -> str:
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))

    # -- connection ------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
            return self._conn
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        conn = self._psycopg.connect(self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        if not self.fsync:
            conn.execute("SET synchronous_commit TO off")
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` under the store's lock; psycopg errors become StoreError.

        A connection found broken (the server restarted or failed over, the
        network dropped it, an idle timeout closed it) is reopened and the work
        retried once, so such an event costs no request an error. Every piece
        of work is one transaction: when the connection broke before the commit
        was confirmed, the retry may store a group that had in fact committed
        (the log is at-least-once for groups whose outcome was unknown).
        """
        with self._lock:
            for attempt in (1, 2):
                try:
                    return work(self._connect())
                except self._psycopg.Error as err:
                    broken = self._conn is not None and self._conn.broken
                    if broken:
                        self._conn = None
                        if attempt == 1:
                            continue
                    raise StoreError(
                        f"event store {self._safe_url()}: {err.__class__.__name__}: {err}".strip()
                    ) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_partitions(self, days: set[date]) -> None:
        missing = days - self._days
        if not missing:
            return

        def create(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                for day in sorted(missing):
                    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS prediction_events_p{day:%Y%m%d} "
                        f"PARTITION OF prediction_events FOR VALUES FROM ('{start.isoformat()}') "
                        f"TO ('{(start + timedelta(days=1)).isoformat()}')"
                    )

        self._run(create)
        self._days |= missing

    # -- writing ---------------------------------------------------------------------------
    def append(self, events: Sequence[PredictionEvent]) -> None:
        """Insert the group with one ``COPY`` in one transaction; returns after the commit."""
        if not events:
            return
        refuse_bad_decisions(events)  # a decision's distribution must be one to evaluate it by
        rows = [
            (
                e.request_id,
                e.unit_id,
                e.at,
                e.model,
                e.version,
                e.route,
                dumps_json(e.features, what="features"),
                dumps_json(e.output, what="output"),
                e.propensity,
                e.latency_ms,
                e.fallback,
                dumps_json(e.extra, what="extra"),
            )
            for e in events
        ]
        self._ensure_partitions({e.at.date() for e in events})
        try:
            self._copy(rows)
        except StoreError as err:
            # A day partition dropped behind our back (retention): recreate it once and retry.
            if not isinstance(err.__cause__, self._psycopg.errors.CheckViolation):
                raise
            self._days.clear()
            self._ensure_partitions({e.at.date() for e in events})
            self._copy(rows)

    def _copy(self, rows: list[tuple[Any, ...]]) -> None:
        def copy_rows(conn: Any) -> None:
            with conn.transaction():
                with conn.cursor() as cur, cur.copy(_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)

        self._run(copy_rows)

    def add_labels(self, labels: Sequence[Label]) -> LabelStats:
        """Record labels in one statement; the first label per request id wins."""
        firsts, duplicates = first_labels(labels)
        if not firsts:
            return LabelStats(duplicates=duplicates)
        ids = [label.request_id for label in firsts]
        values = [dumps_json(label.value, what=f"label {label.request_id!r}") for label in firsts]
        ats = [label.at for label in firsts]
        known = [
            row[0] for row in self._run(lambda conn: conn.execute(_LABELS, (ids, values, ats)).fetchall())
        ]
        inserted = sum(known)
        return LabelStats(
            inserted=inserted,
            duplicates=duplicates + len(firsts) - len(known),
            unknown=len(known) - inserted,
        )

    def models_of(self, request_ids: Sequence[str]) -> dict[str, str]:
        """The model of each id's (first) event; ids with no event are left out."""
        if not request_ids:
            return {}
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT DISTINCT ON (request_id) request_id, model FROM prediction_events "
                "WHERE request_id = ANY(%s) ORDER BY request_id, recorded_at",
                (list(request_ids),),
            ).fetchall()
        )
        return {row[0]: row[1] for row in rows}

    # -- reading ---------------------------------------------------------------------------
    def scan(
        self, *, model: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pa.Table:
        """All events matching the filters, oldest first, joined with their label."""
        since, until = check_window(since, until)
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("e.model = %s", model), ("e.at >= %s", since), ("e.at < %s", until)):
            if value is not None:
                where.append(clause)
                params.append(value)
        query = _SCAN + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY e.at, e.request_id"
        rows = self._run(lambda conn: conn.execute(query, params).fetchall())
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in SCAN_SCHEMA]
        table = pa.Table.from_arrays(
            [pa.array(list(col), type=fld.type) for col, fld in zip(columns, SCAN_SCHEMA, strict=True)],
            schema=SCAN_SCHEMA,
        )
        return with_corrupt_count(table, 0)

    def count(self) -> int:
        """Number of events stored."""
        row = self._run(lambda conn: conn.execute("SELECT count(*) FROM prediction_events").fetchone())
        return int(row[0])

    def request_ids(self, since: datetime) -> list[str]:
        """Request ids of the events predicted at or after ``since``, oldest first."""
        since = require_aware(since, "since")
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT request_id FROM prediction_events WHERE at >= %s ORDER BY at, request_id", (since,)
            ).fetchall()
        )
        return [row[0] for row in rows]

    # -- compaction ------------------------------------------------------------------------
    def compact(
        self,
        tables: EventTables,
        schemas: Mapping[str, EventSchema],
        *,
        chunk_events: int = COMPACT_CHUNK,
        overlap: timedelta = COMPACT_OVERLAP,
    ) -> CompactionReport:
        """Export what was recorded since the last compaction to ``tables`` as typed Parquet.

        Rows are read in ``recorded_at`` order from a little before the last
        watermark (``overlap``: a transaction that committed late is still
        seen); rows read twice are dropped as repeats by request id, so the
        export stays exactly once.
        """
        total = CompactionReport()
        key = self._safe_url()
        with tables.locked() as manifest:
            marks: dict[str, str | None] = manifest.setdefault("postgresql", {}).setdefault(
                key, {"events": None, "labels": None}
            )
            for kind, query, columns in (
                ("events", _EXPORT_EVENTS, RAW_EVENT_COLUMNS),
                ("labels", _EXPORT_LABELS, RAW_LABEL_COLUMNS),
            ):
                mark = marks.get(kind)
                since = datetime.fromisoformat(mark) - overlap if mark else datetime(1970, 1, 1, tzinfo=UTC)
                for rows, newest in self._export_chunks(query, since, chunk_events):
                    names = [c for c in columns if c != "position"]
                    frame = pl.DataFrame(
                        rows, schema=names, orient="row", infer_schema_length=None
                    ).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("position"))
                    if kind == "events":
                        report = tables.append(raw_events_frame(frame), _NO_LABELS, schemas, manifest)
                    else:
                        report = tables.append(_NO_EVENTS, raw_labels_frame(frame), schemas, manifest)
                    total.add(report)
                    marks[kind] = newest.isoformat()
                    tables.save_manifest(manifest)
        return total

    def _export_chunks(
        self, query: str, since: datetime, size: int
    ) -> Iterator[tuple[list[tuple[Any, ...]], datetime]]:
        """Rows recorded after ``since`` in order, ``size`` at a time, with the newest recorded time.

        Pages by (recorded_at, request_id): a group written in one transaction
        shares its recorded_at, however many rows it has.
        """
        after: tuple[datetime, str] = (since, "")
        while True:
            chunk = self._run(functools.partial(_fetch, query, (*after, size)))
            if not chunk:
                return
            after = (chunk[-1][-1], chunk[-1][0])
            yield [row[:-1] for row in chunk], after[0]
            if len(chunk) < size:
                return

    def ping(self) -> None:
        """One round trip to the database (``SELECT 1``)."""
        self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
