"""Declarative validation gates: what a candidate model must pass before it may be promoted.

Gates are data; :mod:`fourloops.adaptation.gates` evaluates them and stores a
verdict with every number that led to it.
"""

from __future__ import annotations

import re
from typing import Any

from fourloops.errors import DefinitionError

__all__ = [
    "BeatsBaseline",
    "Gate",
    "Guardrail",
    "LatencyBudget",
    "MaxArtifactSize",
    "MaxCalibrationError",
    "MaxSegmentDrop",
    "NoLeakage",
    "NoRegression",
    "OffPolicyLift",
    "parse_size",
]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(value: str | int) -> int:
    """``"50MB"`` -> 50_000_000 bytes; an int is taken as bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise DefinitionError(f"size {value!r}: use e.g. '50MB', '2GiB' or a number of bytes")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


class Gate:
    """Base class: a named check with a canonical JSON form."""

    kind = "gate"

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.kind, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    @property
    def name(self) -> str:
        return self.kind

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class NoRegression(Gate):
    """The primary (or given) metric must not drop versus the champion by more than a bound.

    Judged on a paired bootstrap confidence interval of (candidate - champion)
    on the test rows, not on the point estimate: the gate fails when the
    interval's pessimistic end is worse than ``-max_drop`` (absolute) or
    ``-max_drop * champion`` (``relative=True``). Passes when there is no champion.
    """

    kind = "no_regression"

    def __init__(
        self,
        metric: str | None = None,
        *,
        max_drop: float = 0.0,
        relative: bool = False,
        confidence: float = 0.95,
    ) -> None:
        if max_drop < 0 or not 0 < confidence < 1:
            raise DefinitionError("NoRegression: max_drop must be >= 0 and confidence in (0, 1)")
        self.metric = metric
        self.max_drop = float(max_drop)
        self.relative = relative
        self.confidence = confidence


class BeatsBaseline(Gate):
    """The metric must beat the "do nothing" baseline (prior / mean) by at least ``min_lift``."""

    kind = "beats_baseline"

    def __init__(self, metric: str | None = None, *, min_lift: float = 0.0) -> None:
        self.metric = metric
        self.min_lift = float(min_lift)


class Guardrail(Gate):
    """A metric must stay within bounds: ``Guardrail("log_loss", max=0.6)``."""

    kind = "guardrail"

    def __init__(self, metric: str, *, min: float | None = None, max: float | None = None) -> None:
        if min is None and max is None:
            raise DefinitionError(f"Guardrail {metric!r}: give min=, max= or both")
        self.metric = metric
        self.min = min
        self.max = max


class MaxSegmentDrop(Gate):
    """No segment may be shown to lose more than ``max_drop`` of the metric versus the champion.

    Each segment's change (candidate - champion on the segment's test rows) comes with a paired
    bootstrap standard error; a segment fails when even the optimistic end of its one-sided
    interval at ``confidence``, shared by the judged segments (Bonferroni), is a loss beyond
    ``max_drop``. On a few hundred rows a segment's point estimate moves by several points
    between two equally good models, so a rule on point estimates rejects most candidates that
    are judged on many segments, whatever they are worth; a real loss on a segment large enough
    to show it still fails. ``confidence=None`` judges point estimates (the old rule).
    Segments smaller than ``min_size`` are not judged (reported as too small).
    """

    kind = "max_segment_drop"

    def __init__(
        self,
        metric: str | None = None,
        *,
        max_drop: float = 0.02,
        min_size: int = 200,
        confidence: float | None = 0.95,
    ) -> None:
        if max_drop < 0 or min_size < 1 or (confidence is not None and not 0 < confidence < 1):
            raise DefinitionError(
                "MaxSegmentDrop: max_drop must be >= 0, min_size >= 1 and confidence in (0, 1) or None"
            )
        self.metric = metric
        self.max_drop = float(max_drop)
        self.min_size = int(min_size)
        self.confidence = confidence


class MaxCalibrationError(Gate):
    """Expected calibration error (10 equal-width bins) at most ``max_ece`` (binary models)."""

    kind = "max_calibration_error"

    def __init__(self, max_ece: float = 0.05) -> None:
        self.max_ece = float(max_ece)


class LatencyBudget(Gate):
    """p99 of single-row prediction, measured on ``sample`` test rows, at most ``p99_ms``."""

    kind = "latency_budget"

    def __init__(self, p99_ms: float = 10.0, *, sample: int = 500) -> None:
        self.p99_ms = float(p99_ms)
        self.sample = int(sample)


class MaxArtifactSize(Gate):
    """The serialised model may not exceed ``size`` (``"50MB"``)."""

    kind = "max_artifact_size"

    def __init__(self, size: str | int = "100MB") -> None:
        self.size = parse_size(size)


class NoLeakage(Gate):
    """No single feature may predict the label with AUC / |Spearman| above ``threshold``."""

    kind = "no_leakage"

    def __init__(self, threshold: float = 0.95) -> None:
        self.threshold = float(threshold)


class OffPolicyLift(Gate):
    """Decision models: the candidate policy must beat the champion off-policy, by its lower bound.

    The candidate's policy (as it will be served, exploration included; ``policy="greedy"``
    judges its greedy choice) is evaluated off-policy on the model's test rows from their
    logged propensities (``estimator``: ``"dr"``, ``"ips"``, ``"snips"`` or ``"dm"``, with a
    bootstrap interval at ``confidence``). It passes only when the interval's lower bound beats
    the champion's estimated value on the same rows (or, without a champion, the logging
    policy's value, the logged rewards' mean) by at least ``min_lift``, and the estimate is
    conclusive (enough effective sample, enough support).
    """

    kind = "off_policy_lift"

    def __init__(
        self,
        min_lift: float = 0.0,
        *,
        estimator: str = "dr",
        policy: str = "served",
        confidence: float = 0.95,
    ) -> None:
        if estimator not in ("dr", "ips", "snips", "dm"):
            raise DefinitionError(f"OffPolicyLift: estimator must be dr, ips, snips or dm, got {estimator!r}")
        if policy not in ("served", "greedy"):
            raise DefinitionError(f"OffPolicyLift: policy must be 'served' or 'greedy', got {policy!r}")
        if isinstance(min_lift, bool) or not isinstance(min_lift, int | float):
            raise DefinitionError(f"OffPolicyLift: min_lift must be a number, got {min_lift!r}")
        if not 0 < confidence < 1:
            raise DefinitionError(f"OffPolicyLift: confidence must be in (0, 1), got {confidence!r}")
        self.min_lift = float(min_lift)
        self.estimator = estimator
        self.policy = policy
        self.confidence = float(confidence)
