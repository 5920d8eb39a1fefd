"""Regression metrics: errors of a point prediction, and of predicted quantiles.

R2 is ``None`` when ``y_true`` is constant (the total sum of squares is 0).
scikit-learn returns 1.0 or 0.0 there by default (``force_finite=True``); we
prefer to say "undefined" over a number that looks like a result.

>>> mae([1.0, 2.0, 4.0], [1.5, 2.0, 3.0])
0.5
>>> r2([3.0, 3.0], [3.0, 2.0]) is None
True
>>> pinball_loss([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], alpha=0.9)
0.3333333333333333
>>> interval_coverage([1.0, 2.0, 3.0], [0.5, 2.5, 2.0], [1.5, 3.0, 4.0])
0.6666666666666666
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from fourloops.evaluation.metrics_binary import (
    FloatArray,
    MetricSpec,
    as_vector,
    as_weights,
    from_stats,
    mean_finish,
    optional,
    ratio,
)

__all__ = [
    "interval_coverage",
    "mae",
    "pinball_loss",
    "prepare_regression",
    "r2",
    "regression_specs",
    "rmse",
]


def prepare_regression(
    y_true: ArrayLike,
    prediction: ArrayLike,
    quantiles: Mapping[float, ArrayLike] | None = None,
) -> tuple[FloatArray, FloatArray, tuple[float, ...]]:
    """Checked ``(y, predictions, levels)``.

    ``predictions`` has shape (n, 1 + q): the point prediction, then one column
    per quantile level in ascending order of ``levels``.
    """
    y = as_vector(y_true, "y_true")
    columns = [as_vector(prediction, "prediction")]
    levels = tuple(sorted(float(q) for q in (quantiles or {})))
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"quantile levels must lie in (0, 1), got {level}")
        columns.append(as_vector(quantiles[level], f"quantile {level:g}"))  # type: ignore[index]
    for column in columns:
        if column.shape[0] != y.shape[0]:
            raise ValueError(f"a prediction has {column.shape[0]} rows, y_true has {y.shape[0]}")
    return y, np.column_stack(columns), levels


def _abs_stats(y: FloatArray, pred: FloatArray) -> FloatArray:
    return np.column_stack([np.abs(y - pred[:, 0]), np.ones_like(y)])


def _sq_stats(y: FloatArray, pred: FloatArray) -> FloatArray:
    return np.column_stack([(y - pred[:, 0]) ** 2, np.ones_like(y)])


def _rmse_finish(sums: FloatArray) -> FloatArray:
    return np.sqrt(mean_finish(sums))


def _r2_stats(y: FloatArray, pred: FloatArray) -> FloatArray:
    # Centre on the observed value nearest the mean: small numbers for the
    # one-pass total sum of squares, and exact zeros when y is constant.
    centre = y[np.argmin(np.abs(y - y.mean()))] if y.size else 0.0
    d = y - centre
    return np.column_stack([(y - pred[:, 0]) ** 2, d, d * d, np.ones_like(y)])


def _r2_finish(sums: FloatArray) -> FloatArray:
    sse, sd, sdd, sw = sums.T
    total = sdd - ratio(sd * sd, sw, undefined=0.0)
    defined = (sw > 0) & (total > 1e-14 * sdd)
    return np.where(defined, 1 - ratio(sse, np.where(defined, total, 0.0)), np.nan)


def _pinball_stats(column: int, alpha: float) -> Callable[[FloatArray, FloatArray], FloatArray]:
    def stats(y: FloatArray, pred: FloatArray) -> FloatArray:
        diff = y - pred[:, column]
        loss = np.where(diff >= 0, alpha * diff, (alpha - 1) * diff)
        return np.column_stack([loss, np.ones_like(y)])

    return stats


def _coverage_stats(low: int, high: int) -> Callable[[FloatArray, FloatArray], FloatArray]:
    def stats(y: FloatArray, pred: FloatArray) -> FloatArray:
        inside = (pred[:, low] <= y) & (y <= pred[:, high])
        return np.column_stack([inside.astype(float), np.ones_like(y)])

    return stats


def regression_specs(levels: Sequence[float] = ()) -> dict[str, MetricSpec]:
    """The regression metrics by name, plus ``pinball@q`` per quantile level and
    ``coverage@lo-hi`` for the interval between the lowest and highest level."""
    specs = [
        MetricSpec("mae", False, from_stats(_abs_stats, mean_finish)),
        MetricSpec("rmse", False, from_stats(_sq_stats, _rmse_finish)),
        MetricSpec("r2", True, from_stats(_r2_stats, _r2_finish)),
    ]
    for column, level in enumerate(levels, start=1):
        specs.append(
            MetricSpec(f"pinball@{level:g}", False, from_stats(_pinball_stats(column, level), mean_finish))
        )
    if len(levels) >= 2:
        name = f"coverage@{levels[0]:g}-{levels[-1]:g}"
        specs.append(MetricSpec(name, True, from_stats(_coverage_stats(1, len(levels)), mean_finish)))
    return {spec.name: spec for spec in specs}


def _compute(
    name: str, y_true: ArrayLike, prediction: ArrayLike, sample_weight: ArrayLike | None
) -> float | None:
    y, pred, _ = prepare_regression(y_true, prediction)
    return optional(regression_specs()[name](y, pred, as_weights(sample_weight, y.shape[0])))


def mae(y_true: ArrayLike, prediction: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float | None:
    """Mean absolute error; ``None`` when empty."""
    return _compute("mae", y_true, prediction, sample_weight)


def rmse(y_true: ArrayLike, prediction: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float | None:
    """Root mean squared error; ``None`` when empty."""
    return _compute("rmse", y_true, prediction, sample_weight)


def r2(y_true: ArrayLike, prediction: ArrayLike, *, sample_weight: ArrayLike | None = None) -> float | None:
    """Coefficient of determination; ``None`` when ``y_true`` is constant or empty."""
    return _compute("r2", y_true, prediction, sample_weight)


def pinball_loss(
    y_true: ArrayLike,
    quantile: ArrayLike,
    *,
    alpha: float,
    sample_weight: ArrayLike | None = None,
) -> float | None:
    """Mean pinball (quantile) loss of predicted ``alpha``-quantiles."""
    y, pred, levels = prepare_regression(y_true, quantile, {alpha: quantile})
    spec = regression_specs(levels)[f"pinball@{levels[0]:g}"]
    return optional(spec(y, pred, as_weights(sample_weight, y.shape[0])))


def interval_coverage(
    y_true: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
) -> float | None:
    """Share of rows with ``lower <= y <= upper``; ``None`` when empty."""
    y, pred, _ = prepare_regression(y_true, lower, None)
    high = as_vector(upper, "upper")
    if high.shape[0] != y.shape[0]:
        raise ValueError(f"upper has {high.shape[0]} rows, y_true has {y.shape[0]}")
    both = np.column_stack([pred, high])
    spec = MetricSpec("coverage", True, from_stats(_coverage_stats(0, 1), mean_finish))
    return optional(spec(y, both, as_weights(sample_weight, y.shape[0])))
