from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from fourloops import evaluation as ev


@pytest.fixture
def binary():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    score = np.clip(0.35 * y + rng.uniform(0, 0.65, 500), 0, 1).round(2)
    return y, score


def test_binary_evaluate_has_every_metric(binary) -> None:
    y, score = binary
    out = ev.evaluate("binary", y, score, threshold=0.4, cost=ev.Cost(fp=1.0, fn=4.0))
    assert out["n"] == 500
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-9)
    assert out["average_precision"] == pytest.approx(skm.average_precision_score(y, score))
    assert out["f1"] == pytest.approx(skm.f1_score(y, score >= 0.4))
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, score >= 0.4))
    assert out["prevalence"] == pytest.approx(y.mean())
    assert out["ece"] == pytest.approx(ev.calibration(y, score).ece)
    assert out["cost"] == ev.expected_cost(y, score, ev.Cost(fp=1.0, fn=4.0), threshold=0.4)
    assert out["cost_per_row"] == pytest.approx(out["cost"] / 500)
    assert out["best_cost"] <= out["cost"]
    choice = ev.best_threshold(y, score, ev.Cost(fp=1.0, fn=4.0))
    assert out["best_threshold"] == choice.threshold
    assert all(v is None or isinstance(v, int | float) for v in out.values())


def test_binary_evaluate_quantile_bins_and_weights(binary) -> None:
    y, score = binary
    out = ev.evaluate("binary", y, score, bins=5, strategy="quantile")
    assert out["ece"] == pytest.approx(ev.calibration(y, score, bins=5, strategy="quantile").ece)
    w = np.linspace(0.5, 2.0, 500)
    out = ev.evaluate("binary", y, score, sample_weight=w)
    assert out["log_loss"] == pytest.approx(skm.log_loss(y, score, sample_weight=w), abs=1e-9)


def test_binary_single_class_is_none_without_crashing() -> None:
    out = ev.evaluate("binary", [1, 1, 1], [0.2, 0.5, 0.9], cost=ev.Cost(fp=1.0, fn=1.0))
    assert out["roc_auc"] is None
    assert out["average_precision"] == 1.0
    assert out["log_loss"] is not None
    empty = ev.evaluate("binary", [], [], cost=ev.Cost(fp=1.0, fn=1.0))
    assert empty["n"] == 0
    assert empty["roc_auc"] is None and empty["best_threshold"] is None


def test_multiclass_evaluate() -> None:
    rng = np.random.default_rng(2)
    proba = rng.dirichlet([1, 1, 1], 300)
    y = rng.integers(0, 3, 300)
    out = ev.evaluate("multiclass", y, proba)
    assert set(out) == {"n", "accuracy", "macro_f1", "log_loss"}
    assert out["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]), abs=1e-9)


def test_regression_evaluate_with_quantiles() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=400)
    pred = y + rng.normal(scale=0.5, size=400)
    quantiles = {0.1: pred - 0.64, 0.5: pred, 0.9: pred + 0.64}
    out = ev.evaluate("regression", y, pred, quantiles=quantiles)
    assert out["r2"] == pytest.approx(skm.r2_score(y, pred), abs=1e-9)
    assert out["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred), abs=1e-9)
    for q, values in quantiles.items():
        want = skm.mean_pinball_loss(y, values, alpha=q)
        assert out[f"pinball@{q:g}"] == pytest.approx(want, abs=1e-9)
    inside = np.mean((quantiles[0.1] <= y) & (y <= quantiles[0.9]))
    assert out["coverage@0.1-0.9"] == pytest.approx(inside)
    assert 0.7 < inside < 0.9


def test_regression_constant_truth_r2_is_none() -> None:
    assert ev.evaluate("regression", [1.0, 1.0], [1.0, 2.0])["r2"] is None


def test_direction_and_unknowns() -> None:
    assert ev.higher_is_better("binary", "average_precision")
    assert not ev.higher_is_better("binary", "ece")
    assert not ev.higher_is_better("binary", "best_cost")
    assert not ev.higher_is_better("regression", "pinball@0.9")
    assert ev.higher_is_better("regression", "coverage@0.1-0.9")
    with pytest.raises(ValueError):
        ev.higher_is_better("binary", "r2")
    with pytest.raises(ValueError):
        ev.evaluate("ranking", [1], [1])
