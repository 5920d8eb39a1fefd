"""How a new version reaches traffic: stages, the checks that move it on, and what failure does.

A rollout walks a candidate through stages: ``Shadow`` (it scores a copy of
the champion's requests; nobody sees its answers), ``Canary(share)`` (it
answers that share of requests, by a sticky hash of the unit), ``Full`` (it
becomes champion). Each stage waits for its ``min_requests`` and
``min_duration``, then the checks decide; a stage still undecided after its
``max_duration`` pauses for a human. ``Check`` compares the candidate with
the champion on one per-request outcome, with a sequential test that stays
valid however often the controller looks (see
:mod:`fourloops.adaptation.sequential`).

>>> rollout = Rollout(stages=[Shadow(min_requests=500), Canary(0.05), Canary(0.25), Full()],
...                   checks=[Check("error", margin=0.01), Check("fallback", margin=0.005, critical=True)])
>>> [s.kind for s in rollout.stages], [c.outcome for c in rollout.checks]
(['shadow', 'canary', 'canary', 'full'], ['error', 'fallback'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fourloops.definitions.durations import format_duration, parse_duration
from fourloops.errors import DefinitionError

__all__ = [
    "ESTIMABLE",
    "LABELLED",
    "OUTCOMES",
    "Canary",
    "Check",
    "Full",
    "Rollout",
    "RolloutStage",
    "Shadow",
]

#: Per-request outcomes a check can compare, and whether lower is better.
OUTCOMES = {
    "error": True,  # the decision at the model's threshold disagrees with the label (binary)
    "log_loss": True,
    "brier": True,
    "abs_error": True,  # regression
    "squared_error": True,
    "fallback": True,  # a fallback answered instead of the model
    "slow": True,  # slower than the champion's 95th percentile in the same period
    "latency_ms": True,
    "reward": False,  # decision models: the logged reward (the label)
}
#: Outcomes that need labels (they wait for labels to mature).
LABELLED = frozenset({"error", "log_loss", "brier", "abs_error", "squared_error", "reward"})
#: Outcomes a binary classifier's calibrated score gives the expectation of (``Check(estimate=True)``).
ESTIMABLE = frozenset({"error", "log_loss", "brier"})


def _duration(value: str | int | timedelta | None, what: str) -> timedelta | None:
    return None if value is None else parse_duration(value, what=what)


@dataclass(frozen=True)
class RolloutStage:
    """A stage of a rollout (made by :func:`Shadow`, :func:`Canary` or :func:`Full`)."""

    kind: str
    share: float = 0.0
    min_requests: int = 0
    min_duration: timedelta | None = None
    max_duration: timedelta | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "share": self.share,
            "min_requests": self.min_requests,
            "min_duration": format_duration(self.min_duration) if self.min_duration else None,
            "max_duration": format_duration(self.max_duration) if self.max_duration else None,
        }


def _stage(
    kind: str,
    share: float,
    min_requests: int,
    min_duration: str | int | timedelta | None,
    max_duration: str | int | timedelta | None,
) -> RolloutStage:
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 0:
        raise DefinitionError(f"{kind} stage: min_requests must be an integer >= 0, got {min_requests!r}")
    low = _duration(min_duration, f"{kind} min_duration")
    high = _duration(max_duration, f"{kind} max_duration")
    if low is not None and high is not None and high < low:
        raise DefinitionError(f"{kind} stage: max_duration {high} is shorter than min_duration {low}")
    return RolloutStage(kind, share, min_requests, low, high)


def Shadow(  # noqa: N802 - reads as a declaration, like the other stages
    *,
    min_requests: int = 1000,
    min_duration: str | int | timedelta | None = None,
    max_duration: str | int | timedelta | None = "3d",
) -> RolloutStage:
    """The candidate scores a copy of every champion request; its answers are logged, never returned."""
    return _stage("shadow", 0.0, min_requests, min_duration, max_duration)


def Canary(  # noqa: N802
    share: float,
    *,
    min_requests: int = 1000,
    min_duration: str | int | timedelta | None = None,
    max_duration: str | int | timedelta | None = "7d",
) -> RolloutStage:
    """The candidate answers ``share`` of the requests (sticky by unit)."""
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise DefinitionError(f"Canary share must be between 0 and 1 (exclusive), got {share!r}")
    return _stage("canary", float(share), min_requests, min_duration, max_duration)


def Full() -> RolloutStage:  # noqa: N802
    """The candidate becomes champion (promoted, audited): the rollout is done."""
    return RolloutStage("full", 1.0)


@dataclass(frozen=True)
class Check:
    """Compare the candidate with the champion on one per-request outcome.

    Parameters
    ----------
    outcome:
        One of :data:`OUTCOMES` (``error``, ``log_loss``, ``brier``, ``abs_error``,
        ``squared_error``, ``fallback``, ``slow``, ``latency_ms``, ``reward``).
    margin:
        How much worse the candidate may be (in the outcome's units) and still pass
        (non-inferiority); it fails when it is worse by more, at the sequential test's confidence.
    critical:
        One failure aborts the rollout (otherwise the rollout's ``failures`` setting decides).
    must_have_data:
        No data by the end of a stage counts as a failure, not as a pass.
    tau:
        With ``margin=0``, the size of difference that matters (the sequential test's scale).
    estimate:
        For a binary classifier's ``error``, ``log_loss`` or ``brier`` where labels are far away:
        a request whose label has not arrived counts with its **expected** outcome, from the
        answering version's score calibrated on that version's reference (confidence-based
        estimation, as the monitor's estimated performance), and with its realised outcome once
        the label is in. The check can then decide before labels mature; it is blind to a change
        in P(y | x) that the labels have not shown yet, as every such estimate is.
    """

    outcome: str
    margin: float = 0.0
    critical: bool = False
    must_have_data: bool = True
    tau: float | None = None
    estimate: bool = False

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise DefinitionError(
                f"Check: unknown outcome {self.outcome!r}; choose from {', '.join(OUTCOMES)}"
            )
        if isinstance(self.margin, bool) or not isinstance(self.margin, int | float) or self.margin < 0:
            raise DefinitionError(
                f"Check {self.outcome!r}: margin must be a number >= 0, got {self.margin!r}"
            )
        if self.margin == 0 and self.tau is None:
            raise DefinitionError(
                f"Check {self.outcome!r}: with margin 0 give tau, the size of difference that matters"
            )
        if not isinstance(self.estimate, bool):
            raise DefinitionError(
                f"Check {self.outcome!r}: estimate must be True or False, got {self.estimate!r}"
            )
        if self.estimate and self.outcome not in ESTIMABLE:
            raise DefinitionError(
                f"Check {self.outcome!r}: estimate=True works for {', '.join(sorted(ESTIMABLE))} "
                "(outcomes a calibrated score predicts)"
            )

    @property
    def lower_is_better(self) -> bool:
        return OUTCOMES[self.outcome]

    @property
    def needs_labels(self) -> bool:
        """Whether only labelled requests count (an estimated check counts every request)."""
        return self.outcome in LABELLED and not self.estimate

    @property
    def name(self) -> str:
        """The check's key in a rollout's state and evidence (``estimated_<outcome>`` if estimated)."""
        return f"estimated_{self.outcome}" if self.estimate else self.outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "margin": self.margin,
            "critical": self.critical,
            "must_have_data": self.must_have_data,
            "tau": self.tau,
            # only when set: a policy without estimation keeps its content hash
            **({"estimate": True} if self.estimate else {}),
        }


@dataclass(frozen=True)
class Rollout:
    """A model's rollout policy: stages in order (ending with ``Full()``), checks, and what failure does.

    Parameters
    ----------
    stages:
        ``[Shadow(...), Canary(0.05), Canary(0.25), Full()]`` or any subsequence ending with ``Full()``.
    checks:
        The comparisons every stage (but ``Full``) must pass.
    alpha:
        Error rate of each check's sequential test, however often it is looked at.
    failures:
        Failed checks (not critical) in a row that abort; more forgiving against a false abort.
    errors:
        Checks in a row that could not be measured (an error) that abort.
    on_failure:
        ``"abort"`` (traffic back to the champion) or ``"pause"`` (wait for a human).
    on_timeout:
        What a stage still undecided at its ``max_duration`` does: ``"pause"`` (wait for a
        human, the default) or ``"abort"`` (a candidate never shown good enough goes back, so that
        an unattended controller is free to try the next one).
    """

    stages: Sequence[RolloutStage] = field(
        default_factory=lambda: [Shadow(), Canary(0.05), Canary(0.25), Full()]
    )
    checks: Sequence[Check] = field(default_factory=lambda: [Check("fallback", margin=0.01, critical=True)])
    alpha: float = 0.05
    failures: int = 1
    errors: int = 3
    on_failure: str = "abort"
    on_timeout: str = "pause"

    def __post_init__(self) -> None:
        stages = list(self.stages)
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "checks", list(self.checks))
        if not stages or stages[-1].kind != "full":
            raise DefinitionError("Rollout: the last stage must be Full()")
        if any(s.kind == "full" for s in stages[:-1]):
            raise DefinitionError("Rollout: Full() can only be the last stage")
        shares = [s.share for s in stages if s.kind == "canary"]
        if shares != sorted(shares):
            raise DefinitionError(f"Rollout: canary shares must not shrink from stage to stage, got {shares}")
        for s in stages:
            if not isinstance(s, RolloutStage):
                raise DefinitionError(f"Rollout: stages are Shadow(), Canary(share) or Full(), got {s!r}")
        for c in self.checks:
            if not isinstance(c, Check):
                raise DefinitionError(f"Rollout: checks are fl.Check(...), got {c!r}")
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise DefinitionError(f"Rollout: check {', '.join(twice)} is given twice; give each outcome once")
        if not 0 < self.alpha < 1:
            raise DefinitionError(f"Rollout: alpha must be between 0 and 1, got {self.alpha}")
        if self.failures < 1 or self.errors < 1:
            raise DefinitionError("Rollout: failures and errors must be at least 1")
        if self.on_failure not in ("abort", "pause"):
            raise DefinitionError(f"Rollout: on_failure must be 'abort' or 'pause', got {self.on_failure!r}")
        if self.on_timeout not in ("abort", "pause"):
            raise DefinitionError(f"Rollout: on_timeout must be 'abort' or 'pause', got {self.on_timeout!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": [s.to_dict() for s in self.stages],
            "checks": [c.to_dict() for c in self.checks],
            "alpha": self.alpha,
            "failures": self.failures,
            "errors": self.errors,
            "on_failure": self.on_failure,
            "on_timeout": self.on_timeout,
        }
