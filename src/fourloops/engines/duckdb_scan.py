"""Monitoring inputs as DuckDB relations, and the few facts a reference profile is fitted from.

:func:`relation` turns what a user hands to the monitor (an Arrow table, a
Parquet file or glob or list of files, a CSV file) into a relation on a
connection; windows by row count get each row's 0-based position in the
data (:data:`~fourloops.engines.duckdb_summaries.POSITION`): Arrow tables by
their order, Parquet files by file (in the order given, a glob sorted) and
row within the file. Parquet is scanned where it lies; CSV is read once.

:func:`fit_edges` and :func:`top_categories` compute what a reference
profile keeps: bin edges at the reference's quantiles (or its distinct
values, when there are few) and its most frequent categories.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fourloops.engines import duckdb_pit as sql
from fourloops.engines.duckdb_summaries import POSITION, summarize_relation
from fourloops.engines.summaries import Summaries, SummaryPlan
from fourloops.errors import SchemaError, SourceError

__all__ = ["DataInput", "DuckDBScan", "fit_edges", "relation", "schema", "time_range", "top_categories"]

#: What the monitor reads: an Arrow table, a Parquet or CSV path or glob, or a list of Parquet files.
DataInput: TypeAlias = pa.Table | str | Path | Sequence[str]


def _one(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    """The single row of ``query`` (fetched whole: DuckDB keeps an unfinished result otherwise)."""
    rows = con.execute(query).fetchall()
    return tuple(rows[0])


def _files(data: str | Path | Sequence[str]) -> list[str]:
    if isinstance(data, str | Path):
        text = str(data)
        found = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
    else:
        found = [str(f) for f in data]
    if not found:
        raise SourceError(f"no file matches {data!s}")
    for f in found:
        if not Path(f).is_file():
            raise SourceError(f"{f}: no such file")
    return found


def relation(con: duckdb.DuckDBPyConnection, data: DataInput, name: str, *, positions: bool) -> str:
    """Register ``data`` on ``con`` as the view ``name``; returns the name to select from.

    With ``positions``, the relation has :data:`POSITION` (0-based row position in the data).
    """
    if isinstance(data, pa.Table):
        if positions:
            data = data.append_column(POSITION, pa.array(np.arange(data.num_rows, dtype=np.int64)))
        con.register(f"{name}_arrow", data)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {sql.quote(name)} AS SELECT * FROM {sql.quote(name + '_arrow')}"
        )
        return sql.quote(name)
    files = _files(data)
    suffixes = {Path(f).suffix.lower() for f in files}
    if suffixes <= {".csv", ".tsv", ".txt"}:
        if len(files) != 1:
            raise SourceError("give one CSV file (or Parquet files)")
        try:
            table = con.sql(f"SELECT * FROM read_csv({sql.literal(files[0])})").to_arrow_table()
        except duckdb.Error as err:
            raise SourceError(f"{files[0]}: cannot read as CSV: {str(err).splitlines()[0]}") from err
        return relation(con, table, name, positions=positions)
    if not suffixes <= {".parquet", ".pq"}:
        raise SourceError(f"{files[0]}: read Parquet (.parquet) or CSV (.csv) files, got {sorted(suffixes)}")
    parts = []
    offset = 0
    for f in files:
        try:
            rows = pq.ParquetFile(f).metadata.num_rows
        except (OSError, pa.ArrowException) as err:
            raise SourceError(f"{f}: not a readable Parquet file ({err})") from err
        position = f", file_row_number + {offset} AS {POSITION}" if positions else ""
        exclude = " EXCLUDE (file_row_number)" if positions else ""
        numbered = ", file_row_number = true" if positions else ""
        parts.append(f"SELECT *{exclude}{position} FROM read_parquet({sql.literal(f)}{numbered})")
        offset += rows
    union = " UNION ALL BY NAME ".join(parts)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {sql.quote(name)} AS {union}")
    return sql.quote(name)


def schema(con: duckdb.DuckDBPyConnection, rel: str) -> dict[str, str]:
    """Column name -> DuckDB type of ``rel``."""
    described = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
    return {str(row[0]): str(row[1]) for row in described}


def time_range(
    con: duckdb.DuckDBPyConnection, rel: str, column: str
) -> tuple[datetime | None, datetime | None]:
    """First and last value of the timestamp column ``column`` (``None`` when it has none)."""
    q = sql.quote(column)
    try:
        first, last = _one(con, f"SELECT min({q}), max({q}) FROM {rel}")
    except duckdb.Error as err:
        raise SchemaError(f"column {column!r}: {str(err).splitlines()[0]}") from err
    for value in (first, last):
        if value is not None and not isinstance(value, datetime):
            raise SchemaError(f"column {column!r} is not a timestamp (found {type(value).__name__} values)")
    return first, last


def _number(column: str) -> str:
    value = f"CAST({sql.quote(column)} AS DOUBLE)"
    return f"CASE WHEN isfinite({value}) THEN {value} END"


def fit_edges(
    con: duckdb.DuckDBPyConnection, rel: str, columns: Sequence[str], *, bins: int
) -> dict[str, tuple[float, ...]]:
    """Interior bin edges per numeric column: quantiles of the data, or its distinct values when few.

    A column with at most ``bins`` distinct values gets one bin per value (the edges are the values
    but the largest, so each bin holds exactly one value); otherwise the edges are the distinct
    exact quantiles at ``1/bins, 2/bins, ...``, so each bin holds about ``1/bins`` of the data and
    the outer bins are open (a later outlier falls in the first or last bin, it never stretches one).
    """
    if not columns:
        return {}
    levels = "[" + ", ".join(repr(i / bins) for i in range(1, bins)) + "]"
    parts = []
    for i, column in enumerate(columns):
        v = _number(column)
        parts += [f"approx_count_distinct({v}) AS d{i}", f"quantile_disc({v}, {levels}) AS q{i}"]
    row = _one(con, f"SELECT {', '.join(parts)} FROM {rel}")
    edges: dict[str, tuple[float, ...]] = {}
    for i, column in enumerate(columns):
        approx, quantiles = row[2 * i], row[2 * i + 1]
        if approx is not None and approx <= 2 * bins:
            distinct = f"SELECT DISTINCT {_number(column)} AS v FROM {rel}"
            values = con.execute(f"{distinct} WHERE v IS NOT NULL ORDER BY v LIMIT {bins + 1}").fetchall()
            if len(values) <= bins:
                edges[column] = tuple(float(v[0]) for v in values[:-1])
                continue
        edges[column] = tuple(sorted({float(q) for q in quantiles or [] if q is not None}))
    return edges


def top_categories(
    con: duckdb.DuckDBPyConnection, rel: str, columns: Sequence[str], *, limit: int
) -> dict[str, list[tuple[str, int]]]:
    """The ``limit`` most frequent values of each column with their counts, most frequent first."""
    out: dict[str, list[tuple[str, int]]] = {}
    for column in columns:
        v = f"CAST({sql.quote(column)} AS VARCHAR)"
        counted = f"SELECT {v} AS v, count(*) AS n FROM {rel} WHERE v IS NOT NULL GROUP BY v"
        rows: list[Any] = con.execute(f"{counted} ORDER BY n DESC, v LIMIT {limit}").fetchall()
        out[column] = [(str(value), int(n)) for value, n in rows]
    return out


class DuckDBScan:
    """One monitoring input open on a DuckDB connection (see :class:`~fourloops.engines.base.TableScan`).

    >>> import pyarrow as pa
    >>> from fourloops.engines.summaries import SummaryPlan, RowWindows
    >>> scan = DuckDBScan(duckdb.connect(), pa.table({"x": [1.0, 2.0, 3.0, 4.0, 5.0]}))
    >>> edges = scan.fit_edges(["x"], bins=10)
    >>> edges
    {'x': (1.0, 2.0, 3.0, 4.0)}
    >>> out = scan.summarize(SummaryPlan(numeric=edges, windows=RowWindows(2)))
    >>> [(w, out.numeric["x"][(w, None, None)].counts.tolist()) for w in out.windows()]
    [(0, [1, 1, 0, 0, 0]), (1, [0, 0, 1, 1, 0]), (2, [0, 0, 0, 0, 1])]
    >>> scan.close()
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        data: DataInput | None = None,
        *,
        register: Callable[[duckdb.DuckDBPyConnection], str] | None = None,
        positions: bool = True,
    ) -> None:
        self.con = con
        if register is not None:
            self.relation = register(con)
        else:
            assert data is not None
            self.relation = relation(con, data, "__fl_input", positions=positions)

    def schema(self) -> dict[str, str]:
        return schema(self.con, self.relation)

    def rows(self, where: str | None = None) -> int:
        clause = f" WHERE {where}" if where else ""
        return int(_one(self.con, f"SELECT count(*) FROM {self.relation}{clause}")[0])

    def time_range(self, column: str) -> tuple[datetime | None, datetime | None]:
        return time_range(self.con, self.relation, column)

    def fit_edges(self, columns: Sequence[str], *, bins: int) -> dict[str, tuple[float, ...]]:
        return fit_edges(self.con, self.relation, columns, bins=bins)

    def top_categories(self, columns: Sequence[str], *, limit: int) -> dict[str, list[tuple[str, int]]]:
        return top_categories(self.con, self.relation, columns, limit=limit)

    def summarize(self, plan: SummaryPlan, *, where: str | None = None) -> Summaries:
        return summarize_relation(self.con, self.relation, plan, where=where)

    def sample(
        self, columns: Sequence[str], rows: int, *, where: str | None = None, seed: int = 0
    ) -> pa.Table:
        """Up to ``rows`` rows of ``columns`` drawn uniformly without replacement (reservoir)."""
        cols = ", ".join(sql.quote(c) for c in columns)
        clause = f" WHERE {where}" if where else ""
        query = (
            f"SELECT {cols} FROM (SELECT {cols} FROM {self.relation}{clause}) "
            f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})"
        )
        return self.con.sql(query).to_arrow_table()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
