"""The former bin edges (DuckDB's exact ``quantile_disc``) and awkward data to compare them on."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa


def _number(column: str) -> str:
    value = f'CAST("{column}" AS DOUBLE)'
    return f"CASE WHEN isfinite({value}) THEN {value} END"


def quantile_disc_edges(
    con: duckdb.DuckDBPyConnection, rel: str, columns: Sequence[str], *, bins: int
) -> dict[str, tuple[float, ...]]:
    """The former ``fit_edges``: DuckDB's exact quantiles, or the distinct values when few."""
    levels = "[" + ", ".join(repr(i / bins) for i in range(1, bins)) + "]"
    parts = []
    for i, column in enumerate(columns):
        v = _number(column)
        parts += [f"approx_count_distinct({v}) AS d{i}", f"quantile_disc({v}, {levels}) AS q{i}"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {rel}").fetchall()[0]
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


def awkward(n: int, seed: int) -> pa.Table:
    """Ties, nulls, NaN and infinity, a constant, an empty column, few values, integers, heavy tails."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    inf = rng.exponential(size=n)
    inf[rng.random(n) < 0.05] = np.inf
    inf[rng.random(n) < 0.05] = -np.inf
    return pa.table(
        {
            "normal_nan": pa.array(x, from_pandas=False),
            "nulls": pa.array(rng.lognormal(size=n), mask=rng.random(n) < 0.3),
            "ties": np.round(rng.normal(size=n), 1),
            "heavy_ties": np.where(rng.random(n) < 0.6, 0.0, rng.exponential(size=n)),
            "constant": np.full(n, 3.5),
            "empty": pa.array([None] * n, pa.float64()),
            "few": rng.integers(0, 7, size=n).astype(float),
            "exactly_bins": rng.integers(0, 10, size=n),
            "one_more": rng.integers(0, 11, size=n),
            "counts": rng.poisson(30, size=n),
            "pareto": rng.pareto(1.1, size=n),
            "infinite": inf,
            "signed_zero": np.where(rng.random(n) < 0.5, -0.0, 0.0) + np.round(rng.normal(size=n), 0),
        }
    )
