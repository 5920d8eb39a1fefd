"""Evaluation: metrics, calibration, cost, baselines and per-segment intervals.

* :func:`evaluate` gives every metric of a task (``"binary"``, ``"multiclass"``,
  ``"regression"``) as ``{name: float | None}``; the single metrics are also
  functions (:func:`roc_auc`, :func:`log_loss`, :func:`r2`, ...).
* :func:`calibration` gives the reliability table and ECE of probabilities.
* :func:`best_threshold` picks the decision threshold of least :class:`Cost`.
* :func:`evaluate_with_baseline` sets a model beside its "do nothing" baseline.
* :func:`segment_metrics` gives per-segment metrics with bootstrap intervals;
  :func:`bootstrap_diff` the paired interval of a difference between models.

Conventions. Metrics are pure NumPy and vectorised; each agrees with
scikit-learn to 1e-9 (tested). A metric that is undefined for the rows given
(ROC-AUC or average precision without both classes, R2 with constant
``y_true``, any metric of an empty sample) is ``None``, never NaN and never
an exception. Bad input (labels outside {0, 1}, probabilities outside [0, 1],
NaN, mismatched lengths, unknown task or metric) raises ``ValueError``.
Probabilities are clipped to ``[eps, 1 - eps]`` (float64 machine epsilon)
before a log, as scikit-learn >= 1.6 does; rows are not renormalised.
"""

from __future__ import annotations

from fourloops.evaluation.baselines import baseline_predictions, evaluate_with_baseline, lift
from fourloops.evaluation.calibration import (
    CalibrationBin,
    CalibrationReport,
    bin_edges,
    calibration,
)
from fourloops.evaluation.cost import Cost, ThresholdChoice, best_threshold, expected_cost
from fourloops.evaluation.metrics import TASKS, evaluate, higher_is_better
from fourloops.evaluation.metrics_binary import (
    average_precision,
    brier,
    f1,
    log_loss,
    precision,
    recall,
    roc_auc,
)
from fourloops.evaluation.metrics_multiclass import accuracy, macro_f1, multiclass_log_loss
from fourloops.evaluation.metrics_regression import interval_coverage, mae, pinball_loss, r2, rmse
from fourloops.evaluation.segments import (
    Interval,
    SegmentResult,
    bootstrap_ci,
    bootstrap_diff,
    segment_metrics,
)

__all__ = [
    "TASKS",
    "CalibrationBin",
    "CalibrationReport",
    "Cost",
    "Interval",
    "SegmentResult",
    "ThresholdChoice",
    "accuracy",
    "average_precision",
    "baseline_predictions",
    "best_threshold",
    "bin_edges",
    "bootstrap_ci",
    "bootstrap_diff",
    "brier",
    "calibration",
    "evaluate",
    "evaluate_with_baseline",
    "expected_cost",
    "f1",
    "higher_is_better",
    "interval_coverage",
    "lift",
    "log_loss",
    "macro_f1",
    "mae",
    "multiclass_log_loss",
    "pinball_loss",
    "precision",
    "r2",
    "recall",
    "rmse",
    "roc_auc",
    "segment_metrics",
]
