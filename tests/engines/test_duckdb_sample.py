"""Every window's sample in one query: each a uniform sample of its window's rows, never another's,
the same rows for the same seed whatever the row counts given or the threads."""

from __future__ import annotations

import itertools
from collections import Counter

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from fourloops.engines import duckdb_sample
from fourloops.engines.base import Stratum
from fourloops.engines.duckdb_sample import sample_strata
from fourloops.engines.duckdb_scan import DuckDBScan
from fourloops.engines.summaries import POSITION

#: Two windows of 8 rows by position; the values repeat, so only the row's identity tells rows apart.
SMALL = pa.table({"w": [0] * 8 + [1] * 8, "x": [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0] * 2})
WINDOWS = [Stratum("w = 0", 8), Stratum("w = 1", 8)]


def _positions(table: pa.Table) -> list[int]:
    return [int(p) for p in table.column(POSITION).to_pylist()]


def test_inclusion_frequencies_are_those_of_a_uniform_sample_without_replacement() -> None:
    """Over 1,500 seeds, each row is drawn 3/8 of the time and each pair (3/8)(2/7): a simple random
    sample of 3 of its window's 8 rows, whatever the rows' values (they repeat)."""
    seeds, k, n = 1_500, 3, 8
    rows: Counter[int] = Counter()
    pairs: Counter[tuple[int, int]] = Counter()
    with DuckDBScan(duckdb.connect(), SMALL) as scan:
        for seed in range(seeds):
            drawn = scan.sample_windows(["w", POSITION], k, WINDOWS, seed=seed)
            for window, table in enumerate(drawn):
                assert table.num_rows == k
                positions = _positions(table)
                assert len(set(positions)) == k  # without replacement
                assert {p // n for p in positions} == {window}  # never another window's row
                assert set(table.column("w").to_pylist()) == {window}
                rows.update(positions)
                pairs.update(itertools.combinations(sorted(positions), 2))
    counts = np.array([rows[p] for p in range(2 * n)])
    assert stats.chisquare(counts).pvalue > 1e-3
    assert np.all(np.abs(counts / seeds - k / n) < 4 * np.sqrt(k / n * (1 - k / n) / seeds))
    within = [(a, b) for w in (0, 1) for a, b in itertools.combinations(range(w * n, w * n + n), 2)]
    pair_counts = np.array([pairs[p] for p in within])
    assert stats.chisquare(pair_counts).pvalue > 1e-3
    p = k / n * (k - 1) / (n - 1)
    assert abs(pair_counts.mean() / seeds - p) < 1e-9  # every draw has exactly C(3, 2) pairs a window


def test_a_sample_follows_its_window_and_not_the_others() -> None:
    """Windows of different distributions: each sample matches its own window (KS), over many seeds."""
    rng = np.random.default_rng(1)
    n = 20_000
    window = np.repeat([0, 1, 2], n)
    x = np.concatenate([rng.normal(0, 1, n), rng.normal(0.3, 1, n), rng.exponential(1, n)])
    table = pa.table({"w": window, "x": x})
    strata = [Stratum(f"w = {w}", n) for w in range(3)]
    pvalues: dict[int, list[float]] = {0: [], 1: [], 2: []}
    with DuckDBScan(duckdb.connect(), table) as scan:
        for seed in range(20):
            for w, drawn in enumerate(scan.sample_windows(["x"], 500, strata, seed=seed)):
                values = drawn.column("x").to_numpy()
                pvalues[w].append(stats.ks_2samp(values, x[window == w]).pvalue)
                other = x[window == (w + 1) % 3]
                assert stats.ks_2samp(values, other).pvalue < 0.05
    for w in range(3):  # p-values of a sample from its own window are uniform
        assert stats.kstest(pvalues[w], "uniform").pvalue > 1e-3


def test_the_row_counts_given_change_the_work_not_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A count too low (every row ranked), right, or too high (the filter cuts the window short, which
    is drawn again without it): the same rows. One query unless a window came back short."""
    rng = np.random.default_rng(2)
    table = pa.table({"w": rng.integers(0, 4, 50_000), "x": rng.normal(size=50_000)})
    counts = [int(c) for c in np.bincount(table.column("w").to_numpy(), minlength=4)]
    queries: list[int] = []
    original = duckdb_sample._draw

    def counted(*args: object, **kwargs: object) -> dict[int, pa.Table]:
        queries.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(duckdb_sample, "_draw", counted)
    con = duckdb.connect()
    con.register("t", table.append_column("pos", pa.array(np.arange(50_000))))
    drawn = {}
    for name, factor in (("low", 0.01), ("right", 1.0), ("high", 100.0)):
        queries.clear()
        strata = [Stratum(f"w = {w}", int(c * factor)) for w, c in enumerate(counts)]
        drawn[name] = sample_strata(con, "t", ["pos", "x"], 200, strata, identity="pos", seed=5)
        assert len(queries) == (2 if name == "high" else 1)
    for name in ("low", "high"):
        assert [t.to_pydict() for t in drawn[name]] == [t.to_pydict() for t in drawn["right"]]
    assert [t.num_rows for t in drawn["right"]] == [200] * 4


def test_deterministic_for_a_seed_whatever_the_threads() -> None:
    rng = np.random.default_rng(3)
    table = pa.table({"w": rng.integers(0, 3, 300_000), "x": rng.normal(size=300_000)})
    strata = [Stratum(f"w = {w}", 100_000) for w in range(3)]
    results = []
    for threads, seed in ((1, 7), (4, 7), (2, 8)):
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        with DuckDBScan(con, table) as scan:
            results.append([t.to_pydict() for t in scan.sample_windows(["x"], 300, strata, seed=seed)])
    assert results[0] == results[1]
    assert results[0] != results[2]


def test_where_and_small_windows() -> None:
    """``where`` holds for every sampled row; a window with fewer rows than asked for gives them all."""
    table = pa.table({"w": [0] * 5 + [1] * 500, "keep": [True, False] * 252 + [True]})
    with DuckDBScan(duckdb.connect(), table) as scan:
        small, large = scan.sample_windows(
            ["w", "keep"], 100, [Stratum("w = 0", 3), Stratum("w = 1", 250)], where="keep"
        )
        assert small.num_rows == 3 and large.num_rows == 100
        assert set(small.column("keep").to_pylist()) == set(large.column("keep").to_pylist()) == {True}
        assert scan.sample_windows(["w"], 10, []) == []
        (everything,) = scan.sample_windows(["w"], 10, [Stratum(None, 505)])
        assert everything.num_rows == 10


def test_without_an_identity_each_window_is_a_reservoir_sample() -> None:
    """Data opened without positions has no row identity: a reservoir query per window."""
    table = pa.table({"w": [0] * 50 + [1] * 50, "x": np.arange(100.0)})
    with DuckDBScan(duckdb.connect(), table, positions=False) as scan:
        assert scan.identity is None
        drawn = scan.sample_windows(["w", "x"], 10, [Stratum("w = 0", 50), Stratum("w = 1", 50)], seed=1)
        assert [set(t.column("w").to_pylist()) for t in drawn] == [{0}, {1}]
        assert drawn[1].to_pydict() == scan.sample(["w", "x"], 10, where="(w = 1)", seed=2).to_pydict()
