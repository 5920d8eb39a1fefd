from __future__ import annotations

import numpy as np
import pytest

from fourloops import evaluation as ev


def test_baseline_predictions() -> None:
    assert ev.baseline_predictions("binary", [1, 0, 0, 0], 2).tolist() == [0.25, 0.25]
    proba = ev.baseline_predictions("multiclass", [0, 2, 2, 2], 2, n_classes=4)
    assert proba.tolist() == [[0.25, 0.0, 0.75, 0.0]] * 2
    assert ev.baseline_predictions("multiclass", [0, 1, 1, 1], 1).shape == (1, 2)
    assert ev.baseline_predictions("regression", [1.0, 2.0, 9.0], 2).tolist() == [4.0, 4.0]
    median = ev.baseline_predictions("regression", [1.0, 2.0, 9.0], 1, statistic="median")
    assert median.tolist() == [2.0]


def test_baseline_errors() -> None:
    with pytest.raises(ValueError):
        ev.baseline_predictions("binary", [], 3)
    with pytest.raises(ValueError):
        ev.baseline_predictions("multiclass", [0, 5], 3, n_classes=3)
    with pytest.raises(ValueError):
        ev.baseline_predictions("regression", [1.0], 3, statistic="mode")  # type: ignore[arg-type]


def test_binary_model_beats_prior() -> None:
    rng = np.random.default_rng(0)
    y_train = rng.integers(0, 2, 1000)
    y = rng.integers(0, 2, 500)
    score = np.clip(0.4 * y + rng.uniform(0, 0.6, 500), 0, 1)
    out = ev.evaluate_with_baseline("binary", y_train, y, score, cost=ev.Cost(fp=1.0, fn=1.0))
    assert out["baseline"]["roc_auc"] == 0.5
    assert out["baseline"]["average_precision"] == pytest.approx(y.mean())
    assert out["lift"]["roc_auc"] == pytest.approx(out["model"]["roc_auc"] - 0.5)
    assert out["lift"]["log_loss"] < 0
    assert "n" not in out["lift"] and "best_threshold" not in out["lift"]


def test_multiclass_and_regression_baselines() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    proba = np.eye(3)[y] * 0.7 + 0.1
    out = ev.evaluate_with_baseline("multiclass", y, y, proba)
    assert out["lift"]["accuracy"] > 0
    y_reg = rng.normal(size=200)
    pred = y_reg + rng.normal(scale=0.1, size=200)
    quantiles = {0.1: pred - 0.2, 0.9: pred + 0.2}
    out = ev.evaluate_with_baseline("regression", y_reg, y_reg, pred, quantiles=quantiles)
    assert out["baseline"]["r2"] == pytest.approx(0.0, abs=1e-12)
    assert out["baseline_median"]["mae"] <= out["baseline"]["mae"] + 1e-12
    assert out["baseline"]["coverage@0.1-0.9"] == pytest.approx(0.8)
    assert out["lift"]["r2"] > 0.9


def test_lift_with_undefined_metrics() -> None:
    assert ev.lift({"n": 3, "roc_auc": None, "brier": 0.1}, {"roc_auc": 0.5, "brier": 0.3}) == {
        "roc_auc": None,
        "brier": pytest.approx(-0.2),
    }
