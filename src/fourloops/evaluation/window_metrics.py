"""Realised and estimated performance of a window, from its score summary.

**Realised** metrics use the rows whose label has arrived. A binary model's
rows sit on a fine score grid (each bin's rows at the bin's mean score, its
positives and negatives counted apart); each metric and its standard error
come from the rows' influence on it (:mod:`fourloops.evaluation.influence`:
the delta method, DeLong's for ROC-AUC), with no resampling, and its interval
is Wilson's at the metric's effective sample size (normal for log loss and
Brier). With time windows the summary also counts each hour's labelled rows
(``ScoreSummary.blocks``): rows of one hour may share a cause, and the error
grows by the design effect the hours show (never shrinks). The values equal
the registry's metric code (:mod:`fourloops.evaluation.metrics`) on the same
rows. Regression metrics come from sums of errors with normal intervals;
multiclass ones from the confusion table, with a bootstrap interval.

**Estimated** metrics (binary, before labels arrive) follow confidence-based
performance estimation: the scores are calibrated on the reference's own
labelled rows (isotonic regression, so the assumption "scores are
probabilities" is checked and repaired where the reference shows it wrong),
then each row counts as ``c`` of a positive and ``1 - c`` of a negative.
Every binary metric is a function of those expected labels (shares as sums of
parts linear in each label, ROC-AUC as a ratio of expected pair counts); the
Brier score counts the label's variance too. The interval says where the
realised value should fall if nothing but the inputs changed: its variance is
the labels' (each drawn with its chance; the metric linearised in them) plus
the calibration's, since the calibrator is itself learnt from a few thousand
rows (the metric's change under each of its bootstrap curves, to first order;
the fit is also corrected for isotonic regression's optimism at the ends of
the scores, :class:`Calibrator`). Without the calibration's part, on a
stationary process with a reference of 1,500 rows, the realised value fell
below the interval in 10.2% of windows, not 2.5%; with it, 2.8% (3,000
windows, ``tests/evaluation/test_estimate_false_alarms.py``). Such estimation
is blind to a change in P(y | x) (concept shift): comparing it with the
realised value once labels mature is how that shows (:func:`estimate_check`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as scipy_stats
from scipy.optimize import isotonic_regression

from fourloops.engines.summaries import BLOCK_BINS, ScoreSummary
from fourloops.evaluation.influence import (
    Linearised,
    block_variance,
    expected,
    interval,
    linearise,
    prediction_interval,
)
from fourloops.evaluation.metrics import higher_is_better

__all__ = [
    "BINARY_METRICS",
    "ESTIMATED_METRICS",
    "Calibrator",
    "MetricValue",
    "auc_delong",
    "binary_error",
    "estimate",
    "estimate_check",
    "realised",
]

FloatArray = NDArray[np.float64]
#: Realised metrics of a binary model, in report order.
BINARY_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier", "prevalence")
#: Metrics that can be estimated before labels arrive.
ESTIMATED_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier", "prevalence")
REGRESSION_METRICS = ("mae", "rmse", "bias", "r2")
MULTICLASS_METRICS = ("accuracy", "macro_f1")
#: Bootstrap replicates of a multiclass metric's interval.
_REPLICATES = 200
#: Bootstrap refits of a calibrator: how far its curve could be off, which an estimate's interval counts.
CALIBRATORS = 200
#: Scores at which a calibrator keeps P(y = 1) (linear between them).
CALIBRATION_GRID = np.linspace(0.0, 1.0, 201)


@dataclass(frozen=True)
class MetricValue:
    """A metric's value with its interval (``None`` where undefined) and the rows it used."""

    value: float | None
    low: float | None
    high: float | None
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _opt(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _interval(point: float, values: FloatArray, confidence: float, rows: int) -> MetricValue:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or not np.isfinite(point):
        return MetricValue(_opt(point), None, None, rows)
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return MetricValue(float(point), float(min(low, point)), float(max(high, point)), rows)


def _bins(summary: ScoreSummary) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Mean score of each bin and its positive, negative and unlabelled counts."""
    rows = summary.positives + summary.negatives + summary.unlabelled
    mean = np.divide(summary.score_sums, rows, out=np.zeros(rows.shape), where=rows > 0)
    return (
        mean,
        summary.positives.astype(float),
        summary.negatives.astype(float),
        summary.unlabelled.astype(float),
    )


def _labelled_fits(
    summary: ScoreSummary, names: Sequence[str], threshold: float
) -> dict[str, tuple[Linearised, float]]:
    """Each binary metric of the summary's labelled rows, with its standard error and design effect.

    The error takes rows as independent; the design effect is how much more variance the metric
    has when rows of one block of time are related (the clustered variance over the independent
    one, from ``summary.blocks``): 1 without at least :data:`~fourloops.evaluation.influence.MIN_BLOCKS`
    blocks, and never below 1, since a spread estimated from a few dozen blocks should widen an
    error, not narrow it.
    """
    mean, pos, neg, _ = _bins(summary)
    y = np.concatenate([np.ones_like(mean), np.zeros_like(mean)])
    s = np.concatenate([mean, mean])
    w = np.concatenate([pos, neg])
    bins = np.concatenate([np.arange(mean.size), np.arange(mean.size)])
    keep = w > 0
    y, s, w, bins = y[keep], s[keep], w[keep], bins[keep]
    # a row's cell in the blocks' counts: positives then negatives, a coarse score bin each
    cells = np.where(y > 0, 0, BLOCK_BINS) + bins * BLOCK_BINS // max(summary.grid, 1)
    counted = [c.ravel() for c in summary.blocks.values() if c.any()]
    blocks = np.stack(counted).astype(float) if counted else None
    out = {}
    for name in names:
        fit = linearise(name, y, s, w, threshold=threshold)
        clustered = block_variance(fit, w, cells, blocks) if blocks is not None else None
        effect = clustered / fit.se**2 if clustered is not None and fit.se > 0 else 1.0
        out[name] = (fit, max(effect, 1.0))
    return out


def _binary_realised(
    summary: ScoreSummary, threshold: float, confidence: float, names: Sequence[str] = BINARY_METRICS
) -> dict[str, MetricValue]:
    n = summary.labelled
    if not n:
        return {name: MetricValue(None, None, None, 0) for name in names}
    out = {}
    for name, (fit, effect) in _labelled_fits(summary, names, threshold).items():
        low, high = interval(name, replace(fit, se=fit.se * np.sqrt(effect)), confidence)
        out[name] = MetricValue(_opt(fit.value), low, high, n)
    return out


def _regression_realised(summary: ScoreSummary, confidence: float) -> dict[str, MetricValue]:
    n, e, abs_e, e2, e4, y, y2 = (float(v) for v in summary.sums[:7])
    rows = int(n)
    if n < 1:
        return {name: MetricValue(None, None, None, 0) for name in REGRESSION_METRICS}
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    mae, mse, bias = abs_e / n, e2 / n, e / n
    sd_abs = np.sqrt(max(e2 / n - mae**2, 0.0) / n)
    sd_bias = np.sqrt(max(e2 / n - bias**2, 0.0) / n)
    sd_mse = np.sqrt(max(e4 / n - mse**2, 0.0) / n)
    sst = y2 - y * y / n
    r2 = 1 - e2 / sst if sst > 0 else np.nan
    return {
        "mae": MetricValue(mae, max(mae - z * sd_abs, 0.0), mae + z * sd_abs, rows),
        "rmse": MetricValue(
            float(np.sqrt(mse)),
            float(np.sqrt(max(mse - z * sd_mse, 0.0))),
            float(np.sqrt(mse + z * sd_mse)),
            rows,
        ),
        "bias": MetricValue(bias, bias - z * sd_bias, bias + z * sd_bias, rows),
        "r2": MetricValue(_opt(r2), None, None, rows),
    }


def _multiclass_realised(
    summary: ScoreSummary, rng: np.random.Generator, confidence: float
) -> dict[str, MetricValue]:
    cells = list(summary.confusion.items())
    counts = np.array([n for _, n in cells], dtype=float)
    n = int(counts.sum())
    if not n:
        return {name: MetricValue(None, None, None, 0) for name in MULTICLASS_METRICS}
    classes = sorted({c for (y, p), _ in cells for c in (y, p)})
    truth = np.array([classes.index(y) for (y, _), _ in cells])
    pred = np.array([classes.index(p) for (_, p), _ in cells])
    hit = (truth == pred).astype(float)

    def macro_f1(w: FloatArray) -> FloatArray:
        scores = []
        for k in range(len(classes)):
            tp = w @ (hit * (truth == k))
            denom = w @ (truth == k).astype(float) + w @ (pred == k).astype(float)
            scores.append(np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0))
        present = [k for k in range(len(classes)) if np.any(truth == k)]
        return np.mean([scores[k] for k in present], axis=0) if present else np.full(w.shape[0], np.nan)

    reps = rng.multinomial(n, counts / n, size=_REPLICATES).astype(float)
    acc = float(hit @ counts / n)
    return {
        "accuracy": _interval(acc, (reps @ hit) / n, confidence, n),
        "macro_f1": _interval(float(macro_f1(counts[np.newaxis, :])[0]), macro_f1(reps), confidence, n),
    }


def realised(
    summary: ScoreSummary | None,
    *,
    threshold: float = 0.5,
    seed: int = 0,
    confidence: float = 0.95,
    metrics: Sequence[str] | None = None,
) -> dict[str, MetricValue]:
    """Metrics of the labelled rows of one window, with intervals (see the module docstring).

    ``metrics`` names the ones wanted (default: every metric of the task); a binary model's others
    are then not computed at all.
    """
    if summary is None:
        return {}
    if summary.task == "binary":
        names = BINARY_METRICS if metrics is None else tuple(m for m in metrics if m in BINARY_METRICS)
        return _binary_realised(summary, threshold, confidence, names)
    if summary.task == "regression":
        values = _regression_realised(summary, confidence)
    else:
        values = _multiclass_realised(summary, np.random.default_rng(seed), confidence)
    return values if metrics is None else {m: v for m, v in values.items() if m in metrics}


def auc_delong(summary: ScoreSummary) -> tuple[float | None, float | None, int]:
    """ROC-AUC of a binary summary's labelled rows with DeLong's standard error: value, error, rows.

    Each bin's rows sit at the bin's mean score (ties count half, as in :func:`realised`). A
    positive's placement is the share of negatives scored below it, a negative's the share of
    positives scored above it; the AUC is the mean placement of the positives, and its variance
    the placements' variance among the positives over their count plus the same among the
    negatives (DeLong, DeLong and Clarke-Pearson, 1988). No resampling: microseconds, exact for
    the binned scores. A summary with blocks of time widens it by their design effect
    (:func:`binary_error`).

    >>> import numpy as np
    >>> from fourloops.engines.summaries import ScoreSummary
    >>> pos, neg = np.array([1, 2, 7]), np.array([6, 3, 1])
    >>> s = ScoreSummary("binary", 3, pos, neg, np.zeros(3, int), (pos + neg) * np.array([0.2, 0.5, 0.8]))
    >>> value, se, rows = auc_delong(s)
    >>> round(value, 4), round(se, 4), rows
    (0.845, 0.0888, 20)
    """
    return binary_error(summary, "roc_auc", threshold=0.5)


def binary_error(
    summary: ScoreSummary, metric: str, *, threshold: float
) -> tuple[float | None, float | None, int]:
    """A binary metric of a summary's labelled rows with its standard error: value, error, rows.

    The error is the metric's linearised one (:mod:`fourloops.evaluation.influence`), widened by
    the design effect of the summary's blocks of time as the realised interval is; value and
    error are ``None`` where either is undefined (ROC-AUC with fewer than two rows of a class,
    precision without predicted positives, ...).
    """
    rows = summary.labelled
    fit, effect = _labelled_fits(summary, [metric], threshold)[metric]
    fit = replace(fit, se=fit.se * np.sqrt(effect))
    if not (np.isfinite(fit.value) and np.isfinite(fit.se)):
        return None, None, rows
    return float(fit.value), float(fit.se), rows


def _isotonic(positives: FloatArray, rows: FloatArray) -> FloatArray:
    """The isotonic (non-decreasing, row-weighted) fit of bins' positive rates, bins in score order."""
    fitted: FloatArray = isotonic_regression(positives / rows, weights=rows).x
    return fitted


@dataclass(frozen=True)
class Calibrator:
    """Calibrated P(y = 1) per score, fitted on the reference's labelled rows (isotonic).

    An isotonic fit on a few thousand rows is noisy, and at the ends of the scores it spikes
    outwards (lowest rates too low, highest too high): the model looks better separated than it
    is. :meth:`fit` refits it on :data:`CALIBRATORS` parametric bootstrap samples (each bin's
    positives redrawn from the fitted rate), takes their mean departure from the fit off the
    curve (``y``: bias-corrected, so no longer quite monotone), and keeps their spread around
    it (``replicates``, a curve per row on the grid ``x``): how far the calibration could be
    off; :func:`estimate` counts the metric's change under each of them
    (:meth:`deviation_sums`). It is fitted
    from the reference's stored bins when monitoring runs (seeded, milliseconds), so stored
    profiles need nothing new.
    """

    x: FloatArray
    y: FloatArray
    ece_before: float | None
    rows: int
    replicates: FloatArray = field(default_factory=lambda: np.zeros((0, CALIBRATION_GRID.size)))

    @classmethod
    def fit(
        cls, reference: ScoreSummary, *, bootstrap: int = CALIBRATORS, seed: int = 0
    ) -> Calibrator | None:
        """``None`` when the reference has no labelled rows of both classes (``bootstrap=0``: plain fit)."""
        mean, pos, neg, _ = _bins(reference)
        labelled = pos + neg
        keep = labelled > 0
        if pos.sum() == 0 or neg.sum() == 0:
            return None
        x, p, w = mean[keep], pos[keep], labelled[keep]
        ece = float(np.sum(np.abs(p - x * w)) / w.sum())
        fitted = _isotonic(p, w)
        curves = np.zeros((0, x.size))
        if bootstrap:
            draws = np.random.default_rng(seed).binomial(w.astype(np.int64), fitted, size=(bootstrap, x.size))
            boot = np.array([_isotonic(d.astype(float), w) for d in draws])
            centre = boot.mean(axis=0)
            fitted = np.clip(2 * fitted - centre, 0.0, 1.0)
            # Deviations reflected (the basic bootstrap): where refits land above the fit, the truth
            # is likelier below it.
            curves = np.clip(fitted - (boot - centre), 0.0, 1.0)
        # On the grid: linear between the bins' mean scores, flat beyond them (as scikit-learn predicts).
        on_grid = [np.interp(CALIBRATION_GRID, x, c) for c in curves]
        replicates = np.array(on_grid) if on_grid else np.zeros((0, CALIBRATION_GRID.size))
        return cls(CALIBRATION_GRID, np.interp(CALIBRATION_GRID, x, fitted), ece, int(w.sum()), replicates)

    def __call__(self, score: FloatArray) -> FloatArray:
        return np.interp(score, self.x, self.y)

    def deviation_sums(self, score: FloatArray, weights: FloatArray) -> FloatArray:
        """Each bootstrap curve's departure from the fit, summed over ``score`` with ``weights``.

        ``weights`` has a column per quantity (scores × k); the result is curves × k: for curve
        ``j`` and column ``q``, the sum over scores of ``weights[:, q] * (curve_j(score) - fit(score))``.
        Without bootstrap curves it is empty (0 × k).
        """
        if not len(self.replicates):
            return np.zeros((0, weights.shape[1]))
        # Interpolation on the uniform grid is linear in the curve: spread the weights onto the grid
        # points around their scores once, then every curve is one product with them.
        at = np.clip(score, 0.0, 1.0) * (self.x.size - 1)
        i = np.minimum(at.astype(np.int64), self.x.size - 2)
        frac = at - i
        points = np.concatenate([i, i + 1])
        spread = np.column_stack(
            [
                np.bincount(points, np.concatenate([q * (1 - frac), q * frac]), minlength=self.x.size)
                for q in weights.T
            ]
        )
        # (einsum, not BLAS: a threaded BLAS call this small costs more in threads than it saves.)
        sums: FloatArray = np.einsum("cj,jk->ck", self.replicates - self.y, spread)
        return sums

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "isotonic",
            "reference_rows": self.rows,
            "reference_ece_before": self.ece_before,
            "bootstrap": len(self.replicates),
        }


def estimate(
    summary: ScoreSummary | None,
    calibrator: Calibrator | None,
    *,
    threshold: float = 0.5,
    confidence: float = 0.95,
    labelled_only: bool = False,
) -> dict[str, MetricValue]:
    """Estimated binary metrics of a window's rows (all, or only the labelled ones) without their labels.

    The value is the metric on the rows' calibrated chances as expected labels. The interval is
    where the realised value should fall if P(y | score) is what the reference showed: its
    variance is the labels' (each row's label drawn with its chance, the metric linearised in
    the labels: :func:`~fourloops.evaluation.influence.expected`) plus the calibration's (the
    metric's change under each of the calibrator's bootstrap curves, to first order); the interval
    is that spread around the value, cut to the metric's range
    (:func:`~fourloops.evaluation.influence.prediction_interval`). Labels are taken as independent
    given the scores: a design effect read from the same labelled rows would also absorb the
    incident the check is there to find (a few hours of garbled labels widened the interval
    until the check missed them in 70 % of days).
    """
    if summary is None or calibrator is None or summary.task != "binary":
        return {}
    mean, pos, neg, unl = _bins(summary)
    rows = pos + neg if labelled_only else pos + neg + unl
    keep = rows > 0
    s, w = mean[keep], rows[keep]
    n = int(w.sum())
    if not n:
        return {name: MetricValue(None, None, None, 0) for name in ESTIMATED_METRICS}
    c = calibrator(s)
    fits = [expected(name, c, s, w, threshold=threshold) for name in ESTIMATED_METRICS]
    # Each metric's derivative in one row's label, times the bin's rows: a column per metric.
    slopes = np.column_stack([w * np.nan_to_num(gradient) for _, gradient in fits])
    label_variance = (c * (1 - c) / w) @ slopes**2
    deviations = calibrator.deviation_sums(s, slopes)
    calibration_variance = np.mean(deviations**2, axis=0) if len(deviations) else np.zeros(len(fits))
    out = {}
    for k, (name, (value, gradient)) in enumerate(zip(ESTIMATED_METRICS, fits, strict=True)):
        defined = np.isfinite(value) and bool(np.all(np.isfinite(gradient)))
        se = float(np.sqrt(label_variance[k] + calibration_variance[k])) if defined else np.nan
        low, high = prediction_interval(name, value, se, confidence)
        out[name] = MetricValue(_opt(value), low, high, n)
    return out


def estimate_check(
    realised_values: Mapping[str, MetricValue], expected: Mapping[str, MetricValue]
) -> dict[str, dict[str, Any]]:
    """Realised metrics against their estimate on the same labelled rows: outside the interval or not.

    When P(y | score) is the reference's, a metric is outside about 5% of the time and outside
    and worse about 2.5% (the interval is two-sided at 95%).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, exp in expected.items():
        real = realised_values.get(name)
        if real is None or real.value is None or exp.value is None or exp.low is None or exp.high is None:
            continue
        out[name] = {
            "estimated": exp.value,
            "low": exp.low,
            "high": exp.high,
            "realised": real.value,
            "gap": real.value - exp.value,
            "outside": not (exp.low <= real.value <= exp.high),
            "worse": real.value < exp.low if higher_is_better("binary", name) else real.value > exp.high,
        }
    return out
