from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import fourloops.evaluation as ev

MODULES = [
    "fourloops.evaluation",
    "fourloops.evaluation.baselines",
    "fourloops.evaluation.calibration",
    "fourloops.evaluation.cost",
    "fourloops.evaluation.metrics",
    "fourloops.evaluation.metrics_binary",
    "fourloops.evaluation.metrics_multiclass",
    "fourloops.evaluation.metrics_regression",
    "fourloops.evaluation.segments",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    for attr in module.__all__:
        assert getattr(module, attr) is not None


def test_no_scikit_learn_at_runtime() -> None:
    for name in MODULES:
        source = Path(importlib.import_module(name).__file__).read_text()
        assert "sklearn" not in source


def test_public_surface() -> None:
    assert {
        "evaluate",
        "roc_auc",
        "calibration",
        "best_threshold",
        "Cost",
        "segment_metrics",
        "bootstrap_diff",
        "evaluate_with_baseline",
        "baseline_predictions",
    } <= set(ev.__all__)
