"""Calibration of binary probabilities: a reliability table and the ECE.

Scores are binned either into equal-width bins on [0, 1] (``"uniform"``) or
into bins holding about the same number of rows (``"quantile"``; edges are the
score quantiles, duplicates merged, so ties can leave fewer bins). Bin ``i``
holds ``edges[i] <= score < edges[i + 1]``; the last bin also holds its upper
edge. The expected calibration error is::

    ECE = sum over bins of (n_bin / n) * |mean score - observed rate|

>>> report = calibration([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8], bins=2)
>>> round(report.ece, 6)
0.25
>>> [(b.lower, b.upper, b.count) for b in report.bins]
[(0.0, 0.5, 2), (0.5, 1.0, 2)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from fourloops.evaluation.metrics_binary import (
    FloatArray,
    MetricSpec,
    check_probability,
    from_stats,
    optional,
    prepare_binary,
    ratio,
)

__all__ = ["CalibrationBin", "CalibrationReport", "bin_edges", "calibration", "ece_spec"]

Strategy = Literal["uniform", "quantile"]
DEFAULT_BINS = 10


@dataclass(frozen=True)
class CalibrationBin:
    """One row of the reliability table; means are ``None`` for an empty bin."""

    lower: float
    upper: float
    count: int
    mean_score: float | None
    observed_rate: float | None


@dataclass(frozen=True)
class CalibrationReport:
    """ECE, maximum calibration error and the reliability table."""

    ece: float | None
    mce: float | None
    n: int
    strategy: str
    bins: tuple[CalibrationBin, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary."""
        return asdict(self)


def bin_edges(score: ArrayLike, bins: int = DEFAULT_BINS, strategy: Strategy = "uniform") -> FloatArray:
    """Bin edges, ascending, first and last included.

    >>> bin_edges([0.1, 0.2], bins=4).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> bin_edges([0.1, 0.2, 0.2, 0.9], bins=4, strategy="quantile").round(3).tolist()
    [0.1, 0.175, 0.2, 0.375, 0.9]
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, bins + 1)
    if strategy == "quantile":
        s = np.asarray(score, dtype=float)
        if s.size == 0:
            return np.array([0.0, 1.0])
        edges = np.unique(np.quantile(s, np.linspace(0.0, 1.0, bins + 1)))
        # all scores equal: one closed bin [v, v] holding every row
        return edges if edges.size >= 2 else np.repeat(edges, 2)
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")


def _bin_index(score: FloatArray, edges: FloatArray) -> np.ndarray:
    return np.searchsorted(edges[1:-1], score, side="right")


def _stats(edges: FloatArray) -> Callable[[FloatArray, FloatArray], FloatArray]:
    k = max(len(edges) - 1, 1)

    def stats(y: FloatArray, score: FloatArray) -> FloatArray:
        member = (_bin_index(score, edges)[:, np.newaxis] == np.arange(k)).astype(float)
        return np.hstack([member * score[:, np.newaxis], member * y[:, np.newaxis], np.ones((y.size, 1))])

    return stats


def _ece_finish(sums: FloatArray) -> FloatArray:
    k = (sums.shape[1] - 1) // 2
    gap = np.abs(sums[:, :k] - sums[:, k : 2 * k]).sum(axis=1)
    return ratio(gap, sums[:, -1])


def ece_spec(edges: FloatArray) -> MetricSpec:
    """The ECE over fixed ``edges`` as a vectorised metric (used by the bootstrap)."""
    return MetricSpec("ece", False, from_stats(_stats(edges), _ece_finish))


def calibration(
    y_true: ArrayLike,
    score: ArrayLike,
    *,
    bins: int = DEFAULT_BINS,
    strategy: Strategy = "uniform",
) -> CalibrationReport:
    """Reliability table and calibration errors of binary probabilities."""
    y, s = prepare_binary(y_true, score)
    check_probability(s)
    edges = bin_edges(s, bins, strategy)
    k = len(edges) - 1
    index = _bin_index(s, edges)
    count = np.bincount(index, minlength=k).astype(float)
    score_sum = np.bincount(index, weights=s, minlength=k).astype(float)
    y_sum = np.bincount(index, weights=y, minlength=k).astype(float)
    mean_score = ratio(score_sum, count)
    rate = ratio(y_sum, count)
    gap = np.abs(mean_score - rate)
    n = int(y.size)
    ece = float(np.sum(count[count > 0] * gap[count > 0]) / n) if n else np.nan
    mce = float(gap[count > 0].max()) if n else np.nan
    table = tuple(
        CalibrationBin(
            lower=float(edges[i]),
            upper=float(edges[i + 1]),
            count=int(count[i]),
            mean_score=optional(mean_score[i]),
            observed_rate=optional(rate[i]),
        )
        for i in range(k)
    )
    return CalibrationReport(optional(ece), optional(mce), n, strategy, table)
