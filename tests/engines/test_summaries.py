"""Summaries computed by the engine equal a brute-force computation per group, and merge exactly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops.engines import DuckDBEngine
from fourloops.engines.summaries import (
    CategoricalSummary,
    NumericSummary,
    RowWindows,
    ScorePlan,
    ScoreSummary,
    Summaries,
    SummaryPlan,
    TimeWindows,
)

EDGES = (-1.0, 0.0, 0.5, 2.0)
CATS = ("a", "b")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _same_numeric(a: NumericSummary, b: NumericSummary) -> None:
    assert a.edges == b.edges
    assert a.counts.tolist() == b.counts.tolist()
    assert (a.nulls, a.defaults) == (b.nulls, b.defaults)
    for x, y in (
        (a.total, b.total),
        (a.squares, b.squares),
        (a.low_sum, b.low_sum),
        (a.high_sum, b.high_sum),
    ):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-9)
    assert a.minimum == b.minimum and a.maximum == b.maximum


def _same_categorical(a: CategoricalSummary, b: CategoricalSummary) -> None:
    assert a.categories == b.categories
    assert a.counts.tolist() == b.counts.tolist()
    assert (a.unseen, a.nulls, a.defaults) == (b.unseen, b.nulls, b.defaults)
    assert dict(a.unseen_values) == dict(b.unseen_values)


def _same(a: Summaries, b: Summaries) -> None:
    assert a.groups.keys() == b.groups.keys()
    for key in a.groups:
        assert a.groups[key].rows == b.groups[key].rows
        for column in a.numeric:
            _same_numeric(a.numeric[column][key], b.numeric[column][key])
        for column in a.categorical:
            _same_categorical(a.categorical[column][key], b.categorical[column][key])
        if a.scores:
            sa, sb = a.scores[key], b.scores[key]
            assert sa.positives.tolist() == sb.positives.tolist()
            assert sa.negatives.tolist() == sb.negatives.tolist()
            assert sa.unlabelled.tolist() == sb.unlabelled.tolist()
            np.testing.assert_allclose(sa.score_sums, sb.score_sums, rtol=1e-9, atol=1e-12)


values = st.one_of(
    st.none(),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 0.5, 2.0]),
    st.floats(-5, 5, allow_nan=False),
)
rows = st.lists(
    st.tuples(
        values, st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), st.sampled_from(["x", "y"])
    ),
    min_size=0,
    max_size=60,
)


def _table(data: list[tuple[float | None, str | None, str]]) -> pa.Table:
    return pa.table(
        {
            "num": pa.array([r[0] for r in data], pa.float64()),
            "cat": pa.array([r[1] for r in data], pa.string()),
            "seg": pa.array([r[2] for r in data], pa.string()),
            "ts": pa.array(
                [T0 + timedelta(hours=7 * i) for i in range(len(data))], pa.timestamp("us", "UTC")
            ),
        }
    )


def _brute(data: list[tuple[float | None, str | None, str]], window_of: list[int]) -> Summaries:
    out = Summaries()
    groups: dict[tuple[int, str | None, str | None], list[int]] = {}
    for i, (_, _, seg) in enumerate(data):
        groups.setdefault((window_of[i], None, None), []).append(i)
        groups.setdefault((window_of[i], "seg", seg), []).append(i)
    for key, idx in groups.items():
        from fourloops.engines.summaries import GroupInfo

        out.groups[key] = GroupInfo(len(idx))
        nums = np.array([np.nan if data[i][0] is None else data[i][0] for i in idx], dtype=float)
        out.numeric.setdefault("num", {})[key] = NumericSummary.of(nums, EDGES, default=0.0)
        out.categorical.setdefault("cat", {})[key] = CategoricalSummary.of(
            [data[i][1] for i in idx], CATS, default="b"
        )
    return out


PLAN = SummaryPlan(
    numeric={"num": EDGES}, categorical={"cat": CATS}, segments=("seg",), defaults={"num": 0.0, "cat": "b"}
)


@settings(max_examples=60, deadline=None)
@given(rows, st.integers(1, 9))
def test_windows_by_rows_equal_brute_force(
    data: list[tuple[float | None, str | None, str]], size: int
) -> None:
    plan = SummaryPlan(**{**PLAN.__dict__, "windows": RowWindows(size)})
    with DuckDBEngine().open(_table(data)) as scan:
        got = scan.summarize(plan)
    _same(got, _brute(data, [i // size for i in range(len(data))]))
    for w in got.windows():
        info = got.groups[(w, None, None)]
        assert (info.first_row, info.last_row) == (w * size, min((w + 1) * size, len(data)) - 1)


@settings(max_examples=40, deadline=None)
@given(rows)
def test_windows_by_time_equal_brute_force(data: list[tuple[float | None, str | None, str]]) -> None:
    origin = T0 - timedelta(hours=3)
    plan = SummaryPlan(**{**PLAN.__dict__, "windows": TimeWindows("ts", origin, timedelta(days=1))})
    with DuckDBEngine().open(_table(data), positions=False) as scan:
        got = scan.summarize(plan)
    window_of = [int((7 * i + 3) // 24) for i in range(len(data))]
    _same(got, _brute(data, window_of))
    for w in got.windows():
        info = got.groups[(w, None, None)]
        members = [T0 + timedelta(hours=7 * i) for i in range(len(data)) if window_of[i] == w]
        assert (info.start, info.end) == (min(members), max(members))


@settings(max_examples=40, deadline=None)
@given(rows, st.data())
def test_summaries_of_parts_merge_into_the_summary_of_the_whole(
    data: list[tuple[float | None, str | None, str]], draw: st.DataObject
) -> None:
    plan = SummaryPlan(**{**PLAN.__dict__, "windows": TimeWindows("ts", T0, timedelta(days=2))})
    merged, whole = _merged_parts(_table(data), plan, draw)
    _same(merged, whole)


def _merged_parts(table: pa.Table, plan: SummaryPlan, draw: st.DataObject) -> tuple[Summaries, Summaries]:
    """The table summarised in three parts cut where ``draw`` says and merged in an order it draws,
    beside the summary of the whole table."""
    cuts = sorted(draw.draw(st.lists(st.integers(0, table.num_rows), min_size=2, max_size=2)))
    engine = DuckDBEngine()
    parts = []
    for lo, hi in ((0, cuts[0]), (cuts[0], cuts[1]), (cuts[1], table.num_rows)):
        with engine.open(table.slice(lo, hi - lo), positions=False) as scan:
            parts.append(scan.summarize(plan))
    with engine.open(table, positions=False) as scan:
        whole = scan.summarize(plan)
    order = draw.draw(st.permutations([0, 1, 2]))
    return parts[order[0]].merge(parts[order[1]]).merge(parts[order[2]]), whole


def test_scores_binary_equal_brute_force() -> None:
    rng = np.random.default_rng(3)
    n = 500
    score = rng.uniform(size=n)
    label = np.where(rng.uniform(size=n) < 0.2, np.nan, (rng.uniform(size=n) < score).astype(float))
    table = pa.table({"s": score, "y": pa.array(label, from_pandas=True)})
    plan = SummaryPlan(score=ScorePlan("binary", "s", "y", grid=50), windows=RowWindows(200))
    with DuckDBEngine().open(table) as scan:
        got = scan.summarize(plan)
    for w in range(3):
        sl = slice(200 * w, 200 * (w + 1))
        s, y = score[sl], label[sl]
        b = np.clip(np.floor(s * 50), 0, 49).astype(int)
        summary = got.scores[(w, None, None)]
        assert summary.positives.tolist() == np.bincount(b[y == 1], minlength=50).tolist()
        assert summary.negatives.tolist() == np.bincount(b[y == 0], minlength=50).tolist()
        assert summary.unlabelled.tolist() == np.bincount(b[np.isnan(y)], minlength=50).tolist()
        np.testing.assert_allclose(summary.score_sums, np.bincount(b, weights=s, minlength=50))


def test_scores_regression_and_multiclass_equal_brute_force() -> None:
    rng = np.random.default_rng(4)
    pred = rng.normal(size=300)
    truth = np.where(rng.uniform(size=300) < 0.1, np.nan, pred + rng.normal(size=300))
    table = pa.table({"p": pred, "y": pa.array(truth, from_pandas=True)})
    with DuckDBEngine().open(table) as scan:
        got = scan.summarize(SummaryPlan(score=ScorePlan("regression", "p", "y")))
    ok = ~np.isnan(truth)
    e = pred[ok] - truth[ok]
    expected = [
        ok.sum(),
        e.sum(),
        np.abs(e).sum(),
        (e**2).sum(),
        (e**4).sum(),
        truth[ok].sum(),
        (truth[ok] ** 2).sum(),
    ]
    np.testing.assert_allclose(got.scores[(0, None, None)].sums[:7], expected, rtol=1e-9)
    assert got.scores[(0, None, None)].pending == int((~ok).sum())

    classes = rng.choice(["cat", "dog", "emu"], size=200).tolist()
    truth_c = [c if rng.uniform() < 0.7 else None for c in rng.choice(["cat", "dog"], size=200).tolist()]
    table = pa.table({"p": classes, "y": truth_c})
    with DuckDBEngine().open(table) as scan:
        got = scan.summarize(SummaryPlan(score=ScorePlan("multiclass", "p", "y")))
    summary: ScoreSummary = got.scores[(0, None, None)]
    assert dict(summary.confusion) == dict(
        Counter((y, p) for p, y in zip(classes, truth_c, strict=True) if y)
    )
    assert summary.pending == sum(y is None for y in truth_c)


def test_edges_from_quantiles_and_from_few_distinct_values() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=10_000)
    table = pa.table(
        {
            "x": x,
            "k": rng.integers(0, 5, size=10_000).astype(float),
            "c": pa.array([None] * 10_000, pa.float64()),
        }
    )
    with DuckDBEngine().open(table) as scan:
        edges = scan.fit_edges(["x", "k", "c"], bins=10)
    assert edges["k"] == (0.0, 1.0, 2.0, 3.0)
    assert len(edges["x"]) == 9
    counts = NumericSummary.of(x, edges["x"]).counts
    assert counts.min() >= 990 and counts.max() <= 1010  # each bin holds about a tenth
    assert edges["c"] == ()


def _scored(rng: np.random.Generator, n: int) -> pa.Table:
    """Binary scores with labels (a fifth missing) over three days of irregular times, two segments."""
    score = rng.uniform(size=n)
    label = np.where(rng.uniform(size=n) < 0.2, np.nan, (rng.uniform(size=n) < score).astype(float))
    seconds = np.sort(rng.integers(0, 3 * 86_400, n))
    return pa.table(
        {
            "s": score,
            "y": pa.array(label, from_pandas=True),
            "seg": rng.choice(["p", "q"], n),
            "ts": pa.array([T0 + timedelta(seconds=int(x)) for x in seconds], pa.timestamp("us", "UTC")),
        }
    )


BLOCKED = SummaryPlan(
    score=ScorePlan("binary", "s", "y", grid=200, block_seconds=3600),
    windows=TimeWindows("ts", T0, timedelta(days=1)),
    segments=("seg",),
)


def _same_blocks(a: ScoreSummary, b: ScoreSummary) -> None:
    assert sorted(a.blocks) == sorted(b.blocks)
    for block in a.blocks:
        assert a.blocks[block].tolist() == b.blocks[block].tolist()


def test_scores_per_hour_block_equal_brute_force() -> None:
    from fourloops.engines.summaries import BLOCK_BINS

    table = _scored(np.random.default_rng(6), 2_000)
    with DuckDBEngine().open(table, positions=False) as scan:
        got = scan.summarize(BLOCKED)
    score, label = table["s"].to_numpy(), table["y"].to_numpy(zero_copy_only=False)
    seg = np.array(table["seg"].to_pylist())
    hours = np.array([int(t.timestamp() // 3600) for t in table["ts"].to_pylist()])
    day = (hours - int(T0.timestamp() // 3600)) // 24
    coarse = np.clip(np.floor(score * 200), 0, 199).astype(int) * BLOCK_BINS // 200
    for key, summary in got.scores.items():
        w, column, value = key
        member = (day == w) & (True if column is None else seg == value) & ~np.isnan(label)
        want = {}
        for hour in np.unique(hours[member]):
            rows = member & (hours == hour)
            want[int(hour)] = np.stack(
                [
                    np.bincount(coarse[rows & (label == 1)], minlength=BLOCK_BINS),
                    np.bincount(coarse[rows & (label == 0)], minlength=BLOCK_BINS),
                ]
            )
        _same_blocks(summary, ScoreSummary("binary", 200, blocks=want))
        assert sum(int(c.sum()) for c in summary.blocks.values()) == summary.labelled
    # without time windows there are no blocks (rows have no hour to share)
    with DuckDBEngine().open(table) as scan:
        plain = scan.summarize(SummaryPlan(score=BLOCKED.score, windows=RowWindows(500)))
    assert all(not s.blocks for s in plain.scores.values())


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.data())
def test_score_blocks_of_parts_merge_into_those_of_the_whole(seed: int, draw: st.DataObject) -> None:
    merged, whole = _merged_parts(_scored(np.random.default_rng(seed), 300), BLOCKED, draw)
    assert merged.scores.keys() == whole.scores.keys()
    for key, summary in whole.scores.items():
        _same_blocks(merged.scores[key], summary)
        assert merged.scores[key].positives.tolist() == summary.positives.tolist()
