"""Uniform samples of many windows of a relation in one DuckDB query (the domain classifier's samples).

Each row gets a key, a hash of its identity (a column that is unique per row:
the row's position in the data, or the event log's request id) and the seed.
A window's sample is its ``rows`` rows of smallest key: the hash orders the
rows at random, so these are a uniform sample without replacement of the
window's rows (bottom-k sampling), the same rows for the same seed however
the query is run (threads, files, order), since a row's key depends on
nothing but its identity and the seed.

The query never ranks every row. A row is kept only if its key falls below
its window's threshold, set from how many rows the window holds so that about
:data:`OVERSAMPLE` times ``rows`` rows pass: a cheap filter beside the scan.
Only the few rows that pass are ranked. The rows that pass are exactly the
window's rows of smallest key, so their ``rows`` smallest are the window's
(the threshold changes how much is ranked, never which rows come back); a
window with fewer rows passing than asked for (a row count that was too
high), and so possibly cut short, is drawn again without the filter.

>>> import duckdb, pyarrow as pa
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE VIEW t AS SELECT i AS pos, i % 3 AS w, i * 1.0 AS x FROM range(300) r(i)")
>>> drawn = sample_strata(
...     con, "t", ["x"], 5, [Stratum("w = 0", 100), Stratum("w = 1", 100)], identity="pos", seed=1
... )
>>> [t.num_rows for t in drawn], all(int(x) % 3 == 1 for x in drawn[1].column("x").to_pylist())
([5, 5], True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from fourloops.engines import duckdb_pit as sql
from fourloops.engines.base import Stratum

__all__ = ["OVERSAMPLE", "sample_strata"]

#: About how many times the rows asked for pass each window's filter (so that a window's count
#: may be off by half and still need no second query; the rows that pass are ranked in memory).
OVERSAMPLE = 3.0
#: The largest key (``hash`` is a 64-bit unsigned integer).
_TOP = 2**64 - 1
_WINDOW, _KEY, _ID = "__fl_stratum", "__fl_key", "__fl_id"


def _threshold(size: int, rows: int) -> int:
    """The key below which a row of a window of ``size`` rows is kept: about ``OVERSAMPLE * rows`` pass."""
    if size <= 0 or OVERSAMPLE * rows >= size:
        return _TOP
    return min(_TOP, math.ceil(_TOP * (OVERSAMPLE * rows / size)))


def _draw(
    con: duckdb.DuckDBPyConnection,
    rel: str,
    columns: Sequence[str],
    rows: int,
    strata: Sequence[tuple[int, str, int]],
    identity: str,
    where: str | None,
    seed: int,
) -> dict[int, pa.Table]:
    """One query: the windows ``(index, condition, threshold)``, each its ``rows`` rows of smallest key."""
    cols = ", ".join(sql.quote(c) for c in columns)
    key = f"hash(hash({sql.quote(identity)}, {int(seed)}))"
    case = " ".join(f"WHEN ({cond}) AND {_KEY} <= {top}::UBIGINT THEN {i}" for i, cond, top in strata)
    highest = max(top for _, _, top in strata)
    clause = f"({where}) AND " if where else ""
    query = (
        f"SELECT {_WINDOW}, {cols} FROM ("
        f"SELECT {cols}, {sql.quote(identity)} AS {_ID}, {_KEY}, CASE {case} END AS {_WINDOW} FROM ("
        f"SELECT *, {key} AS {_KEY} FROM {rel}) WHERE {clause}{_KEY} <= {highest}::UBIGINT"
        f") WHERE {_WINDOW} IS NOT NULL ORDER BY {_WINDOW}, {_KEY}, {_ID}"
    )
    # the rows that passed, by window and key: each window's first ``rows`` (ranked here, not by a
    # window function: a few times ``rows`` rows per window)
    table = con.sql(query).to_arrow_table()
    index = table.column(_WINDOW).to_numpy()
    body = table.drop_columns([_WINDOW])
    out = {}
    for i, _, _ in strata:
        first = int(np.searchsorted(index, i, side="left"))
        last = int(np.searchsorted(index, i, side="right"))
        out[i] = body.slice(first, min(last - first, rows))
    return out


def sample_strata(
    con: duckdb.DuckDBPyConnection,
    rel: str,
    columns: Sequence[str],
    rows: int,
    strata: Sequence[Stratum],
    *,
    identity: str,
    where: str | None = None,
    seed: int = 0,
) -> list[pa.Table]:
    """Up to ``rows`` rows of ``columns`` from each window (see the module docstring), one table each.

    ``identity`` names a column unique per row; ``strata`` must not overlap (a row matching two
    counts in the first); ``where`` is a condition every sampled row meets.
    """
    if not strata:
        return []
    planned = [(i, s.where or "TRUE", _threshold(s.rows, rows)) for i, s in enumerate(strata)]
    drawn = _draw(con, rel, columns, rows, planned, identity, where, seed)
    short = [(i, cond, _TOP) for i, cond, top in planned if top < _TOP and drawn[i].num_rows < rows]
    if short:  # a count too high: those windows again without the filter (the same rows if they had them)
        drawn |= _draw(con, rel, columns, rows, short, identity, where, seed)
    return [drawn[i] for i in range(len(strata))]
