"""The DuckDB batch engine (the embedded default).

The point-in-time join is one DuckDB query: each feature view is turned into a
relation whose rows carry a packed sort key, and the entity rows are matched to
each view with a chained ``ASOF LEFT JOIN`` (see :mod:`fourloops.engines.duckdb_pit`
for why that match is exactly the rule in :mod:`fourloops.engines.base`).

:meth:`DuckDBEngine.prepare_view` writes, once, a compacted copy of a view (only
the rows that can ever win, sorted, with a unique per-key sort time); joins on
prepared views skip the bounds pass and the window functions.

In memory, the query returns only the entity row id, the feature columns and a
status byte per view, in DuckDB's (unordered) ASOF output order; the features
are put back in input order with an inverse permutation, and the entity columns
are taken from the caller's Arrow table as they are. ``out=`` writes that table
to Parquet, unless the engine has a ``memory_limit``: then the ordered result
streams from DuckDB (which may spill to ``temp_directory``) into the Parquet
writer, counting outcomes on the way.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fourloops.engines import duckdb_checks as checks
from fourloops.engines import duckdb_pit as sql
from fourloops.engines.base import JoinStats, ViewJoin, ViewStats
from fourloops.engines.duckdb_events import CHUNK_EVENTS
from fourloops.engines.duckdb_scan import DuckDBScan, Joined
from fourloops.errors import SchemaError, SourceError
from fourloops.storage.events.columnar import EventTables

__all__ = ["DuckDBEngine"]

_FILE_COLUMN = "__fl_file"
_UTC_US = pa.timestamp("us", tz="UTC")
_BATCH_ROWS = 1 << 20


class DuckDBEngine:
    """Point-in-time joins on DuckDB.

    Parameters
    ----------
    memory_limit:
        DuckDB ``memory_limit`` (e.g. ``"4GB"``); beyond it, joins spill to disk.
    threads:
        Number of DuckDB worker threads (default: all cores).
    temp_directory:
        Where DuckDB spills (default: DuckDB's own choice).
    chunk_events:
        Events a part of a monitoring scan of the event log joins with its labels at most (whole
        days, or ranges of a busy day's hours; see
        :func:`~fourloops.engines.duckdb_events.register_chunks`): the join's hash table holds one
        part's labels, so its memory grows neither with the days scanned nor with the traffic.

    Example
    -------
    >>> from datetime import datetime, timedelta, timezone
    >>> import pyarrow as pa
    >>> utc = timezone.utc
    >>> view = pa.table({"id": [1, 1], "ts": pa.array(
    ...     [datetime(2024, 1, 1, tzinfo=utc), datetime(2024, 1, 3, tzinfo=utc)],
    ...     pa.timestamp("us", tz="UTC")), "x": [10, 30]})
    >>> entities = pa.table({"id": [1, 1, 2], "t": pa.array(
    ...     [datetime(2024, 1, 2, tzinfo=utc), datetime(2024, 1, 9, tzinfo=utc),
    ...      datetime(2024, 1, 2, tzinfo=utc)], pa.timestamp("us", tz="UTC"))})
    >>> vj = ViewJoin("stats", view, ["id"], "ts", timedelta(days=3), {"x": "stats_x"})
    >>> table, stats = DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[vj])
    >>> table.column("stats_x").to_pylist()
    [10, None, None]
    >>> stats.views["stats"]
    ViewStats(name='stats', found=1, missing=1, expired=1)
    """

    name = "duckdb"

    def __init__(
        self,
        memory_limit: str | None = None,
        threads: int | None = None,
        temp_directory: str | None = None,
        chunk_events: int = CHUNK_EVENTS,
    ) -> None:
        self.memory_limit = memory_limit
        self.threads = threads
        self.temp_directory = temp_directory
        self.chunk_events = chunk_events

    def __repr__(self) -> str:
        return (
            f"DuckDBEngine(memory_limit={self.memory_limit!r}, threads={self.threads!r}, "
            f"temp_directory={self.temp_directory!r}, chunk_events={self.chunk_events!r})"
        )

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection with this engine's settings, in UTC."""
        config: dict[str, str | bool | int | float | list[str]] = {}
        if self.memory_limit is not None:
            config["memory_limit"] = self.memory_limit
        if self.threads is not None:
            config["threads"] = self.threads
        if self.temp_directory is not None:
            config["temp_directory"] = self.temp_directory
        con = duckdb.connect(config=config)
        con.execute("SET TimeZone = 'UTC'")
        return con

    def query_events(
        self,
        tables: EventTables,
        query: str,
        *,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pa.Table:
        """Run ``query`` (SQL over the views ``events`` and ``labels``) on the compacted event log.

        See :mod:`fourloops.engines.duckdb_events` for the views. The query
        runs in DuckDB, out of core; only its result comes back, as Arrow.
        """
        from fourloops.engines.duckdb_events import register_events

        con = self.connect()
        try:
            with _translate("event tables"):
                register_events(con, tables, model=model, since=since, until=until)
                return con.sql(query).to_arrow_table()
        finally:
            con.close()

    def open(self, data: pa.Table | str | Sequence[str], *, positions: bool = True) -> DuckDBScan:
        """Open ``data`` for monitoring on a connection of its own (see :class:`DuckDBScan`)."""
        with _translate("monitoring input"):
            return DuckDBScan(self.connect(), data, positions=positions)

    def open_events(
        self,
        tables: EventTables,
        *,
        model: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> DuckDBScan:
        """Open model ``model``'s compacted events, labels joined (view ``events``), for monitoring.

        With ``since`` / ``until`` only the partitions that can hold events of that range are read.
        A query of the scan that reads no label column reads the events without the join; its
        streamed scan of the score reads the events in parts of about ``chunk_events`` events (whole
        days, or some hours of a busy day), each joined with its own days' and hours' labels.
        """
        from fourloops.engines.duckdb_events import (
            JOINED,
            LABELLED,
            UNLABELLED,
            register_chunks,
            register_events,
        )

        con = self.connect()
        try:
            with _translate("event tables"):
                register_events(con, tables, model=model, since=since, until=until)
                parts = register_chunks(
                    con, tables, model=model, since=since, until=until, chunk_events=self.chunk_events
                )
                joined = Joined(UNLABELLED, frozenset(JOINED), parts)
                return DuckDBScan(
                    con,
                    register=lambda _: LABELLED,
                    joined=joined,
                    identity="request_id",  # compaction keeps one row per request
                )
        except BaseException:
            con.close()
            raise

    def point_in_time_join(
        self,
        entities: pa.Table | str,
        *,
        timestamp: str,
        views: Sequence[ViewJoin],
        out: str | None = None,
    ) -> tuple[pa.Table | None, JoinStats]:
        """Join ``views`` onto ``entities`` as of each entity row's ``timestamp``.

        See :mod:`fourloops.engines.base` for the exact rule. Returns the result
        table (``None`` when ``out`` is given: the result is then written to
        that Parquet file by DuckDB) and the join statistics.

        Raises
        ------
        SchemaError
            A column is missing, a timestamp is naive or not a timestamp, key
            types do not match, or output names collide.
        SourceError
            Data cannot be read (no file matches, unreadable Parquet).
        """
        started = time.perf_counter()
        views = list(views)
        con = self.connect()
        try:
            with _translate("entities"):
                ent_src, ent_types = _register(con, "__fl_ent", entities, "entities")
            checks.check_time(ent_types, timestamp, "entities")
            outputs = checks.check_outputs(ent_types, views)
            ctes: list[str] = []
            probes: list[sql.Packing | sql.Direct] = []
            for i, view in enumerate(views):
                what = f"view {view.name!r}"
                with _translate(what):
                    src, types = _register(con, f"__fl_src{i}", view.data, what, ordered=not view.prepared)
                checks.check_view(view, types, ent_types)
                if view.prepared:
                    probes.append(sql.Direct())
                    ctes.append(sql.prepared_cte(i, view, src))
                    continue
                with _translate(what):
                    rows, lo, hi = con.execute(sql.view_bounds_sql(view, src)).fetchall()[0]
                packing = sql.Packing.choose(rows, lo, hi)
                probes.append(packing)
                casts = {c: "TIMESTAMPTZ" for c in view.features if types[c] == "TIMESTAMPTZ_NS"}
                ctes.extend(sql.view_cte(i, view, src, packing, casts))
            ctes.insert(0, sql.entity_cte(ent_src, timestamp, probes))
            # Without a memory limit the result is built in memory (fastest), also for
            # ``out``; with one, ``out`` streams DuckDB's ordered (spillable) result.
            in_memory = out is None or self.memory_limit is None
            keep = entities if isinstance(entities, pa.Table) and in_memory else None
            columns = [c for c in ent_types if c != sql.ORD]
            in_sql = [c for c in columns if keep is None or ent_types[c] == "TIMESTAMPTZ_NS"]
            entity_columns = [(c, _entity_expr(c, ent_types[c])) for c in in_sql]
            body, status = sql.join_sql(views, entity_columns, outputs)
            query = "WITH " + ", ".join(ctes) + " " + body
            with _translate("point-in-time join"):
                if in_memory:
                    result = con.sql(query).to_arrow_table()
                    counts = _count(result, status)
                    names = columns + [n for names in outputs for n in names]
                    table = _reorder(result, keep, names, self.threads)
                    rows_total = table.num_rows
                    if out is not None:
                        Path(out).parent.mkdir(parents=True, exist_ok=True)
                        pq.write_table(table, os.fspath(out))
                        table = None
                else:
                    table = None
                    assert out is not None  # the streaming path is only taken for out=
                    counts, rows_total = _stream(con, query, status, os.fspath(out))
        finally:
            con.close()
        stats = JoinStats(
            rows=rows_total,
            seconds=time.perf_counter() - started,
            views={
                v.name: ViewStats(v.name, found=c[0], missing=c[1], expired=c[2])
                for v, c in zip(views, counts, strict=True)
            },
            engine=self.name,
        )
        return table, stats

    def prepare_view(self, view: ViewJoin, out_path: str | os.PathLike[str]) -> ViewJoin:
        """Write the compacted form of ``view`` to ``out_path``; return a ViewJoin reading it.

        The file keeps only the rows that can ever be chosen by the rule (ties on
        ``(keys, time)`` resolved, and, with a created column, rows superseded
        before they become visible dropped), sorted by keys and availability
        time. It depends on the view's rows, ``join_keys``, ``timestamp``,
        ``created`` and ``features`` only, not on ``ttl`` or ``entity_keys``, so
        it can be cached per view version and joined with any subset of the
        features (``dataclasses.replace(prepared, features=...)``). The file is
        written to a temporary name and renamed, so readers never see half of it.

        Raises
        ------
        SchemaError
            A column is missing, a timestamp is naive or not a timestamp.
        SourceError
            The data cannot be read.
        """
        if view.prepared:
            raise SchemaError(f"view {view.name!r} is already prepared")
        what = f"view {view.name!r}"
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        con = self.connect()
        try:
            with _translate(what):
                src, types = _register(con, "__fl_src", view.data, what)
            checks.check_source(view, types)
            casts = {c: "TIMESTAMPTZ" for c in view.features if types[c] == "TIMESTAMPTZ_NS"}
            query = sql.prepare_sql(view, src, casts)
            with _translate(what):
                con.execute(f"COPY ({query}) TO {sql.literal(str(tmp))} (FORMAT parquet)")
        finally:
            con.close()
        os.replace(tmp, out)
        return dataclasses.replace(view, data=str(out), prepared=True)


def _count(result: pa.Table, status: list[str]) -> list[list[int]]:
    """``[found, missing, expired]`` per view from the status columns."""
    counts = []
    for name in status:
        values = result.column(name).to_numpy()
        counts.append([int(n) for n in np.bincount(values, minlength=3)[:3]])
    return counts


def _reorder(result: pa.Table, keep: pa.Table | None, names: list[str], threads: int | None) -> pa.Table:
    """The result in entity input order: ``keep``'s columns as they are, the rest permuted."""
    rid = result.column("__fl_rid").to_numpy()
    n = len(rid)
    inverse = np.empty(n, dtype=np.int64)
    inverse[rid] = np.arange(n, dtype=np.int64)
    perm: np.ndarray | None = None if np.array_equal(inverse, np.arange(n)) else inverse
    moved = [c for c in names if c in result.column_names]
    workers = max(1, min(threads or os.cpu_count() or 1, len(moved)))
    with ThreadPoolExecutor(workers) as pool:
        gathered = dict(zip(moved, pool.map(lambda c: _gather(result.column(c), perm), moved), strict=True))
    arrays = []
    for name in names:
        if name in gathered:
            arrays.append(gathered[name])
        else:
            arrays.append(_as_utc(keep.column(name)))  # type: ignore[union-attr]
    return pa.Table.from_arrays(arrays, names=names)


_NUMPY_WIDTHS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _gather(column: pa.ChunkedArray, perm: np.ndarray | None) -> pa.Array | pa.ChunkedArray:
    """``column`` taken at ``perm``; fixed-width columns go through NumPy (much faster)."""
    if perm is None:
        return column
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    kind = arr.type
    fixed = (
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_temporal(kind)
    ) and not pa.types.is_interval(kind)
    width = kind.bit_width // 8 if fixed else 0
    if width not in _NUMPY_WIDTHS or len(arr) == 0:
        return arr.take(pa.array(perm))
    n, offset = len(arr), arr.offset
    validity, data = arr.buffers()[:2]
    values = np.frombuffer(data, dtype=_NUMPY_WIDTHS[width])[offset : offset + n]
    mask = None
    if arr.null_count and validity is not None:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        mask = pa.py_buffer(np.packbits(bits[offset : offset + n][perm], bitorder="little"))
    return pa.Array.from_buffers(
        kind, n, [mask, pa.py_buffer(np.take(values, perm))], null_count=arr.null_count
    )


def _as_utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Time-zone-aware timestamps as ``timestamp[us, tz=UTC]`` (exact for s/ms/us)."""
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.tz is not None and kind != _UTC_US:
        return column.cast(_UTC_US)
    return column


def _stream(
    con: duckdb.DuckDBPyConnection, query: str, status: list[str], out: str
) -> tuple[list[list[int]], int]:
    """Write the ordered result to ``out``, counting outcomes on the way (one pass)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    ordered = con.sql(f"SELECT * EXCLUDE (__fl_rid) FROM ({query}) ORDER BY __fl_rid")
    reader = ordered.to_arrow_reader(_BATCH_ROWS)
    counts = np.zeros((len(status), 3), dtype=np.int64)
    keep = [i for i, name in enumerate(reader.schema.names) if name not in status]
    schema = pa.schema([reader.schema.field(i) for i in keep])
    rows = 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in reader:
            for i, name in enumerate(status):
                counts[i] += np.bincount(batch.column(name).to_numpy(), minlength=3)[:3]
            writer.write_batch(batch.select(keep))
            rows += batch.num_rows
    return counts.tolist(), rows


@contextmanager
def _translate(what: str) -> Iterator[None]:
    """Re-raise DuckDB errors as fourloops errors with context."""
    try:
        yield
    except duckdb.IOException as err:
        raise SourceError(f"{what}: cannot read data: {err}") from err
    except (duckdb.BinderException, duckdb.ConversionException) as err:
        raise SchemaError(f"{what}: {err}") from err
    except duckdb.Error as err:
        raise SourceError(f"{what}: {err}") from err


def _register(
    con: duckdb.DuckDBPyConnection, name: str, data: object, what: str, ordered: bool = True
) -> tuple[str, dict[str, str]]:
    """Expose ``data`` as relation ``name``, with a dense ``__fl_ord`` position if ``ordered``.

    Without ``ordered`` (prepared views) the data is exposed as it is.
    """
    if isinstance(data, pa.Table):
        if not ordered:
            con.register(name, data)
        else:
            checks.check_reserved(data.column_names, what)
            positions = pa.array(np.arange(data.num_rows, dtype=np.int64))
            con.register(name, data.append_column(sql.ORD, positions))
    elif isinstance(data, str | os.PathLike) or (
        isinstance(data, Sequence) and all(isinstance(p, str | os.PathLike) for p in data)
    ):
        files = _parquet_files(con, data, what)
        if ordered:
            con.execute(f"CREATE TEMP VIEW {name} AS {_parquet_sql(con, files, what)}")
        else:
            listed = "[" + ", ".join(sql.literal(f) for f in files) + "]"
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet({listed})")
    else:
        raise SourceError(f"{what}: expected an Arrow table or Parquet path(s), got {type(data)}")
    described = con.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()
    return name, {row[0]: row[1] for row in described}


def _parquet_files(con: duckdb.DuckDBPyConnection, data: object, what: str) -> list[str]:
    patterns = [data] if isinstance(data, str | os.PathLike) else list(data)  # type: ignore[call-overload]
    if not patterns:
        raise SourceError(f"{what}: no Parquet files given")
    files: list[str] = []
    for pattern in patterns:
        found = con.execute("SELECT file FROM glob(?) ORDER BY file", [os.fspath(pattern)])
        matched = [row[0] for row in found.fetchall()]
        if not matched:
            raise SourceError(f"{what}: no Parquet file matches {os.fspath(pattern)!r}")
        files.extend(matched)
    return files


def _parquet_sql(con: duckdb.DuckDBPyConnection, files: list[str], what: str) -> str:
    listed = "[" + ", ".join(sql.literal(f) for f in files) + "]"
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({listed})").fetchall()]
    checks.check_reserved(columns, what)
    if "file_row_number" in columns:
        raise SchemaError(f"{what}: column name 'file_row_number' is reserved by DuckDB")
    if len(files) == 1:
        return f"SELECT *, file_row_number AS {sql.ORD} FROM read_parquet({listed})"
    sizes = con.execute(f"SELECT file_name, num_rows FROM parquet_file_metadata({listed})").fetchall()
    rows = dict(sizes)
    offsets, offset = [], 0
    for f in files:
        offsets.append(f"({sql.literal(f)}, {offset})")
        offset += int(rows[f])
    return (
        f"SELECT s.* EXCLUDE ({_FILE_COLUMN}), f.off + s.file_row_number AS {sql.ORD} "
        f"FROM read_parquet({listed}, filename = {sql.literal(_FILE_COLUMN)}) s "
        f"JOIN (VALUES {', '.join(offsets)}) f(name, off) ON s.{_FILE_COLUMN} = f.name"
    )


def _entity_expr(column: str, kind: str) -> str:
    ref = f"__fl_e.{sql.quote(column)}"
    return f"CAST({ref} AS TIMESTAMPTZ)" if kind == "TIMESTAMPTZ_NS" else ref
