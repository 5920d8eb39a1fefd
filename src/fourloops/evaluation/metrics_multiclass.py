"""Multiclass metrics (``y_true`` integer labels 0..K-1, ``proba`` of shape (n, K)).

The predicted class is the arg-max of ``proba`` (the first class on ties).
Classes absent from both truth and prediction count as F1 = 0 in the macro
average, as scikit-learn does with ``labels=range(K), zero_division=0``.

>>> proba = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]
>>> accuracy([0, 1, 1], proba)
0.6666666666666666
>>> macro_f1([0, 1, 1], proba)
0.5555555555555555
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fourloops.evaluation.metrics_binary import (
    LOG_EPS,
    FloatArray,
    MetricSpec,
    as_vector,
    as_weights,
    from_stats,
    mean_finish,
    optional,
    ratio,
)

__all__ = ["accuracy", "macro_f1", "multiclass_log_loss", "multiclass_specs", "prepare_multiclass"]


def prepare_multiclass(y_true: ArrayLike, proba: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Checked ``(labels, proba)``: integer labels in ``range(K)``, probabilities in [0, 1]."""
    y = as_vector(y_true, "y_true")
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"proba must have shape ({y.shape[0]}, K), got {p.shape}")
    if not np.all(np.isfinite(p)) or (p.size and (p.min() < 0 or p.max() > 1)):
        raise ValueError("proba must contain probabilities in [0, 1]")
    k = p.shape[1]
    if k < 2:
        raise ValueError("proba needs at least two class columns")
    if np.any((y < 0) | (y >= k) | (y != np.round(y))):
        raise ValueError(f"y_true must contain integer labels in 0..{k - 1}")
    return y, p


def _onehot(labels: FloatArray, k: int) -> FloatArray:
    onehot: FloatArray = (labels.astype(np.int64)[:, np.newaxis] == np.arange(k)).astype(float)
    return onehot


def _accuracy_stats(y: FloatArray, proba: FloatArray) -> FloatArray:
    correct = (np.argmax(proba, axis=1) == y).astype(float)
    return np.column_stack([correct, np.ones_like(y)])


def _f1_stats(y: FloatArray, proba: FloatArray) -> FloatArray:
    k = proba.shape[1]
    truth = _onehot(y, k)
    predicted = _onehot(np.argmax(proba, axis=1).astype(float), k)
    return np.hstack([truth * predicted, predicted, truth, np.ones((y.shape[0], 1))])


def _macro_f1_finish(sums: FloatArray) -> FloatArray:
    k = (sums.shape[1] - 1) // 3
    tp, predicted, actual = sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k : 3 * k]
    per_class = ratio(2 * tp, predicted + actual, undefined=0.0)
    return np.where(sums[:, -1] > 0, per_class.mean(axis=1), np.nan)


def _log_loss_stats(y: FloatArray, proba: FloatArray) -> FloatArray:
    chosen = proba[np.arange(y.shape[0]), y.astype(np.int64)]
    loss = -np.log(np.clip(chosen, LOG_EPS, 1 - LOG_EPS))
    return np.column_stack([loss, np.ones_like(y)])


def multiclass_specs() -> dict[str, MetricSpec]:
    """The multiclass metrics by name."""
    return {
        spec.name: spec
        for spec in (
            MetricSpec("accuracy", True, from_stats(_accuracy_stats, mean_finish)),
            MetricSpec("macro_f1", True, from_stats(_f1_stats, _macro_f1_finish)),
            MetricSpec("log_loss", False, from_stats(_log_loss_stats, mean_finish)),
        )
    }


def _compute(name: str, y_true: ArrayLike, proba: ArrayLike, sample_weight: ArrayLike | None) -> float | None:
    y, p = prepare_multiclass(y_true, proba)
    return optional(multiclass_specs()[name](y, p, as_weights(sample_weight, y.shape[0])))


def accuracy(y_true: ArrayLike, proba: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float | None:
    """Share of rows whose arg-max class is the true class; ``None`` when empty."""
    return _compute("accuracy", y_true, proba, sample_weight)


def macro_f1(y_true: ArrayLike, proba: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float | None:
    """Unweighted mean over all K classes of the per-class F1."""
    return _compute("macro_f1", y_true, proba, sample_weight)


def multiclass_log_loss(
    y_true: ArrayLike, proba: ArrayLike, *, sample_weight: ArrayLike | None = None
) -> float | None:
    """Mean of ``-log p[true class]``, clipped like the binary :func:`log_loss`.

    Rows are not renormalised (scikit-learn >= 1.5 does not either; it warns).

    >>> round(multiclass_log_loss([0, 2], [[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]), 6)
    0.458145
    """
    return _compute("log_loss", y_true, proba, sample_weight)
