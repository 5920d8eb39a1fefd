"""A segment judged on its last windows pooled: enough labels to see a sustained drop, at a known error rate.

One window of a small segment holds too few labels to show a drop: a day of JFK's ~300
flights gives an AUC within about ±0.1, and with a model's ~20 segment values judged together
every interval has to be wider still (simultaneous). A drop that lasts shows up when the
segment's last windows are judged together; score summaries are mergeable, so the summary of
a segment's last ``k`` windows is the sum of theirs, and its realised metric is that of their
rows together.

Each mature window judges every segment on its last 2, 4, 8, ... windows up to ``longest``
(:func:`scales`; only windows whose labels have matured are pooled): short pools see a sudden
fall at once, long ones a small lasting one. The test is one-sided, against the segment's own
value at training lowered by the allowed drop (:func:`judge`); its standard error combines the
pooled value's and the reference's. Windows differ more than their rows say (a day of storms
is not a day of fog), so a pool's error also counts the spread of its windows' own values
beyond their sampling errors (:func:`between_windows`, DerSimonian and Laird's random-effects
estimate), and the reference's error the same spread over the windows' worth of days it holds:
days that merely differ are less often taken for a drop, while windows that agree on a lower
value add nothing. The level is the policy's ``segment_alpha`` split evenly (Bonferroni) over
the segments judged in the window and the pool sizes (:func:`judge_window`), so that when no
segment is worse than allowed and its rows are alike from day to day, the chance that any
segment alerts in a window stays at most ``segment_alpha``. Days that differ as much as real
ones do are the hard case: a few windows tell their spread only roughly, and some segment then
alerts more often than the level says.

A binary metric's standard error is its linearised one, from the bins with no resampling
(DeLong's for ROC-AUC; :mod:`fourloops.evaluation.influence`); a multiclass metric's comes from
the bootstrap's replicates (their central 68.27 %, which a couple of hundred replicates
estimate well). The critical value is the normal distribution's: a Bonferroni level such as
0.025 / (20 × 3) lies far in the tail, where a couple of hundred replicates could not place a
percentile.

>>> scales(8), scales(6), scales(2), scales(1)
((2, 4, 8), (2, 4, 6), (2,), (1,))
>>> pool = SegmentPool(0.80, 0.01, (PooledMetric((3,), None, None, 0.68, 0.04, 300),
...                                  PooledMetric((0, 1, 2, 3), None, None, 0.68, 0.02, 1200)))
>>> level = 0.025 / (20 * 2)  # 20 segments, two pools each
>>> verdict = judge(pool, better_high=True, max_drop=0.05, alpha=level, min_rows=100)
>>> verdict.pooled.windows, round(verdict.bound, 3), round(verdict.z, 2), verdict.high < verdict.bound
((0, 1, 2, 3), 0.76, -3.61, True)
>>> alone = SegmentPool(0.80, 0.01, pool.pools[:1])  # the last window alone cannot tell
>>> judge(alone, better_high=True, max_drop=0.05, alpha=level, min_rows=100) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scipy.special import ndtr, ndtri

from fourloops.engines.summaries import ScoreSummary
from fourloops.evaluation.window_metrics import BINARY_METRICS, binary_error, realised

__all__ = [
    "DEFAULT_POOL",
    "ONE_SIGMA",
    "PoolVerdict",
    "PooledMetric",
    "SegmentPool",
    "between_windows",
    "judge",
    "judge_window",
    "measure",
    "merge_all",
    "pool_windows",
    "scales",
]

#: The share of a normal statistic's distribution within one standard error of its mean.
ONE_SIGMA = math.erf(1 / math.sqrt(2))
#: The most windows a segment is judged on together, unless the alert policy says otherwise.
DEFAULT_POOL = 8


def scales(longest: int) -> tuple[int, ...]:
    """How many windows each pool holds: 2, 4, 8, ... below ``longest``, then ``longest``.

    Pools start at two windows: one window cannot tell its day's own luck from a drop, two or
    more measure it (:func:`between_windows`). ``longest=1`` judges each window alone.
    """
    if longest < 1:
        raise ValueError(f"a pool holds at least one window, got {longest}")
    if longest == 1:
        return (1,)
    out = [2]
    while out[-1] * 2 < longest:
        out.append(out[-1] * 2)
    if out[-1] != longest:
        out.append(longest)
    return tuple(out)


@dataclass(frozen=True)
class PooledMetric:
    """A realised metric on the labelled rows of ``windows`` (indices) together, from ``start`` to ``end``."""

    windows: tuple[int, ...]
    start: datetime | None
    end: datetime | None
    value: float | None
    se: float | None
    rows: int
    #: The spread between the windows' own values beyond their sampling errors (counted in ``se``).
    between: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "windows": list(self.windows),
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "value": self.value,
            "se": self.se,
            "between": self.between,
            "labelled": self.rows,
        }


@dataclass(frozen=True)
class SegmentPool:
    """A segment's metric at training (value, standard error) and on its last windows, shortest first."""

    reference: float | None
    reference_se: float | None
    pools: tuple[PooledMetric, ...]
    #: The reference's labelled rows: how many windows' worth of days it holds, each with the spread.
    reference_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "reference_se": self.reference_se,
            "reference_labelled": self.reference_rows,
            "pools": [p.to_dict() for p in self.pools],
        }


@dataclass(frozen=True)
class PoolVerdict:
    """A pool worse than allowed: the pool, the bound, the test (z, one-sided p, its level) and the edges.

    ``low`` and ``high`` are the pooled value minus and plus the critical value times the
    difference's standard error: the edge on the good side (``high`` when higher is better) lies
    beyond the bound.
    """

    pooled: PooledMetric
    bound: float
    z: float
    p_value: float
    alpha: float
    low: float
    high: float


def measure(
    summary: ScoreSummary, metric: str, *, threshold: float, seed: int
) -> tuple[float | None, float | None, int]:
    """``metric`` on ``summary``'s labelled rows: its value, standard error and rows.

    A binary metric's error is its linearised one
    (:func:`~fourloops.evaluation.window_metrics.binary_error`: DeLong's for ROC-AUC), with no
    resampling; a regression metric's comes from its normal interval, a multiclass one's from
    its bootstrap replicates. A metric the window's metrics do not include (a binary model's
    average precision, say) has neither.
    """
    if summary.task == "binary":
        if metric not in BINARY_METRICS:
            return None, None, summary.labelled
        return binary_error(summary, metric, threshold=threshold)
    value = realised(summary, threshold=threshold, seed=seed, confidence=ONE_SIGMA, metrics=[metric]).get(
        metric
    )
    if value is None:
        return None, None, summary.labelled
    if value.low is None or value.high is None:
        return value.value, None, value.rows
    return value.value, (value.high - value.low) / 2, value.rows


def between_windows(values: Sequence[tuple[float, float]]) -> float:
    """How much windows' values of a metric differ beyond their sampling errors: a standard deviation.

    ``values`` are (value, standard error) pairs, one per window. DerSimonian and Laird's
    moment estimate (1986): the weighted spread ``Q`` of the values around their weighted mean,
    less what the sampling errors alone give (``k - 1``), scaled back to the values' units;
    0 when the windows agree within their errors, or there are fewer than two.

    >>> round(between_windows([(0.60, 0.03), (0.62, 0.03), (0.61, 0.03)]), 3)  # they agree
    0.0
    >>> round(between_windows([(0.50, 0.03), (0.70, 0.03), (0.60, 0.03)]), 3)  # they do not
    0.095
    """
    pairs = [(v, se) for v, se in values if se > 0]
    if len(pairs) < 2:
        return 0.0
    w = [1 / se**2 for _, se in pairs]
    total = sum(w)
    mean = sum(wi * v for wi, (v, _) in zip(w, pairs, strict=True)) / total
    q = sum(wi * (v - mean) ** 2 for wi, (v, _) in zip(w, pairs, strict=True))
    scale = total - sum(wi * wi for wi in w) / total
    return math.sqrt(max(0.0, (q - (len(pairs) - 1)) / scale)) if scale > 0 else 0.0


def judge(
    pool: SegmentPool, *, better_high: bool, max_drop: float, alpha: float, min_rows: int
) -> PoolVerdict | None:
    """The pool that shows the segment worse than its reference by more than ``max_drop``, if one does.

    Each pool with at least ``min_rows`` labelled rows is tested at level ``alpha``; of those that
    fail, the one with the smallest p-value.
    """
    ref, ref_se = pool.reference, pool.reference_se or 0.0
    if ref is None:
        return None
    factor = 1 - max_drop if better_high else 1 + max_drop
    bound = ref * factor
    critical = -float(ndtri(alpha))  # the normal's upper alpha quantile
    best: PoolVerdict | None = None
    for p in pool.pools:
        if p.value is None or p.se is None or p.rows < min_rows:
            continue
        # The reference's days differ too: it holds reference_rows / (rows a window) windows' worth.
        days = p.between**2 * p.rows / len(p.windows) / pool.reference_rows if pool.reference_rows else 0.0
        se = math.sqrt(p.se**2 + factor**2 * (ref_se**2 + days))
        if se <= 0:
            continue
        z = (p.value - bound) / se if better_high else (bound - p.value) / se
        p_value = float(ndtr(z))
        if p_value < alpha and (best is None or p_value < best.p_value):
            best = PoolVerdict(p, bound, z, p_value, alpha, p.value - critical * se, p.value + critical * se)
    return best


def judge_window(
    pools: Mapping[str, SegmentPool],
    *,
    better_high: bool,
    max_drop: float,
    segment_alpha: float,
    longest: int,
    min_rows: int,
) -> dict[str, PoolVerdict]:
    """The segments of one window (by key) worse than allowed, each with its verdict.

    The level ``segment_alpha`` is split evenly (Bonferroni) over the segments that can be judged
    (a reference and a pool) and the pool sizes :func:`scales` gives for ``longest``, whether or
    not a window has all of them yet: when no segment is worse than allowed, some segment fails
    in at most a share ``segment_alpha`` of windows.
    """
    judged = {key: pool for key, pool in pools.items() if pool.reference is not None and pool.pools}
    if not judged:
        return {}
    alpha = segment_alpha / (len(judged) * len(scales(longest)))
    out = {}
    for key, pool in judged.items():
        verdict = judge(pool, better_high=better_high, max_drop=max_drop, alpha=alpha, min_rows=min_rows)
        if verdict is not None:
            out[key] = verdict
    return out


def pool_windows(
    index: int,
    windows: Mapping[int, ScoreSummary],
    metric: str,
    *,
    longest: int,
    threshold: float,
    seed: Callable[[int, int], int] = lambda size, index: size,
    alone: dict[int, tuple[float | None, float | None, int]] | None = None,
) -> list[tuple[tuple[int, ...], float | None, float | None, int, float]]:
    """Window ``index``'s pools: (windows, value, error, rows, spread between windows), shortest first.

    ``windows`` holds a segment's summaries by window index (those whose labels matured); pool
    ``k`` of :func:`scales` holds those of the last ``k`` indices up to ``index``, and a pool with
    the same windows as a shorter one is left out (no new test). Each pool's error counts how its
    own windows differ beyond their sampling errors (:func:`between_windows`; none for one
    window): a pooled value averages its windows (by their rows), so a spread ``tau`` adds
    ``tau**2 * sum(share**2)`` to its variance. ``seed(size, index)`` seeds the bootstrap
    (a multiclass model's metrics) of the pool of ``size`` windows up to ``index``; ``alone``
    caches each window's own measure.
    """
    if index not in windows:
        return []
    cache = {} if alone is None else alone
    out: list[tuple[tuple[int, ...], float | None, float | None, int, float]] = []
    members: tuple[int, ...] = ()
    total: ScoreSummary | None = None
    for size in scales(longest):
        wider = tuple(i for i in range(index - size + 1, index + 1) if i in windows)
        if wider == members:
            continue
        # A longer pool holds the shorter one's windows: add only the earlier ones.
        added = [windows[i] for i in wider if i not in members]
        total = merge_all(added if total is None else [total, *added])
        members = wider
        value, se, rows = measure(total, metric, threshold=threshold, seed=seed(size, index))
        for i in members:
            if i not in cache:
                cache[i] = measure(windows[i], metric, threshold=threshold, seed=seed(1, i))
        own = [cache[i] for i in members]
        tau = between_windows([(v, e) for v, e, _ in own if v is not None and e is not None])
        sizes = [n for _, _, n in own]
        shares = sum((n / sum(sizes)) ** 2 for n in sizes) if sum(sizes) else 1.0
        out.append((members, value, None if se is None else math.sqrt(se**2 + tau**2 * shares), rows, tau))
    return out


def merge_all(summaries: Sequence[ScoreSummary]) -> ScoreSummary:
    """The summary of the rows of ``summaries`` (at least one) together."""
    total = summaries[0]
    for s in summaries[1:]:
        total = total.merge(s)
    return total
