"""Standard errors and intervals of binary metrics on binned scores, from each row's influence.

A window's labelled rows sit on the engine's score grid (each bin's rows at the bin's mean
score, positives and negatives counted apart), so a row is one of at most two cells per bin and
its *influence* on a metric (how much the metric moves, to first order, when the row is
weighted more) is a number per cell. The metric's variance is the sum of the squared
influences (the delta method, or the infinitesimal jackknife); no resampling, so it costs
microseconds, gives the same answer every run, and adds up over any grouping of the rows.

* A share ``sum(a) / sum(b)`` (prevalence, accuracy, precision, recall, F1 as
  ``2 tp / (predicted + actual)``, log loss, Brier): a row's residual is
  ``(a - value * b) / sum(b)``; the variance is the sum of the squares times ``n / (n - 1)``.
* ROC-AUC: a positive's residual is its placement among the negatives (the share scored below
  it, ties half) less the AUC, over the positives' count; a negative's the same among the
  positives. With the ``n / (n - 1)`` correction per class this is DeLong, DeLong and
  Clarke-Pearson's (1988) variance.

Intervals (:func:`interval`): metrics confined to [0, 1] take Wilson's score interval at the
sample size that gives their standard error (``value (1 - value) / se**2``, the "effective"
size), so they stay inside [0, 1] and lean away from the edge as a share's interval does;
at 0 or 1, where the error is 0, the metric's own denominator (rows, predicted positives,
positives, the smaller class for ROC-AUC) stands in. Log loss takes the normal interval,
cut at 0; Brier the normal interval cut to [0, 1]. Coverage is measured by simulation in
``tests/evaluation/test_influence.py``.

Rows are not always independent: rows of one hour may share a cause (its weather, an
incident), and then a day's 2,400 rows say less than 2,400 independent ones would.
:func:`block_variance` sums the residuals per block (the engine counts each hour's labelled
rows on a coarse score grid, ``ScoreSummary.blocks``) and takes the blocks' sums as the
independent draws (the clustered "sandwich" variance); callers widen an error by the ratio of
the two variances, the design effect, when it exceeds 1.

>>> import numpy as np
>>> score = np.array([0.2, 0.5, 0.8, 0.2, 0.5, 0.8])
>>> label = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
>>> rows = np.array([1.0, 2.0, 7.0, 6.0, 3.0, 1.0])
>>> fit = linearise("roc_auc", label, score, rows, threshold=0.5)
>>> round(fit.value, 4), round(fit.se, 4), fit.denominator
(0.845, 0.0888, 10.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from fourloops.evaluation.metrics_binary import LOG_EPS

__all__ = [
    "BOUNDED",
    "MIN_BLOCKS",
    "Linearised",
    "block_variance",
    "expected",
    "interval",
    "linearise",
    "prediction_interval",
]

FloatArray = NDArray[np.float64]
#: Metrics confined to [0, 1] whose interval is Wilson's at the effective sample size.
BOUNDED = frozenset({"roc_auc", "accuracy", "precision", "recall", "f1", "prevalence"})
#: Fewest blocks with labelled rows for their spread to count (fewer tell too little).
MIN_BLOCKS = 10


@dataclass(frozen=True)
class Linearised:
    """A metric's value (NaN where undefined), its standard error (NaN where none) and denominator.

    ``denominator`` is the count the metric is a share of (rows, predicted positives, positives,
    the smaller class for ROC-AUC): the sample size an interval falls back on at 0 or 1.
    ``residual`` is each input row's influence, scaled so that the metric's variance is about the
    sum over rows of their squares (empty where the metric is undefined).
    """

    value: float
    se: float
    denominator: float
    residual: FloatArray = field(default_factory=lambda: np.zeros(0))


def _share(a: FloatArray, b: FloatArray, w: FloatArray, *, empty: float = np.nan) -> Linearised:
    """``sum(w a) / sum(w b)`` and its delta-method standard error over rows weighted ``w``."""
    n, den = float(w.sum()), float(w @ b)
    if den <= 0:
        return Linearised(empty, np.nan, 0.0)
    value = float(w @ a) / den
    residual = (a - value * b) / den
    variance = float(w @ residual**2) * n / (n - 1) if n > 1 else np.nan
    return Linearised(value, float(np.sqrt(variance)), den, residual)


def _roc_auc(y: FloatArray, s: FloatArray, w: FloatArray) -> Linearised:
    """ROC-AUC (ties half) with DeLong's standard error, the rows' placements computed per distinct score."""
    distinct, where = np.unique(s, return_inverse=True)
    pos = np.bincount(where, weights=w * y, minlength=distinct.size)
    neg = np.bincount(where, weights=w * (1 - y), minlength=distinct.size)
    n1, n0 = float(pos.sum()), float(neg.sum())
    if n1 == 0 or n0 == 0:
        return Linearised(np.nan, np.nan, 0.0)
    v10 = (np.cumsum(neg) - 0.5 * neg) / n0  # a positive's share of negatives below it
    v01 = (n1 - np.cumsum(pos) + 0.5 * pos) / n1  # a negative's share of positives above it
    auc = float(pos @ v10) / n1
    residual = np.where(y > 0, (v10[where] - auc) / n1, (v01[where] - auc) / n0)
    if n1 < 2 or n0 < 2:
        return Linearised(auc, np.nan, min(n1, n0), residual)
    variance = float(pos @ (v10 - auc) ** 2) / (n1 * (n1 - 1))
    variance += float(neg @ (v01 - auc) ** 2) / (n0 * (n0 - 1))
    return Linearised(auc, float(np.sqrt(variance)), min(n1, n0), residual)


def _linear_parts(
    name: str, s: FloatArray, threshold: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, float]:
    """A share metric as ``sum(a0 + a1 y) / sum(b0 + b1 y)`` over rows: the four parts, its empty value.

    Every share metric of a binary model is linear in each row's label this way (for labels 0
    and 1; Brier's ``(s - y)**2`` is ``s**2 + y (1 - 2 s)``), so the same parts give the metric
    on expected labels (:func:`expected`) and its derivative in each label.
    """
    zeros, ones = np.zeros_like(s), np.ones_like(s)
    hit = (s >= threshold).astype(float)
    if name == "prevalence":
        return zeros, ones, ones, zeros, np.nan
    if name == "accuracy":
        return 1 - hit, 2 * hit - 1, ones, zeros, np.nan
    if name == "precision":
        return zeros, hit, hit, zeros, 0.0
    if name == "recall":
        return zeros, hit, zeros, ones, 0.0
    if name == "f1":
        return zeros, 2 * hit, hit, ones, 0.0
    if name == "log_loss":
        log_p1 = np.log(np.clip(s, LOG_EPS, 1 - LOG_EPS))
        log_p0 = np.log(np.clip(1 - s, LOG_EPS, 1 - LOG_EPS))
        return -log_p0, log_p0 - log_p1, ones, zeros, np.nan
    if name == "brier":
        return s * s, 1 - 2 * s, ones, zeros, np.nan
    raise ValueError(f"no linearised form for binary metric {name!r}")


def linearise(name: str, y: FloatArray, s: FloatArray, w: FloatArray, *, threshold: float) -> Linearised:
    """Metric ``name`` of rows (label ``y``, score ``s``, ``w`` rows each) with its standard error.

    Threshold metrics predict positive at ``score >= threshold``; precision, recall and F1 are 0
    (with no error) when their denominator is, as :mod:`fourloops.evaluation.metrics_binary` says.
    """
    if name == "roc_auc":
        return _roc_auc(y, s, w)
    a0, a1, b0, b1, empty = _linear_parts(name, s, threshold)
    return _share(a0 + a1 * y, b0 + b1 * y, w, empty=empty)


def expected(
    name: str, c: FloatArray, s: FloatArray, w: FloatArray, *, threshold: float
) -> tuple[float, FloatArray]:
    """Metric ``name`` on expected labels ``c`` (P(y = 1) per row) and its derivative in each label.

    Returns the value (NaN where undefined) and the derivative of the metric in one row's label
    for each score (NaN where undefined). The
    realised metric, once labels drawn with chances ``c`` arrive, is about the value plus the
    sum over rows of derivative × (label - c): the variance of that sum is the labels' part of
    where the realised value can fall. ROC-AUC on expected labels counts each pair of a
    positive and a negative share (a row paired with itself included), as the metric code does.
    """
    if name == "roc_auc":
        distinct, where = np.unique(s, return_inverse=True)
        pos = np.bincount(where, weights=w * c, minlength=distinct.size)
        neg = np.bincount(where, weights=w * (1 - c), minlength=distinct.size)
        n1, n0 = float(pos.sum()), float(neg.sum())
        if n1 <= 0 or n0 <= 0:
            return np.nan, np.full(s.shape, np.nan)
        neg_below = np.cumsum(neg) - 0.5 * neg  # negatives below, ties half
        pos_above = n1 - np.cumsum(pos) + 0.5 * pos  # positives above, ties half
        auc = float(pos @ neg_below) / (n1 * n0)
        # A label moving from negative to positive adds its pairs as a positive, drops them as a negative.
        gradient = ((neg_below - pos_above) - auc * (n0 - n1)) / (n1 * n0)
        return auc, gradient[where]
    a0, a1, b0, b1, empty = _linear_parts(name, s, threshold)
    den = float(w @ (b0 + b1 * c))
    if den <= 0:
        return empty, np.full(s.shape, np.nan)
    value = float(w @ (a0 + a1 * c)) / den
    return value, (a1 - value * b1) / den


def block_variance(
    fit: Linearised, w: FloatArray, cells: NDArray[np.int64], blocks: FloatArray
) -> float | None:
    """The metric's variance when rows of one block are related (the clustered sandwich); ``None``
    with fewer than :data:`MIN_BLOCKS` blocks or no residuals.

    ``w`` are the rows the residuals belong to and ``cells`` their cell in a block's counts;
    ``blocks`` holds a row per block: its rows per cell (positives then negatives, a coarse score
    bin each). A block's rows are given the mean residual of their cell's rows; the variance is
    ``G / (G - 1)`` times the sum over the ``G`` blocks of the square of their residuals' sum, which
    with one row a block is the rows' own (independent) variance.
    """
    g, size = (int(d) for d in blocks.shape)
    if g < MIN_BLOCKS or fit.residual.size != w.size or not np.isfinite(fit.se):
        return None
    rows = np.bincount(cells, weights=w, minlength=size)
    mean = np.divide(
        np.bincount(cells, weights=w * fit.residual, minlength=size),
        rows,
        out=np.zeros(size),
        where=rows > 0,
    )
    sums: FloatArray = blocks @ mean
    return float(sums @ sums) * g / (g - 1)


def interval(name: str, fit: Linearised, confidence: float) -> tuple[float | None, float | None]:
    """The two-sided ``confidence`` interval of a linearised metric; ``(None, None)`` without an error.

    >>> low, high = interval("accuracy", Linearised(1.0, 0.0, 30.0), 0.95)  # 30 of 30 right
    >>> round(low, 3), high  # not "certainly 1"
    (0.886, 1.0)
    """
    value, se = fit.value, fit.se
    if name not in BOUNDED or not np.isfinite(value) or not np.isfinite(se):
        return prediction_interval(name, value, se, confidence)  # the normal one, cut at the range
    z = float(ndtri(0.5 + confidence / 2))
    n = value * (1 - value) / se**2 if 0.0 < value < 1.0 and se > 0 else fit.denominator
    if n <= 0:
        return None, None
    centre = (value + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(value * (1 - value) / n + z * z / (4 * n * n))
    return float(min(max(centre - half, 0.0), value)), float(max(min(centre + half, 1.0), value))


def prediction_interval(
    name: str, value: float, se: float, confidence: float
) -> tuple[float | None, float | None]:
    """Where a metric whose expected value and spread are known should fall: ``value ± z se``, cut to
    the metric's range ([0, 1], or from 0 for log loss); ``(None, None)`` without a spread.

    Not Wilson's interval: that one infers an unknown share from an observed one and never reaches
    0 or 1, where a realised precision of a few predicted positives often lies (measured: 30 % of
    such draws above a Wilson interval, against 0 % above this one).

    >>> low, high = prediction_interval("precision", 0.97, 0.02, 0.95)
    >>> round(low, 4), high
    (0.9308, 1.0)
    """
    if not np.isfinite(value) or not np.isfinite(se):
        return None, None
    z = float(ndtri(0.5 + confidence / 2))
    low, high = max(value - z * se, 0.0), value + z * se
    if name in BOUNDED or name == "brier":
        high = min(high, 1.0)
    return float(min(low, value)), float(max(high, value))
