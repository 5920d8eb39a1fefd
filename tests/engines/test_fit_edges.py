"""Bin edges fitted in NumPy equal DuckDB's exact ``quantile_disc`` edges (the former implementation).

The edges were one DuckDB query of ``quantile_disc`` over every numeric column (2.1 s and +290 MB at a
million rows of 18 columns); they are now each column read alone and sorted. For levels ``i / bins``
that are exact decimals (``bins`` = 100, the default, and 2, 4, 5, 8, 10, 20, 25, 50, ...) the edges
are the same, value for value. Otherwise DuckDB read the level as the decimal ``repr(i / bins)``; where
that rounds up and ``n * i / bins`` is a whole number it took the next value, the new edges keep the
exact level (tested below).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops.engines import DuckDBEngine
from fourloops.engines.duckdb_scan import edges_of, quantile_positions

from .edges_oracle import awkward, quantile_disc_edges


@pytest.mark.parametrize("bins", [100, 10, 20, 50, 4])
@pytest.mark.parametrize("n", [1, 9, 10, 11, 997, 20_000])
def test_edges_equal_duckdb_quantile_disc(bins: int, n: int) -> None:
    table = awkward(n, seed=n + bins)
    with DuckDBEngine().open(table, positions=False) as scan:
        columns = list(table.column_names)
        got = scan.fit_edges(columns, bins=bins)
        expected = quantile_disc_edges(scan.con, scan.relation, columns, bins=bins)
    assert got == expected


def _by_definition(values: list[float], bins: int) -> tuple[float, ...]:
    """The first value whose share of values at or below it reaches ``i / bins`` (exact fractions)."""
    ordered = sorted(values)
    distinct = sorted(set(ordered))
    if len(distinct) <= bins:
        return tuple(distinct[:-1])
    n = len(ordered)
    out = set()
    for i in range(1, bins):
        level = Fraction(i, bins)
        out.add(next(v for k, v in enumerate(ordered, 1) if Fraction(k, n) >= level))
    return tuple(sorted(out))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from([-1.0, 0.0, 0.5, 2.0]), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=0,
        max_size=80,
    ),
    st.integers(2, 30),
)
def test_edges_are_the_discrete_quantiles_by_definition(values: list[float], bins: int) -> None:
    assert edges_of(np.sort(np.asarray(values, dtype=float)), bins) == _by_definition(values, bins)


def test_levels_duckdb_read_rounded_up_are_the_only_difference() -> None:
    """bins = 7: ``repr(5 / 7)`` is 0.7142857142857143 > 5/7; at n = 7k DuckDB took the next value."""
    bins = 7
    rounded_up = [i for i in range(1, bins) if Fraction(Decimal(repr(i / bins))) > Fraction(i, bins)]
    assert rounded_up == [5]
    con = duckdb.connect()
    levels = "[" + ", ".join(repr(i / bins) for i in range(1, bins)) + "]"
    for n in (7, 14, 700, 701, 702):
        x = pa.table({"x": np.arange(n, dtype=float)[::-1].copy()})
        con.register("t", x)
        duck = [int(v) for v in con.sql(f"SELECT quantile_disc(x, {levels}) FROM t").fetchall()[0][0]]
        ours = quantile_positions(n, bins).tolist()
        differ = [i for i in range(1, bins) if duck[i - 1] != ours[i - 1]]
        assert differ == ([5] if n % bins == 0 else [])
        assert all(duck[i - 1] == ours[i - 1] + 1 for i in differ)
