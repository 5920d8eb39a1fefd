"""Binary classification metrics (``y_true`` in {0, 1}, ``score`` = P(y = 1)).

Every metric here is one vectorised computation over a *weight matrix*: a
row of weights per replicate. A plain call uses one row (the sample weights,
or ones); the bootstrap in :mod:`fourloops.evaluation.segments` passes one row
of resampling counts per replicate, so point estimates and intervals come from
the same code. This module also holds the input checks and :class:`MetricSpec`
that the multiclass and regression modules share.

Undefined metrics (ROC-AUC or average precision without both classes, any
metric of an empty or zero-weight sample) are ``None`` from the public
functions and NaN inside the vectorised code; they never raise.

>>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
>>> roc_auc([1, 1], [0.2, 0.9]) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MetricSpec",
    "as_binary_labels",
    "as_vector",
    "as_weights",
    "average_precision",
    "binary_specs",
    "brier",
    "check_probability",
    "f1",
    "from_stats",
    "log_loss",
    "mean_finish",
    "optional",
    "precision",
    "prepare_binary",
    "ratio",
    "recall",
    "roc_auc",
]

FloatArray = NDArray[np.float64]
#: (y, prediction, weights of shape (replicates, n)) -> metric per replicate.
BatchFn = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]

#: Clipping of probabilities before the log, as scikit-learn >= 1.6 does it:
#: the machine epsilon of float64, applied to p and to 1 - p separately.
LOG_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class MetricSpec:
    """A named metric of one task, computable for many weight rows at once."""

    name: str
    higher_is_better: bool
    batch: BatchFn

    def __call__(self, y: FloatArray, prediction: FloatArray, weights: FloatArray) -> float:
        """The metric for one weight vector; NaN when undefined."""
        return float(self.batch(y, prediction, weights[np.newaxis, :])[0])


def from_stats(
    stats: Callable[[FloatArray, FloatArray], FloatArray],
    finish: Callable[[FloatArray], FloatArray],
) -> BatchFn:
    """A batch function for metrics that are a function of weighted row sums.

    ``stats(y, prediction)`` gives per-row statistics of shape (n, k);
    ``finish`` maps their weighted sums (replicates, k) to metric values.
    """

    def batch(y: FloatArray, prediction: FloatArray, weights: FloatArray) -> FloatArray:
        return finish(weights @ stats(y, prediction))

    return batch


def ratio(num: FloatArray, den: FloatArray, undefined: float = np.nan) -> FloatArray:
    """``num / den`` with ``undefined`` where ``den`` is zero."""
    out = np.full(np.broadcast(num, den).shape, undefined, dtype=float)
    np.divide(num, den, out=out, where=den != 0)
    return out


def mean_finish(sums: FloatArray) -> FloatArray:
    """Weighted mean from sums of (value, 1)."""
    return ratio(sums[:, 0], sums[:, 1])


def optional(value: float) -> float | None:
    """``None`` for NaN, else a plain float."""
    return None if np.isnan(value) else float(value)


def as_vector(values: ArrayLike, name: str) -> FloatArray:
    """A finite 1-d float array, or ``ValueError``."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def as_weights(sample_weight: ArrayLike | None, n: int) -> FloatArray:
    """Sample weights (ones when ``None``), checked to be finite and non-negative."""
    if sample_weight is None:
        return np.ones(n)
    w = as_vector(sample_weight, "sample_weight")
    if w.shape[0] != n:
        raise ValueError(f"sample_weight has {w.shape[0]} rows, expected {n}")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    return w


def as_binary_labels(y_true: ArrayLike) -> FloatArray:
    """Labels as a float array of zeros and ones, or ``ValueError``."""
    y = as_vector(y_true, "y_true")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("binary y_true must contain only 0 and 1")
    return y


def prepare_binary(y_true: ArrayLike, score: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Checked ``(y, score)``; an (n, 2) probability matrix gives its column 1."""
    y = as_binary_labels(y_true)
    arr = np.asarray(score, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 2:
        arr = arr[:, 1]
    s = as_vector(arr, "score")
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"score has {s.shape[0]} rows, y_true has {y.shape[0]}")
    return y, s


def check_probability(score: FloatArray) -> FloatArray:
    """``score`` itself when it lies in [0, 1], else ``ValueError``."""
    if score.size and (score.min() < 0 or score.max() > 1):
        raise ValueError("scores must be probabilities in [0, 1]")
    return score


def _grouped(y: FloatArray, score: FloatArray, weights: FloatArray) -> tuple[FloatArray, ...]:
    """Positive and negative weight per distinct score, highest score first."""
    order = np.argsort(-score, kind="mergesort")
    sorted_score = score[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_score)) + 1))
    w = weights[:, order]
    y_sorted = y[order]
    if y_sorted.size == 0:
        empty = np.zeros((weights.shape[0], 0))
        return empty, empty
    pos = np.add.reduceat(w * y_sorted, starts, axis=1)
    neg = np.add.reduceat(w * (1.0 - y_sorted), starts, axis=1)
    return pos, neg


def _roc_auc_batch(y: FloatArray, score: FloatArray, weights: FloatArray) -> FloatArray:
    # Mann-Whitney form: each negative earns the positive weight ranked strictly
    # above it plus half the tied positive weight; equal to the ROC trapezoid.
    pos, neg = _grouped(y, score, weights)
    above = np.cumsum(pos, axis=1) - pos
    num = np.sum(neg * (above + 0.5 * pos), axis=1)
    return ratio(num, pos.sum(axis=1) * neg.sum(axis=1))


def _average_precision_batch(y: FloatArray, score: FloatArray, weights: FloatArray) -> FloatArray:
    # AP = sum over thresholds of (recall step) * precision at that threshold.
    pos, neg = _grouped(y, score, weights)
    tps = np.cumsum(pos, axis=1)
    precision_at = ratio(tps, tps + np.cumsum(neg, axis=1), undefined=0.0)
    return ratio(np.sum(pos * precision_at, axis=1), pos.sum(axis=1))


def _log_loss_stats(y: FloatArray, score: FloatArray) -> FloatArray:
    p1 = np.clip(score, LOG_EPS, 1 - LOG_EPS)
    p0 = np.clip(1 - score, LOG_EPS, 1 - LOG_EPS)
    loss = -(y * np.log(p1) + (1 - y) * np.log(p0))
    return np.column_stack([loss, np.ones_like(y)])


def _brier_stats(y: FloatArray, score: FloatArray) -> FloatArray:
    return np.column_stack([(score - y) ** 2, np.ones_like(y)])


def _prevalence_stats(y: FloatArray, score: FloatArray) -> FloatArray:
    return np.column_stack([y, np.ones_like(y)])


def _confusion_stats(threshold: float) -> Callable[[FloatArray, FloatArray], FloatArray]:
    def stats(y: FloatArray, score: FloatArray) -> FloatArray:
        hit = (score >= threshold).astype(float)
        # tp, predicted positive, actual positive, correct, rows
        return np.column_stack([y * hit, hit, y, y * hit + (1 - y) * (1 - hit), np.ones_like(y)])

    return stats


def _precision_finish(s: FloatArray) -> FloatArray:
    return ratio(s[:, 0], s[:, 1], undefined=0.0)


def _recall_finish(s: FloatArray) -> FloatArray:
    return ratio(s[:, 0], s[:, 2], undefined=0.0)


def _f1_finish(s: FloatArray) -> FloatArray:
    # 2 tp / (2 tp + fp + fn) = 2 tp / (predicted + actual)
    return ratio(2 * s[:, 0], s[:, 1] + s[:, 2], undefined=0.0)


def _accuracy_finish(s: FloatArray) -> FloatArray:
    return ratio(s[:, 3], s[:, 4])


def binary_specs(threshold: float = 0.5) -> dict[str, MetricSpec]:
    """The binary metrics by name; threshold metrics use ``score >= threshold``."""
    confusion = _confusion_stats(threshold)
    return {
        spec.name: spec
        for spec in (
            MetricSpec("roc_auc", True, _roc_auc_batch),
            MetricSpec("average_precision", True, _average_precision_batch),
            MetricSpec("log_loss", False, from_stats(_log_loss_stats, mean_finish)),
            MetricSpec("brier", False, from_stats(_brier_stats, mean_finish)),
            MetricSpec("precision", True, from_stats(confusion, _precision_finish)),
            MetricSpec("recall", True, from_stats(confusion, _recall_finish)),
            MetricSpec("f1", True, from_stats(confusion, _f1_finish)),
            MetricSpec("accuracy", True, from_stats(confusion, _accuracy_finish)),
            MetricSpec("prevalence", True, from_stats(_prevalence_stats, mean_finish)),
        )
    }


def _compute(
    name: str,
    y_true: ArrayLike,
    score: ArrayLike,
    sample_weight: ArrayLike | None,
    *,
    threshold: float = 0.5,
    probability: bool = False,
) -> float | None:
    y, s = prepare_binary(y_true, score)
    if probability:
        check_probability(s)
    spec = binary_specs(threshold)[name]
    return optional(spec(y, s, as_weights(sample_weight, y.shape[0])))


def roc_auc(y_true: ArrayLike, score: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float | None:
    """Area under the ROC curve, ties counted as half; ``None`` without both classes.

    >>> roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])
    0.875
    """
    return _compute("roc_auc", y_true, score, sample_weight)


def average_precision(
    y_true: ArrayLike, score: ArrayLike, *, sample_weight: ArrayLike | None = None
) -> float | None:
    """PR-AUC as average precision (step-wise, no interpolation); ``None`` without positives.

    >>> average_precision([0, 1, 0, 1], [0.1, 0.9, 0.6, 0.4])
    0.8333333333333333
    """
    return _compute("average_precision", y_true, score, sample_weight)


def log_loss(y_true: ArrayLike, score: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float | None:
    """Mean negative log-likelihood (natural log); ``None`` for an empty sample.

    ``p`` and ``1 - p`` are clipped to ``[eps, 1 - eps]`` with ``eps`` the float64
    machine epsilon (about 2.2e-16), as scikit-learn >= 1.6 does; a confident
    miss therefore costs about 36, not infinity.

    >>> round(log_loss([0, 1], [0.2, 0.6]), 6)
    0.366985
    """
    return _compute("log_loss", y_true, score, sample_weight, probability=True)


def brier(y_true: ArrayLike, score: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float | None:
    """Brier score, the mean squared error of the probabilities.

    >>> round(brier([0, 1], [0.2, 0.6]), 6)
    0.1
    """
    return _compute("brier", y_true, score, sample_weight, probability=True)


def precision(
    y_true: ArrayLike,
    score: ArrayLike,
    *,
    threshold: float = 0.5,
    sample_weight: ArrayLike | None = None,
) -> float | None:
    """Share of rows with ``score >= threshold`` that are positive; 0 when none are."""
    return _compute("precision", y_true, score, sample_weight, threshold=threshold)


def recall(
    y_true: ArrayLike,
    score: ArrayLike,
    *,
    threshold: float = 0.5,
    sample_weight: ArrayLike | None = None,
) -> float | None:
    """Share of positives with ``score >= threshold``; 0 when there are none."""
    return _compute("recall", y_true, score, sample_weight, threshold=threshold)


def f1(
    y_true: ArrayLike,
    score: ArrayLike,
    *,
    threshold: float = 0.5,
    sample_weight: ArrayLike | None = None,
) -> float | None:
    """F1 at ``threshold``: ``2 tp / (2 tp + fp + fn)``, 0 when that is 0 / 0.

    >>> f1([0, 1, 1, 0], [0.7, 0.8, 0.3, 0.1])
    0.5
    """
    return _compute("f1", y_true, score, sample_weight, threshold=threshold)
