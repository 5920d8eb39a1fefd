"""Cost-weighted decisions: the cost of a threshold and the threshold of least cost.

A row with ``score >= threshold`` is acted on (predicted positive). Each of the
four outcomes has a cost per row; the expected cost of a threshold is the
total over rows. :func:`best_threshold` tries every distinct score as the
threshold, plus one just above the maximum score, meaning "never act", in one
sort and one cumulative sum.

>>> choice = best_threshold([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], Cost(fp=1.0, fn=5.0))
>>> choice.threshold, choice.cost, choice.cost_per_row
(0.4, 1.0, 0.25)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fourloops.definitions.model import Cost
from fourloops.evaluation.metrics_binary import prepare_binary

__all__ = ["Cost", "ThresholdChoice", "best_threshold", "expected_cost"]

#: Relative tolerance under which two totals count as a tie.
_TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold of least total cost, that cost and its mean per row."""

    threshold: float
    cost: float
    cost_per_row: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary."""
        return asdict(self)


def _total(cost: Cost, tp: Any, fp: Any, positives: float, negatives: float) -> Any:
    # tp and fp are counts (floats) or arrays of counts, one per threshold
    return cost.tp * tp + cost.fp * fp + cost.fn * (positives - tp) + cost.tn * (negatives - fp)


def expected_cost(y_true: ArrayLike, score: ArrayLike, cost: Cost, *, threshold: float = 0.5) -> float:
    """Total cost of acting on ``score >= threshold``.

    >>> expected_cost([0, 1, 1], [0.7, 0.8, 0.2], Cost(fp=1.0, fn=5.0))
    6.0
    """
    y, s = prepare_binary(y_true, score)
    act = s >= threshold
    tp = float(np.sum(y * act))
    fp = float(np.sum((1 - y) * act))
    return float(_total(cost, tp, fp, float(y.sum()), float((1 - y).sum())))


def best_threshold(y_true: ArrayLike, score: ArrayLike, cost: Cost) -> ThresholdChoice:
    """The threshold that minimises the total cost; ties go to the highest threshold
    (the fewest rows acted on).

    Candidates are the distinct scores and ``nextafter(max(score), inf)``
    (never act). For an empty sample the answer is ``inf`` at cost 0.
    """
    y, s = prepare_binary(y_true, score)
    n = y.size
    if n == 0:
        return ThresholdChoice(math.inf, 0.0, 0.0)
    order = np.argsort(-s, kind="mergesort")
    sorted_score, sorted_y = s[order], y[order]
    # Last row of each run of equal scores: acting from that score on covers the run.
    ends = np.append(np.flatnonzero(np.diff(sorted_score)), n - 1)
    tp = np.concatenate(([0.0], np.cumsum(sorted_y)[ends]))
    fp = np.concatenate(([0.0], np.cumsum(1 - sorted_y)[ends]))
    thresholds = np.concatenate(([np.nextafter(sorted_score[0], np.inf)], sorted_score[ends]))
    totals = _total(cost, tp, fp, float(y.sum()), float(n - y.sum()))
    # Near-ties within rounding error go to the highest threshold, too.
    scale = (abs(cost.fp) + abs(cost.fn) + abs(cost.tp) + abs(cost.tn)) * n
    best = int(np.flatnonzero(totals <= totals.min() + _TIE_TOLERANCE * scale)[0])
    return ThresholdChoice(float(thresholds[best]), float(totals[best]), float(totals[best] / n))
