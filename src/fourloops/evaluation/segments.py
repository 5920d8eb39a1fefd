"""Per-segment metrics with bootstrap confidence intervals, and paired differences.

Intervals are percentile bootstrap intervals: rows are resampled with
replacement within the segment, ``n_boot`` times, from a NumPy ``Generator``
seeded by ``seed`` and the segment's name, so a segment's interval does not
depend on which other segments were asked for. Each replicate is a row of
resampling counts used as weights, so every metric of every replicate comes
from one vectorised computation (no loop over rows, nor over replicates).
Replicates where a metric is undefined (say, no positive drawn) are left out;
if all are, the interval is ``None``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 1000)
>>> score = np.clip(0.3 * y + rng.uniform(0, 0.7, 1000), 0, 1)
>>> [r] = segment_metrics("binary", y, score, {}, metrics=["roc_auc"], n_boot=100)
>>> r.is_overall, r.n, r.too_small
(True, 1000, False)
>>> point, low, high = r.metrics["roc_auc"]
>>> bool(low < point < high)
True
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fourloops.evaluation.calibration import DEFAULT_BINS, bin_edges
from fourloops.evaluation.metrics import metric_specs, prepare
from fourloops.evaluation.metrics_binary import FloatArray, MetricSpec, optional

__all__ = [
    "DEFAULT_METRICS",
    "Interval",
    "SegmentResult",
    "bootstrap_ci",
    "bootstrap_diff",
    "segment_metrics",
]

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "average_precision", "log_loss", "brier"),
    "multiclass": ("accuracy", "macro_f1", "log_loss"),
    "regression": ("mae", "rmse", "r2"),
}
DEFAULT_MIN_SIZE = 200
DEFAULT_N_BOOT = 200
DEFAULT_CONFIDENCE = 0.95
#: Largest replicates x rows count matrix held in memory at once.
_MAX_CELLS = 1 << 21


class Interval(NamedTuple):
    """A point estimate and its confidence interval; ``None`` where undefined."""

    point: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class SegmentResult:
    """Metrics of the rows where ``column == value``.

    The overall row has ``column`` and ``value`` ``None``. ``positives`` is
    the positive count for binary tasks. A segment with fewer than
    ``min_size`` rows is ``too_small`` and carries no metrics.
    """

    column: str | None
    value: Any
    n: int
    positives: int | None
    metrics: dict[str, Interval] = field(default_factory=dict)
    too_small: bool = False

    @property
    def is_overall(self) -> bool:
        """True for the row covering all rows."""
        return self.column is None


def _counts(rng: np.random.Generator, replicates: int, n: int) -> FloatArray:
    """Resampling counts, one row per replicate, from an index matrix."""
    draws = rng.integers(0, n, size=(replicates, n))
    flat = (draws + n * np.arange(replicates)[:, np.newaxis]).ravel()
    return np.bincount(flat, minlength=replicates * n).reshape(replicates, n).astype(float)


def _replicates(
    specs: Sequence[MetricSpec],
    y: FloatArray,
    predictions: Sequence[FloatArray],
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Metric values of shape (len(specs), len(predictions), n_boot)."""
    n = y.shape[0]
    out = np.full((len(specs), len(predictions), n_boot), np.nan)
    if n == 0:
        return out
    chunk = max(1, _MAX_CELLS // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        counts = _counts(rng, stop - start, n)
        for i, spec in enumerate(specs):
            for j, pred in enumerate(predictions):
                out[i, j, start:stop] = spec.batch(y, pred, counts)
    return out


def _interval(point: float, values: FloatArray, confidence: float) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Interval(optional(point), None, None)
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return Interval(optional(point), float(low), float(high))


def _rng(seed: int, column: str | None, value: Any) -> np.random.Generator:
    key = "" if column is None else f"{column}\x00{value!r}"
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _check(n_boot: int, confidence: float, *, points_only_ok: bool = False) -> None:
    if n_boot < (0 if points_only_ok else 1):
        raise ValueError(f"n_boot must be at least {0 if points_only_ok else 1}, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _specs(
    task: str, names: Sequence[str], threshold: float, bins: int, levels: tuple[float, ...]
) -> list[MetricSpec]:
    edges = bin_edges([], bins) if task == "binary" else None
    available = metric_specs(task, threshold=threshold, edges=edges, levels=levels)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(f"unknown {task} metrics {unknown}; known: {sorted(available)}")
    return [available[name] for name in names]


def _measure(
    specs: Sequence[MetricSpec],
    y: FloatArray,
    pred: FloatArray,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
) -> dict[str, Interval]:
    ones = np.ones(y.shape[0])
    if n_boot == 0:  # point estimates only, no interval
        return {spec.name: Interval(optional(spec(y, pred, ones)), None, None) for spec in specs}
    values = _replicates(specs, y, [pred], n_boot, rng)
    return {
        spec.name: _interval(spec(y, pred, ones), values[i, 0], confidence) for i, spec in enumerate(specs)
    }


def _plain(value: Any) -> Any:
    """A plain Python value; every kind of null (None, NaN, NaT) becomes None."""
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _groups(values: ArrayLike, n: int) -> list[tuple[Any, np.ndarray]]:
    """(value, row indices) per distinct value, in sorted order of the values."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object)), use_na_sentinel=False)
    if codes.shape[0] != n:
        raise ValueError(f"a segment column has {codes.shape[0]} rows, expected {n}")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    groups = [
        (_plain(uniques[k]), order[lo:hi])
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]
    try:
        return sorted(groups, key=lambda g: (g[0] is None, g[0]))
    except TypeError:
        return sorted(groups, key=lambda g: (g[0] is None, str(g[0])))


def segment_metrics(
    task: str,
    y_true: ArrayLike,
    prediction: ArrayLike,
    segments: Mapping[str, ArrayLike],
    *,
    metrics: Sequence[str] | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    threshold: float = 0.5,
    bins: int = DEFAULT_BINS,
    quantiles: Mapping[float, ArrayLike] | None = None,
) -> list[SegmentResult]:
    """Metrics with bootstrap intervals overall and per value of each segment column.

    The first result is the overall row (never ``too_small``); then, per column
    in the given order, one result per distinct value (sorted; nulls, reported as
    ``None``, last).
    Binary ``ece`` uses ``bins`` equal-width bins. ``n_boot=0`` gives point
    estimates only (intervals ``None``), for comparisons that need no interval.
    """
    _check(n_boot, confidence, points_only_ok=True)
    y, pred, levels = prepare(task, y_true, prediction, quantiles=quantiles)
    names = list(DEFAULT_METRICS[task] if metrics is None else metrics)
    if metrics is None and len(levels) >= 1:
        names += [name for name in metric_specs(task, levels=levels) if "@" in name]
    specs = _specs(task, names, threshold, bins, levels)

    def result(column: str | None, value: Any, rows: np.ndarray | None) -> SegmentResult:
        ys, ps = (y, pred) if rows is None else (y[rows], pred[rows])
        positives = int(ys.sum()) if task == "binary" else None
        if column is not None and ys.shape[0] < min_size:
            return SegmentResult(column, value, int(ys.shape[0]), None, too_small=True)
        measured = _measure(specs, ys, ps, n_boot, confidence, _rng(seed, column, value))
        return SegmentResult(column, value, int(ys.shape[0]), positives, measured)

    results = [result(None, None, None)]
    for column, values in segments.items():
        for value, rows in _groups(values, y.shape[0]):
            results.append(result(column, value, rows))
    return results


def bootstrap_ci(
    task: str,
    y_true: ArrayLike,
    prediction: ArrayLike,
    metric: str,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    threshold: float = 0.5,
    bins: int = DEFAULT_BINS,
    quantiles: Mapping[float, ArrayLike] | None = None,
) -> Interval:
    """Point estimate and percentile bootstrap interval of one metric over all rows.

    >>> bootstrap_ci("regression", [0.0, 1.0] * 50, [0.0] * 100, "mae", seed=1).point
    0.5
    """
    _check(n_boot, confidence)
    y, pred, levels = prepare(task, y_true, prediction, quantiles=quantiles)
    specs = _specs(task, [metric], threshold, bins, levels)
    return _measure(specs, y, pred, n_boot, confidence, _rng(seed, None, None))[metric]


def bootstrap_diff(
    task: str,
    y_true: ArrayLike,
    prediction_a: ArrayLike,
    prediction_b: ArrayLike,
    metric: str,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    threshold: float = 0.5,
    bins: int = DEFAULT_BINS,
) -> Interval:
    """``metric(a) - metric(b)`` on the same rows, with a paired bootstrap interval.

    Both models are scored on the same resampled rows in every replicate, so
    the row-to-row noise they share cancels. A gate "no regression of AUC
    beyond 0.01 versus the champion" is ``bootstrap_diff(..., cand, champ,
    "roc_auc").low >= -0.01``; for losses, where lower is better, flip the sign.

    >>> y = [0, 1] * 100
    >>> d = bootstrap_diff("binary", y, [0.2, 0.8] * 100, [0.4, 0.6] * 100, "brier")
    >>> round(d.point, 6), round(d.low, 6), round(d.high, 6)
    (-0.12, -0.12, -0.12)
    """
    _check(n_boot, confidence)
    y, pred_a, _ = prepare(task, y_true, prediction_a)
    _, pred_b, _ = prepare(task, y_true, prediction_b)
    [spec] = _specs(task, [metric], threshold, bins, ())
    ones = np.ones(y.shape[0])
    point = spec(y, pred_a, ones) - spec(y, pred_b, ones)
    values = _replicates([spec], y, [pred_a, pred_b], n_boot, _rng(seed, None, None))
    return _interval(point, values[0, 0] - values[0, 1], confidence)
