"""Drift: two-sample tests of a window against the reference, calibrated for every window size.

* :mod:`~fourloops.evaluation.drift.statistics`: PSI, Jensen–Shannon, KS,
  Wasserstein and the two-sample chi-square on binned counts;
* :mod:`~fourloops.evaluation.drift.methods`: each statistic as a test with a
  p-value (closed form, or a simulated null for the distances) and an effect size;
* :mod:`~fourloops.evaluation.drift.policy`: when a column counts as drifted
  (significance after Benjamini–Hochberg, an effect floor, a minimum sample).
"""

from __future__ import annotations

from fourloops.evaluation.drift.methods import METHODS, Comparison, Kind, MethodResult
from fourloops.evaluation.drift.policy import DEFAULT_METHODS, ColumnDrift, DriftPolicy, adjust

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "ColumnDrift",
    "Comparison",
    "DriftPolicy",
    "Kind",
    "MethodResult",
    "adjust",
]
