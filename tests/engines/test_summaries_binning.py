"""Summaries by sorting (and a reference read once) equal the former binary search per value.

The engine used to bin every value with ``np.searchsorted`` on the edges and read the reference
twice (once for its edges, once for its counts); it now sorts each batch and counts between the edges,
and counts the reference while it fits its edges. The former computation is
:meth:`NumericSummary.of` (``searchsorted`` and ``bincount``) on the former edges (DuckDB's
``quantile_disc``, see ``test_fit_edges.py``).

Tolerance: counts, nulls, defaults, minimum and maximum are equal; sums (total, squares and the two
outer bins' sums) are added in another order, so they agree to 1e-12 relative (1e-9 absolute near 0).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fourloops.engines import DuckDBEngine, duckdb_summaries
from fourloops.engines.summaries import (
    OTHER,
    UNSEEN_NAMED,
    CategoricalSummary,
    NumericSummary,
    RowWindows,
    Summaries,
    SummaryPlan,
)
from fourloops.evaluation.drift.policy import DriftPolicy
from fourloops.evaluation.profile import fit_profile

from .edges_oracle import awkward, quantile_disc_edges

REL = 1e-12
ABS = 1e-9
NUMERIC = awkward(1, 0).column_names


def _equal(got: NumericSummary, expected: NumericSummary) -> None:
    assert got.edges == expected.edges
    assert got.counts.tolist() == expected.counts.tolist()
    assert (got.nulls, got.defaults) == (expected.nulls, expected.defaults)
    assert (got.minimum, got.maximum) == (expected.minimum, expected.maximum)
    for a, b in (
        (got.total, expected.total),
        (got.squares, expected.squares),
        (got.low_sum, expected.low_sum),
        (got.high_sum, expected.high_sum),
    ):
        assert a == pytest.approx(b, rel=REL, abs=ABS)


def _values(table: pa.Table, column: str) -> np.ndarray:
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=float)


def _data(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    table = awkward(n, seed)
    cats = np.array(["a", "b", "c", "d", "e"], dtype=object)
    rare = np.array([f"r{i:03d}" for i in range(60)], dtype=object)
    k = np.where(rng.random(n) < 0.9, cats[rng.integers(0, 5, n)], rare[rng.integers(0, 60, n)])
    table = table.append_column("k", pa.array(k.tolist(), pa.string(), mask=rng.random(n) < 0.05))
    return table.append_column("seg", pa.array(rng.choice(["x", "y", "z"], n).tolist(), pa.string()))


def test_the_reference_counted_while_fitting_equals_the_former_computation(tmp_path: Any) -> None:
    """A million-row-like reference, in several row groups: edges, counts, categories as before."""
    table = _data(150_000, seed=1)
    path = tmp_path / "reference.parquet"
    pq.write_table(table, path, row_group_size=40_000)
    policy = DriftPolicy(max_categories=8)
    with DuckDBEngine().open(str(path), positions=False) as scan:
        profile = fit_profile(scan, policy=policy, defaults={"few": 3.0, "k": "b"}, exclude=["seg"])
        former = quantile_disc_edges(scan.con, scan.relation, NUMERIC, bins=policy.bins)
    whole = (0, None, None)
    for column in NUMERIC:
        assert profile.columns[column].edges == former[column]
        expected = NumericSummary.of(
            _values(table, column), former[column], default=3.0 if column == "few" else None
        )
        _equal(profile.summaries.numeric[column][whole], expected)
    kept = profile.columns["k"]
    assert kept.categories[-1] == OTHER and len(kept.pooled) == 57
    expected_k = CategoricalSummary.of(
        table.column("k").to_pylist(), kept.categories, default="b", pooled=kept.pooled
    )
    got_k = profile.summaries.categorical["k"][whole]
    assert got_k.counts.tolist() == expected_k.counts.tolist()
    assert (got_k.unseen, got_k.nulls, got_k.defaults) == (0, expected_k.nulls, expected_k.defaults)


def test_the_reference_is_read_once_for_its_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """After fitting, summarising the whole reference streams no column: the counts are known."""
    table = _data(5_000, seed=2)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the reference was streamed again")

    with DuckDBEngine().open(table, positions=False) as scan:
        monkeypatch.setattr(duckdb_summaries, "_batches", refuse)
        monkeypatch.setattr(duckdb_summaries, "_count_categorical", refuse)
        profile = fit_profile(scan, exclude=["seg"])
    assert profile.rows == 5_000


@pytest.mark.parametrize("windows", [None, RowWindows(40_000)])
@pytest.mark.parametrize("segments", [(), ("seg",)])
def test_streamed_summaries_equal_the_former_computation(
    windows: RowWindows | None, segments: tuple[str, ...]
) -> None:
    """Several batches (65,536 rows), one or several groups a batch; ties, nulls, constants."""
    table = _data(150_000, seed=3)
    with DuckDBEngine().open(table, positions=False) as scan:
        edges = scan.fit_edges(NUMERIC, bins=100)
    categories = ("a", "b", "c", "r000", OTHER)
    plan = SummaryPlan(
        numeric=edges,
        categorical={"k": categories},
        pooled={"k": frozenset({"d"})},
        windows=windows,
        segments=segments,
        defaults={"ties": 0.0, "k": "c"},
    )
    with DuckDBEngine().open(table, positions=windows is not None) as scan:  # a fresh scan: no counts known
        got = scan.summarize(plan)
    size = windows.size if windows is not None else len(table)
    seg = table.column("seg").to_pylist()
    k = table.column("k").to_pylist()
    groups: dict[tuple[int, str | None, str | None], np.ndarray] = {}
    for w in range(-(-len(table) // size)):
        rows = np.arange(w * size, min((w + 1) * size, len(table)))
        groups[(w, None, None)] = rows
        for s in segments:
            for value in ("x", "y", "z"):
                groups[(w, s, value)] = rows[[seg[i] == value for i in rows]]
    assert set(got.groups) == set(groups)
    for key, rows in groups.items():
        assert got.groups[key].rows == len(rows)
        for column in NUMERIC:
            default = 0.0 if column == "ties" else None
            expected = NumericSummary.of(_values(table, column)[rows], edges[column], default=default)
            _equal(got.numeric[column][key], expected)
        expected_k = CategoricalSummary.of(
            [k[i] for i in rows], categories, default="c", pooled=frozenset({"d"})
        )
        got_k = got.categorical["k"][key]
        assert got_k.counts.tolist() == expected_k.counts.tolist()
        assert (got_k.unseen, got_k.nulls, got_k.defaults) == (
            expected_k.unseen,
            expected_k.nulls,
            expected_k.defaults,
        )
        # The unseen values named are the most frequent ones, with their exact counts.
        unseen = Counter(k[i] for i in rows if k[i] is not None and k[i] not in (*categories, "d"))
        assert len(got_k.unseen_values) == min(UNSEEN_NAMED, len(unseen))
        assert all(unseen[v] == n for v, n in got_k.unseen_values.items())
        least_named = min(got_k.unseen_values.values(), default=0)
        assert all(n <= least_named for v, n in unseen.items() if v not in got_k.unseen_values)


def test_counted_and_streamed_summaries_agree() -> None:
    """The same reference summarised from what fitting counted and by streaming it."""
    table = _data(100_000, seed=4)
    with DuckDBEngine().open(table, positions=False) as scan:
        counted = fit_profile(scan, exclude=["seg"])
    with DuckDBEngine().open(table, positions=False) as scan:
        streamed = scan.summarize(counted.plan(None))
    _agree(counted.summaries, streamed)


def _agree(a: Summaries, b: Summaries) -> None:
    assert a.groups.keys() == b.groups.keys()
    for column, by_key in a.numeric.items():
        for key, summary in by_key.items():
            _equal(summary, b.numeric[column][key])
            assert summary.distinct == b.numeric[column][key].distinct
    for column, by_key in a.categorical.items():
        for key, summary in by_key.items():
            other = b.categorical[column][key]
            assert summary.counts.tolist() == other.counts.tolist()
            assert (summary.unseen, summary.nulls, summary.unseen_values) == (
                other.unseen,
                other.nulls,
                other.unseen_values,
            )


def test_what_fitting_counted_is_not_used_for_other_edges_or_a_part_of_the_rows() -> None:
    table = _data(20_000, seed=5)
    with DuckDBEngine().open(table, positions=False) as scan:
        scan.fit_edges(["normal_nan"], bins=10)
        other = {"normal_nan": (-1.0, 0.0, 1.0)}
        got = scan.summarize(SummaryPlan(numeric=other))
        part = scan.summarize(SummaryPlan(numeric=other), where="few > 2")
    x = _values(table, "normal_nan")
    _equal(got.numeric["normal_nan"][(0, None, None)], NumericSummary.of(x, other["normal_nan"]))
    few = _values(table, "few")
    _equal(part.numeric["normal_nan"][(0, None, None)], NumericSummary.of(x[few > 2], other["normal_nan"]))


def test_groups_come_in_a_fixed_order() -> None:
    """Window by window: the whole window, then each segment column's values in order."""
    table = _data(3_000, seed=6)
    plan = SummaryPlan(numeric={"few": (1.0, 2.0)}, windows=RowWindows(1_000), segments=("seg", "k"))
    with DuckDBEngine().open(table) as scan:
        keys = list(scan.summarize(plan).groups)
    k = ["null" if v is None else v for v in table.column("k").to_pylist()]
    expected = [
        key
        for w in range(3)
        for key in [
            (w, None, None),
            *((w, "seg", v) for v in "xyz"),
            *((w, "k", v) for v in sorted(set(k[w * 1_000 : (w + 1) * 1_000]))),
        ]
    ]
    assert keys == expected
