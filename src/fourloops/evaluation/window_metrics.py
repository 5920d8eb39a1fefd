"""Realised and estimated performance of a window, from its score summary.

**Realised** metrics use the rows whose label has arrived. A binary model's
rows sit on a fine score grid (each bin's rows at the bin's mean score), so
every metric is the registry's own metric code (:mod:`fourloops.evaluation.metrics`)
run with the bin counts as weights, and its bootstrap interval resamples
rows (a multinomial over the bins). Regression metrics come from sums of
errors with normal intervals; multiclass ones from the confusion table.

**Estimated** metrics (binary, before labels arrive) follow confidence-based
performance estimation: the scores are calibrated on the reference's own
labelled rows (isotonic regression, so the assumption "scores are
probabilities" is checked and repaired where the reference shows it wrong),
then each row counts as ``c`` of a positive and ``1 - c`` of a negative.
Metrics that are linear in the labels (accuracy, precision, recall, F1,
ROC-AUC as a ratio of expected pair counts, log loss, prevalence) are the same
code with those expected labels; the Brier score adds the label variance.
The interval simulates labels drawn from the calibrated probabilities, so it
says where the realised value should fall if nothing but the inputs changed.
The calibration is itself learnt from a few thousand rows, so each simulation
draws from one of its bootstrap curves, and the fit is corrected for isotonic
regression's optimism at the ends of the scores (:class:`Calibrator`): without
both, on a stationary process with a reference of 1,500 rows, the realised
value fell below the interval in 10.2% of windows, not 2.5% (now 2.3%).
Such estimation is blind to a change in P(y | x) (concept shift): comparing
it with the realised value once labels mature is how that shows
(:func:`estimate_check`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as scipy_stats
from scipy.optimize import isotonic_regression

from fourloops.engines.summaries import ScoreSummary
from fourloops.evaluation.metrics import higher_is_better, metric_specs
from fourloops.evaluation.metrics_binary import MetricSpec

__all__ = [
    "BINARY_METRICS",
    "ESTIMATED_METRICS",
    "Calibrator",
    "MetricValue",
    "auc_delong",
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
_REPLICATES = 200
#: Bootstrap calibrators an estimate's replicates draw from (replicate ``i`` uses ``i mod`` this).
CALIBRATORS = _REPLICATES
#: Scores at which a calibrator keeps P(y = 1) (linear between them).
CALIBRATION_GRID = np.linspace(0.0, 1.0, 201)
#: Score groups the replicates use (the point estimates use every bin of the grid).
_GROUPS = 128


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


Grouping = tuple[NDArray[np.int64], int] | None


def _mean(total: FloatArray, rows: FloatArray) -> FloatArray:
    """``total / rows``, 0 where there are no rows."""
    return np.divide(total, rows, out=np.zeros(np.broadcast(total, rows).shape), where=rows > 0)


def _merge(grouping: Grouping, values: FloatArray) -> FloatArray:
    """Sums of ``values`` (one per bin) over each group of bins (``None``: a group per bin)."""
    if grouping is None:
        return values
    return np.bincount(grouping[0], weights=values, minlength=grouping[1]).astype(float)


def _compress(s: FloatArray, rows: FloatArray, threshold: float) -> tuple[Grouping, FloatArray, FloatArray]:
    """Adjacent bins merged into about :data:`_GROUPS` groups of equal rows, for replicates.

    Each bin's group (``None``: too few bins to merge), each group's mean score and its rows.
    Groups never straddle the decision threshold, so the replicates' metrics differ from those
    on the full grid only by the finer ordering inside a group.
    """
    if np.count_nonzero(rows) <= _GROUPS:
        return None, s, rows
    order = np.argsort(s, kind="stable")
    rank = np.floor(np.cumsum(rows[order]) / rows.sum() * _GROUPS).clip(0, _GROUPS - 1)
    _, dense = np.unique(rank + _GROUPS * (s[order] >= threshold), return_inverse=True)
    group = np.empty(s.size, dtype=np.int64)
    group[order] = dense
    grouping = (group, int(dense.max()) + 1)
    merged = _merge(grouping, rows)
    return grouping, _mean(_merge(grouping, s * rows), merged), merged


def _shifted(point: float, values: FloatArray, base: float, confidence: float, rows: int) -> MetricValue:
    """The interval of replicates computed on merged bins, moved by the merge's effect on the point."""
    return _interval(
        point, values + (point - base if np.isfinite(point) and np.isfinite(base) else 0.0), confidence, rows
    )


def _binary_value(name: str, y: FloatArray, s: FloatArray, w: FloatArray, threshold: float) -> FloatArray:
    """Metric ``name`` for each weight row of ``w`` (labels ``y`` may be fractional)."""
    if name == "brier":
        # E[(s - y)^2] with y ~ Bernoulli(c) is (s - c)^2 + c (1 - c); for 0/1 labels the second term is 0.
        per_row = (s - y) ** 2 + y * (1 - y)
        total = w.sum(axis=1)
        mean: FloatArray = np.divide(w @ per_row, total, out=np.full(total.shape, np.nan), where=total > 0)
        return mean
    return np.asarray(_binary_spec(name, threshold).batch(y, s, w))


@functools.lru_cache(maxsize=256)
def _binary_spec(name: str, threshold: float) -> MetricSpec:
    """The binary metric ``name`` at ``threshold`` (built once: every window asks for it)."""
    return metric_specs("binary", threshold=threshold)[name]


def _binary_realised(
    summary: ScoreSummary,
    threshold: float,
    rng: np.random.Generator,
    confidence: float,
    names: Sequence[str] = BINARY_METRICS,
) -> dict[str, MetricValue]:
    mean, pos, neg, _ = _bins(summary)
    n = int(pos.sum() + neg.sum())
    if not n:
        return {name: MetricValue(None, None, None, 0) for name in names}
    y, s, w = _stack(mean, pos, neg)
    grouping, small_s, _ = _compress(mean, pos + neg, threshold)
    ys, ss, ws = _stack(small_s, _merge(grouping, pos), _merge(grouping, neg))
    reps = rng.multinomial(n, ws / ws.sum(), size=_REPLICATES).astype(float)
    out = {}
    for name in names:
        point = float(_binary_value(name, y, s, w[np.newaxis, :], threshold)[0])
        base = float(_binary_value(name, ys, ss, ws[np.newaxis, :], threshold)[0])
        out[name] = _shifted(point, _binary_value(name, ys, ss, reps, threshold), base, confidence, n)
    return out


def _stack(mean: FloatArray, pos: FloatArray, neg: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Rows as (label, score, weight): positives then negatives, empty bins left out."""
    y = np.concatenate([np.ones_like(mean), np.zeros_like(mean)])
    s = np.concatenate([mean, mean])
    w = np.concatenate([pos, neg])
    keep = w > 0
    return y[keep], s[keep], w[keep]


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
    rng = np.random.default_rng(seed)
    if summary.task == "binary":
        names = BINARY_METRICS if metrics is None else tuple(m for m in metrics if m in BINARY_METRICS)
        return _binary_realised(summary, threshold, rng, confidence, names)
    if summary.task == "regression":
        values = _regression_realised(summary, confidence)
    else:
        values = _multiclass_realised(summary, rng, confidence)
    return values if metrics is None else {m: v for m, v in values.items() if m in metrics}


def auc_delong(summary: ScoreSummary) -> tuple[float | None, float | None, int]:
    """ROC-AUC of a binary summary's labelled rows with DeLong's standard error: value, error, rows.

    Each bin's rows sit at the bin's mean score (ties count half, as in :func:`realised`). A
    positive's placement is the share of negatives scored below it, a negative's the share of
    positives scored above it; the AUC is the mean placement of the positives, and its variance
    the placements' variance among the positives over their count plus the same among the
    negatives (DeLong, DeLong and Clarke-Pearson, 1988). No resampling: microseconds, exact for
    the binned scores.

    >>> import numpy as np
    >>> from fourloops.engines.summaries import ScoreSummary
    >>> pos, neg = np.array([1, 2, 7]), np.array([6, 3, 1])
    >>> s = ScoreSummary("binary", 3, pos, neg, np.zeros(3, int), (pos + neg) * np.array([0.2, 0.5, 0.8]))
    >>> value, se, rows = auc_delong(s)
    >>> round(value, 4), round(se, 4), rows
    (0.845, 0.0888, 20)
    """
    mean, pos, neg, _ = _bins(summary)
    keep = (pos + neg) > 0
    score, pos, neg = mean[keep], pos[keep], neg[keep]
    n1, n0 = float(pos.sum()), float(neg.sum())
    rows = int(n1 + n0)
    if n1 < 2 or n0 < 2:
        return None, None, rows
    # Bins of equal mean score are one score: merge them, in increasing order.
    distinct, where = np.unique(score, return_inverse=True)
    pos = np.bincount(where, weights=pos, minlength=distinct.size).astype(float)
    neg = np.bincount(where, weights=neg, minlength=distinct.size).astype(float)
    below = np.cumsum(neg) - neg  # negatives scored strictly lower
    above = pos.sum() - np.cumsum(pos)  # positives scored strictly higher
    v10 = (below + 0.5 * neg) / n0  # a positive's placement among the negatives
    v01 = (above + 0.5 * pos) / n1  # a negative's placement among the positives
    auc = float(pos @ v10 / n1)
    s10 = float(pos @ (v10 - auc) ** 2) / (n1 - 1)
    s01 = float(neg @ (v01 - auc) ** 2) / (n0 - 1)
    return auc, float(np.sqrt(s10 / n1 + s01 / n0)), rows


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
    off. Each replicate of :func:`estimate` draws its labels from one of them. It is fitted
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

    def bootstrap_sums(self, score: FloatArray, weight: FloatArray, grouping: Grouping) -> FloatArray:
        """Each bootstrap curve's ``weight``-ed sum of P(y = 1) over each group's scores (curves × groups).

        ``grouping`` gives each score's group and the number of groups (``None``: a group per score);
        without bootstrap curves, the fit itself is the one curve.
        """
        group, k = grouping if grouping is not None else (np.arange(score.size), score.size)
        curves = self.replicates if len(self.replicates) else self.y[np.newaxis, :]
        # Interpolation on the uniform grid is linear in the curve: sum each group's weights onto
        # the grid points around its scores once, then every curve is one product with them.
        at = np.clip(score, 0.0, 1.0) * (self.x.size - 1)
        i = np.minimum(at.astype(np.int64), self.x.size - 2)
        frac = at - i
        cells = np.concatenate([i * k + group, (i + 1) * k + group])
        spread = np.bincount(cells, np.concatenate([weight * (1 - frac), weight * frac]), self.x.size * k)
        # (einsum, not BLAS: a threaded BLAS call this small costs more in threads than it saves.)
        sums: FloatArray = np.einsum("cj,jk->ck", curves, spread.reshape(self.x.size, k))
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
    seed: int = 0,
    confidence: float = 0.95,
    labelled_only: bool = False,
) -> dict[str, MetricValue]:
    """Estimated binary metrics of a window's rows (all, or only the labelled ones) without their labels.

    The interval is where the realised value should fall if P(y | score) is what the reference
    showed: each replicate takes one of the calibrator's bootstrap curves (the reference's own
    sampling error) and draws the rows' labels from its chances (the window's).
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
    rng = np.random.default_rng(seed)
    # Replicates on merged bins: each merged bin's positives drawn from its rows' chances.
    grouping, small_s, small_w = _compress(s, w, threshold)
    small_c = _mean(_merge(grouping, c * w), small_w)
    chances = _mean(calibrator.bootstrap_sums(s, w, grouping), small_w)
    chances = np.clip(chances[np.arange(_REPLICATES) % len(chances)], 0.0, 1.0)
    sim_pos = rng.binomial(small_w.astype(np.int64), chances).astype(float)
    y2 = np.concatenate([np.ones_like(small_s), np.zeros_like(small_s)])
    s2 = np.concatenate([small_s, small_s])
    sims = np.concatenate([sim_pos, small_w - sim_pos], axis=1)
    out = {}
    for name in ESTIMATED_METRICS:
        point = float(_binary_value(name, c, s, w[np.newaxis, :], threshold)[0])
        base = float(_binary_value(name, small_c, small_s, small_w[np.newaxis, :], threshold)[0])
        out[name] = _shifted(point, _binary_value(name, y2, s2, sims, threshold), base, confidence, n)
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
