from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from fourloops import evaluation as ev


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n = 3000
    region = rng.choice(["north", "south", "east"], n, p=[0.6, 0.35, 0.05])
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    return y, score, {"region": region, "vip": rng.integers(0, 2, n).astype(bool)}


def test_rows_overall_then_segments(data) -> None:
    y, score, segments = data
    results = ev.segment_metrics("binary", y, score, segments, n_boot=50)
    assert results[0].is_overall and results[0].n == len(y)
    assert [(r.column, r.value) for r in results[1:]] == [
        ("region", "east"),
        ("region", "north"),
        ("region", "south"),
        ("vip", False),
        ("vip", True),
    ]
    east = results[1]
    assert east.too_small and east.metrics == {} and east.n < 200
    for r in results:
        if r.too_small:
            continue
        rows = np.ones(len(y), bool) if r.is_overall else segments[r.column] == r.value
        assert r.n == rows.sum()
        assert r.positives == y[rows].sum()
        assert set(r.metrics) == {"roc_auc", "average_precision", "log_loss", "brier"}
        point, low, high = r.metrics["roc_auc"]
        assert point == pytest.approx(skm.roc_auc_score(y[rows], score[rows]), abs=1e-9)
        for point, low, high in r.metrics.values():
            assert low <= point <= high


def test_reproducible_by_seed_and_independent_of_other_segments(data) -> None:
    y, score, segments = data
    a = ev.segment_metrics("binary", y, score, segments, n_boot=40, seed=3)
    b = ev.segment_metrics("binary", y, score, segments, n_boot=40, seed=3)
    c = ev.segment_metrics("binary", y, score, segments, n_boot=40, seed=4)
    only_vip = ev.segment_metrics("binary", y, score, {"vip": segments["vip"]}, n_boot=40, seed=3)
    assert a == b
    assert a[2].metrics != c[2].metrics
    assert only_vip[1] == a[4]


def test_interval_narrows_with_more_rows() -> None:
    rng = np.random.default_rng(11)
    widths = []
    for n in (300, 3000):
        y = rng.integers(0, 2, n)
        score = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
        [r] = ev.segment_metrics("binary", y, score, {}, metrics=["roc_auc", "brier"], n_boot=100)
        widths.append(r.metrics["roc_auc"].high - r.metrics["roc_auc"].low)
    assert widths[1] < widths[0] / 2


def test_bernoulli_mean_interval_covers_truth_about_95_percent() -> None:
    rng = np.random.default_rng(2024)
    true_p, n, sims = 0.3, 250, 200
    covered = 0
    for sim in range(sims):
        y = rng.binomial(1, true_p, n)
        [r] = ev.segment_metrics(
            "binary", y, np.full(n, 0.5), {}, metrics=["prevalence"], n_boot=200, seed=sim
        )
        _, low, high = r.metrics["prevalence"]
        covered += low <= true_p <= high
    assert 0.88 <= covered / sims <= 0.99


def test_multiclass_and_regression_segments() -> None:
    rng = np.random.default_rng(5)
    n = 600
    group = rng.choice([1, 2], n)
    y = rng.integers(0, 3, n)
    proba = rng.dirichlet([1, 1, 1], n)
    [overall, *rest] = ev.segment_metrics("multiclass", y, proba, {"g": group}, n_boot=30)
    assert overall.positives is None
    assert overall.metrics["macro_f1"].point == pytest.approx(
        skm.f1_score(y, proba.argmax(1), average="macro"), abs=1e-9
    )
    assert [r.value for r in rest] == [1, 2]
    y_reg = rng.normal(size=n)
    pred = y_reg + rng.normal(size=n)
    quantiles = {0.1: pred - 1.28, 0.9: pred + 1.28}
    [overall, *_] = ev.segment_metrics(
        "regression", y_reg, pred, {"g": group}, quantiles=quantiles, n_boot=30
    )
    assert set(overall.metrics) == {
        "mae",
        "rmse",
        "r2",
        "pinball@0.1",
        "pinball@0.9",
        "coverage@0.1-0.9",
    }
    assert overall.metrics["r2"].point == pytest.approx(skm.r2_score(y_reg, pred), abs=1e-9)


def test_segment_values_with_nulls_and_undefined_metrics() -> None:
    y = np.array([1] * 250 + [0, 1] * 125)
    score = np.linspace(0, 1, 500)
    column = np.array([None] * 250 + ["a"] * 250, dtype=object)
    results = ev.segment_metrics("binary", y, score, {"c": column}, metrics=["roc_auc"], n_boot=20)
    assert [r.value for r in results[1:]] == ["a", None]
    assert results[2].metrics["roc_auc"] == ev.Interval(None, None, None)


def test_bootstrap_ci_and_diff() -> None:
    rng = np.random.default_rng(9)
    n = 2000
    y = rng.integers(0, 2, n)
    noise = rng.uniform(0, 1, n)
    better = np.clip(0.4 * y + 0.6 * noise, 0, 1)
    worse = np.clip(0.2 * y + 0.8 * noise, 0, 1)
    ci = ev.bootstrap_ci("binary", y, better, "roc_auc", n_boot=200)
    assert ci.low < ci.point < ci.high
    diff = ev.bootstrap_diff("binary", y, better, worse, "roc_auc", n_boot=200)
    assert diff.point == pytest.approx(skm.roc_auc_score(y, better) - skm.roc_auc_score(y, worse), abs=1e-12)
    assert 0 < diff.low < diff.point < diff.high
    same = ev.bootstrap_diff("binary", y, better, better, "log_loss", n_boot=50)
    assert same == ev.Interval(0.0, 0.0, 0.0)


def test_argument_checks(data) -> None:
    y, score, segments = data
    with pytest.raises(ValueError, match="unknown binary metrics"):
        ev.segment_metrics("binary", y, score, segments, metrics=["rmse"])
    with pytest.raises(ValueError):
        ev.segment_metrics("binary", y, score, {"x": [1, 2]})
    with pytest.raises(ValueError):
        ev.bootstrap_ci("binary", y, score, "roc_auc", n_boot=0)
    with pytest.raises(ValueError):
        ev.bootstrap_ci("binary", y, score, "roc_auc", confidence=1.0)


def test_chunked_replicates_give_the_same_intervals(monkeypatch) -> None:
    from fourloops.evaluation import segments

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    score = rng.uniform(size=500)
    names = ["roc_auc", "ece", "f1"]
    whole = ev.segment_metrics("binary", y, score, {}, metrics=names, n_boot=60)
    monkeypatch.setattr(segments, "_MAX_CELLS", 7 * 500)
    chunked = ev.segment_metrics("binary", y, score, {}, metrics=names, n_boot=60)
    assert chunked == whole


def test_bootstrap_metric_equals_metric_on_resampled_rows() -> None:
    from fourloops.evaluation.metrics import metric_specs
    from fourloops.evaluation.segments import _counts

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 80).astype(float)
    score = rng.choice([0.1, 0.4, 0.5, 0.9], 80)
    counts = _counts(np.random.default_rng(1), 5, 80)
    for spec in metric_specs("binary", threshold=0.45).values():
        batched = spec.batch(y, score, counts)
        for b in range(5):
            rows = np.repeat(np.arange(80), counts[b].astype(int))
            assert batched[b] == pytest.approx(spec(y[rows], score[rows], np.ones(80)), abs=1e-12)


def test_zero_replicates_gives_points_without_intervals() -> None:
    import numpy as np

    from fourloops.evaluation import segment_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    p = np.clip(y * 0.3 + rng.uniform(0, 0.7, 600), 0, 1)
    seg = {"g": np.array(["a", "b"] * 300)}
    with_ci = segment_metrics("binary", y, p, seg, metrics=["roc_auc"], min_size=10, n_boot=50)
    points = segment_metrics("binary", y, p, seg, metrics=["roc_auc"], min_size=10, n_boot=0)
    for a, b in zip(with_ci, points, strict=True):
        assert a.metrics["roc_auc"].point == b.metrics["roc_auc"].point
        assert b.metrics["roc_auc"].low is None and b.metrics["roc_auc"].high is None
