""" "Do nothing" baselines, so that a model's numbers always come with a counterfactual.

The baseline of each task is what one would predict knowing only the training
labels: the training positive rate (binary), the training class frequencies
(multiclass), the training mean or median (regression).

>>> baseline_predictions("binary", [0, 1, 1, 0], 3).tolist()
[0.5, 0.5, 0.5]
>>> out = evaluate_with_baseline("binary", [0, 1, 1, 0], [0, 1, 1], [0.2, 0.9, 0.7])
>>> out["model"]["roc_auc"], out["baseline"]["roc_auc"], out["lift"]["roc_auc"]
(1.0, 0.5, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from fourloops.evaluation.metrics import _check_task, evaluate
from fourloops.evaluation.metrics_binary import FloatArray, as_binary_labels, as_vector

__all__ = ["baseline_predictions", "evaluate_with_baseline", "lift"]

#: Entries of an evaluation that are not metrics, so have no lift.
_NOT_METRICS = frozenset({"n", "best_threshold"})


def baseline_predictions(
    task: str,
    y_train: ArrayLike,
    n: int,
    *,
    n_classes: int | None = None,
    statistic: Literal["mean", "median"] = "mean",
) -> FloatArray:
    """Constant predictions for ``n`` rows learnt from the training labels.

    Binary: the positive rate, shape (n,). Multiclass: the class frequencies
    over ``n_classes`` classes (default: largest label + 1), shape (n, K).
    Regression: the ``statistic`` of ``y_train``, shape (n,).
    """
    _check_task(task)
    if task == "binary":
        y = as_binary_labels(y_train)
        return np.full(n, _nonempty(y).mean())
    y = _nonempty(as_vector(y_train, "y_train"))
    if task == "multiclass":
        k = int(y.max()) + 1 if n_classes is None else n_classes
        if np.any((y < 0) | (y >= k) | (y != np.round(y))):
            raise ValueError(f"y_train must contain integer labels in 0..{k - 1}")
        freq = np.bincount(y.astype(np.int64), minlength=k) / y.size
        return np.tile(freq, (n, 1))
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    return np.full(n, y.mean() if statistic == "mean" else np.median(y))


def _nonempty(y: FloatArray) -> FloatArray:
    if y.size == 0:
        raise ValueError("a baseline needs at least one training label")
    return y


def lift(model: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    """``model - baseline`` per metric; ``None`` where either side is undefined.

    The sign is raw: for losses (log loss, Brier, MAE...) a negative lift is
    an improvement; see :func:`fourloops.evaluation.higher_is_better`.
    """
    out: dict[str, float | None] = {}
    for name, value in model.items():
        if name in _NOT_METRICS:
            continue
        other = baseline.get(name)
        out[name] = None if value is None or other is None else float(value - other)
    return out


def evaluate_with_baseline(
    task: str,
    y_train: ArrayLike,
    y_true: ArrayLike,
    prediction: ArrayLike,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """Metrics of the model and of the baseline on the same rows, and their lift.

    Returns ``{"model": ..., "baseline": ..., "lift": ...}``; regression adds
    ``"baseline_median"`` (the training median). ``options`` go to
    :func:`fourloops.evaluation.evaluate`; with regression ``quantiles`` the
    baseline quantiles are the training quantiles at the same levels.
    """
    y_eval = np.asarray(y_true)
    n = y_eval.shape[0]
    model = evaluate(task, y_true, prediction, **options)
    n_classes = np.asarray(prediction).shape[1] if task == "multiclass" else None
    base_options = dict(options)
    if task == "regression" and options.get("quantiles"):
        train = as_vector(y_train, "y_train")
        base_options["quantiles"] = {
            level: np.full(n, np.quantile(_nonempty(train), level)) for level in options["quantiles"]
        }
    base_pred = baseline_predictions(task, y_train, n, n_classes=n_classes)
    baseline = evaluate(task, y_true, base_pred, **base_options)
    out = {"model": model, "baseline": baseline, "lift": lift(model, baseline)}
    if task == "regression":
        median = baseline_predictions(task, y_train, n, statistic="median")
        out["baseline_median"] = evaluate(task, y_true, median, **base_options)
    return out
