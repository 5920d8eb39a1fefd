"""The DuckDB batch engine (the embedded default).

The point-in-time join is one DuckDB query: each feature view is turned into a
relation whose rows carry a packed sort key, and the entity rows are matched to
each view with a chained ``ASOF LEFT JOIN`` (see :mod:`fourloops.engines.duckdb_pit`
for why that match is exactly the rule in :mod:`fourloops.engines.base`). The
result is ordered by the entity row's input position. With ``out=`` DuckDB writes
the Parquet file itself (``COPY``), so nothing is pulled into Python and the join
can spill to ``temp_directory`` under ``memory_limit``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from fourloops.engines import duckdb_pit as sql
from fourloops.engines.base import JoinStats, ViewJoin, ViewStats
from fourloops.errors import SchemaError, SourceError

__all__ = ["DuckDBEngine"]

_TZ_TYPES = frozenset({"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ_NS"})
_NAIVE_TYPES = frozenset({"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"})
_INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
_RESERVED_PREFIX = "__fl_"
_FILE_COLUMN = "__fl_file"


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
    ) -> None:
        self.memory_limit = memory_limit
        self.threads = threads
        self.temp_directory = temp_directory

    def __repr__(self) -> str:
        return (
            f"DuckDBEngine(memory_limit={self.memory_limit!r}, threads={self.threads!r}, "
            f"temp_directory={self.temp_directory!r})"
        )

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection with this engine's settings, in UTC."""
        config: dict[str, str | int] = {}
        if self.memory_limit is not None:
            config["memory_limit"] = self.memory_limit
        if self.threads is not None:
            config["threads"] = self.threads
        if self.temp_directory is not None:
            config["temp_directory"] = self.temp_directory
        con = duckdb.connect(config=config)
        con.execute("SET TimeZone = 'UTC'")
        return con

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
            _check_time(ent_types, timestamp, "entities")
            outputs = _check_outputs(ent_types, views)
            ctes: list[str] = []
            packings: list[sql.Packing] = []
            for i, view in enumerate(views):
                what = f"view {view.name!r}"
                with _translate(what):
                    src, types = _register(con, f"__fl_src{i}", view.data, what)
                _check_view(view, types, ent_types)
                with _translate(what):
                    rows, lo, hi = con.execute(sql.view_bounds_sql(view, src)).fetchall()[0]
                packing = sql.Packing.choose(rows, lo, hi)
                packings.append(packing)
                casts = {c: "TIMESTAMPTZ" for c in view.features if types[c] == "TIMESTAMPTZ_NS"}
                ctes.extend(sql.view_cte(i, view, src, packing, casts))
            ctes.insert(0, sql.entity_cte(ent_src, timestamp, packings))
            entity_columns = [(c, _entity_expr(c, t)) for c, t in ent_types.items() if c != sql.ORD]
            body, status = sql.join_sql(views, entity_columns, outputs)
            query = "WITH " + ", ".join(ctes) + " " + body
            with _translate("point-in-time join"):
                if out is None:
                    table, counts, rows_total = _fetch(con, query, status)
                else:
                    table = None
                    counts, rows_total = _copy(con, query, status, os.fspath(out))
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


def _fetch(
    con: duckdb.DuckDBPyConnection, query: str, status: list[str]
) -> tuple[pa.Table, list[list[int]], int]:
    table = con.sql(
        f"SELECT * EXCLUDE (__fl_rid) FROM ({query}) ORDER BY __fl_rid"
    ).to_arrow_table()
    counts = []
    for name in status:
        values = table.column(name).to_numpy()
        counts.append([int(n) for n in np.bincount(values, minlength=3)[:3]])
    return table.drop_columns(status), counts, table.num_rows


def _copy(
    con: duckdb.DuckDBPyConnection, query: str, status: list[str], out: str
) -> tuple[list[list[int]], int]:
    con.execute(f"CREATE TEMP TABLE __fl_result AS {query}")
    sums = ", ".join(
        ["count(*)", *(f"count(*) FILTER ({s} = {k})" for s in status for k in range(3))]
    )
    totals = con.execute(f"SELECT {sums} FROM __fl_result").fetchall()[0]
    drop = ", ".join([*status, "__fl_rid"])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"COPY (SELECT * EXCLUDE ({drop}) FROM __fl_result ORDER BY __fl_rid) "
        f"TO {sql.literal(str(out))} (FORMAT parquet)"
    )
    counts = [list(totals[1 + 3 * i : 4 + 3 * i]) for i in range(len(status))]
    return counts, int(totals[0])


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
    con: duckdb.DuckDBPyConnection, name: str, data: object, what: str
) -> tuple[str, dict[str, str]]:
    """Expose ``data`` as relation ``name`` with a dense ``__fl_ord`` position column."""
    if isinstance(data, pa.Table):
        _check_reserved(data.column_names, what)
        ordered = data.append_column(sql.ORD, pa.array(np.arange(data.num_rows, dtype=np.int64)))
        con.register(name, ordered)
    elif isinstance(data, str | os.PathLike) or (
        isinstance(data, Sequence) and all(isinstance(p, str | os.PathLike) for p in data)
    ):
        files = _parquet_files(con, data, what)
        con.execute(f"CREATE TEMP VIEW {name} AS {_parquet_sql(con, files, what)}")
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
    columns = [
        r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({listed})").fetchall()
    ]
    _check_reserved(columns, what)
    if "file_row_number" in columns:
        raise SchemaError(f"{what}: column name 'file_row_number' is reserved by DuckDB")
    if len(files) == 1:
        return f"SELECT *, file_row_number AS {sql.ORD} FROM read_parquet({listed})"
    sizes = con.execute(
        f"SELECT file_name, num_rows FROM parquet_file_metadata({listed})"
    ).fetchall()
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


def _check_reserved(columns: Sequence[str], what: str) -> None:
    for column in columns:
        if column.startswith(_RESERVED_PREFIX):
            raise SchemaError(f"{what}: column {column!r} uses the reserved prefix '__fl_'")


def _check_time(types: dict[str, str], column: str, what: str) -> None:
    kind = _require(types, column, what)
    if kind in _NAIVE_TYPES:
        raise SchemaError(
            f"{what}: column {column!r} holds naive timestamps ({kind}); "
            "give it a time zone (fourloops never guesses one)"
        )
    if kind not in _TZ_TYPES:
        raise SchemaError(
            f"{what}: column {column!r} must be a timestamp with time zone, not {kind}"
        )


def _require(types: dict[str, str], column: str, what: str) -> str:
    if column not in types:
        raise SchemaError(f"{what}: no column {column!r} (has {sorted(types)})")
    return types[column]


def _check_view(view: ViewJoin, types: dict[str, str], ent_types: dict[str, str]) -> None:
    what = f"view {view.name!r}"
    _check_time(types, view.timestamp, what)
    if view.created is not None:
        _check_time(types, view.created, what)
    for column in view.features:
        _require(types, column, what)
    for key, ek in zip(view.join_keys, view.entity_columns, strict=True):
        vt = _require(types, key, what)
        et = _require(ent_types, ek, f"entities (keys of {what})")
        if vt != et and not (vt in _INTEGER_TYPES and et in _INTEGER_TYPES):
            raise SchemaError(f"{what}: key {key!r} is {vt} but entity column {ek!r} is {et}")


def _check_outputs(ent_types: dict[str, str], views: list[ViewJoin]) -> list[list[str]]:
    seen = {c: "the entities" for c in ent_types if c != sql.ORD}
    outputs = []
    for view in views:
        names = []
        for name in view.features.values():
            if name in seen:
                raise SchemaError(
                    f"view {view.name!r}: output column {name!r} clashes with {seen[name]}"
                )
            if name.startswith(_RESERVED_PREFIX):
                raise SchemaError(f"view {view.name!r}: output column {name!r} is reserved")
            seen[name] = f"view {view.name!r}"
            names.append(name)
        outputs.append(names)
    return outputs


def _entity_expr(column: str, kind: str) -> str:
    ref = f"__fl_e.{sql.quote(column)}"
    return f"CAST({ref} AS TIMESTAMPTZ)" if kind == "TIMESTAMPTZ_NS" else ref
