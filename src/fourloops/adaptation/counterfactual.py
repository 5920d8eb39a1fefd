"""A decision model's canary against its promise: the off-policy estimate beside the realised reward.

Before a candidate policy gets traffic, training estimated its value off-policy
on the test rows (the served policy, exploration included:
``metrics["test"]["policy_value"]`` with its interval;
:mod:`fourloops.adaptation.policy_evaluation`). Once it answers a canary
share, its realised mean reward is measured on the requests it answered that
have a reward (label) so far. The two should agree: when the realised mean's
interval (normal, at the same confidence) and the estimate's interval do not
overlap, something is off. A **gap** points to a logging bug (propensities
that are not the probabilities used), a serving bug (the served policy is not
the one evaluated: features missing online, another exploration setting), or a
shift of the customers since the test rows; it is journaled
(``controller:counterfactual_gap``) and kept as a ``counterfactual_gap``
alert. Without an estimate, or with fewer than ``min_rewards`` rewarded
requests, there is no verdict (never a pass).

:func:`check_canary` measures one version; :func:`watch` is what a tick does
for every decision model with a rollout in a canary stage.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import norm

from fourloops.adaptation.loop import Loop
from fourloops.definitions import Model, Task

__all__ = ["MIN_REWARDS", "CounterfactualCheck", "check_canary", "watch"]

#: Rewarded canary requests needed before the realised mean is compared with the estimate.
MIN_REWARDS = 200
#: Alert kind of a gap.
GAP = "counterfactual_gap"


@dataclass(frozen=True)
class CounterfactualCheck:
    """One comparison: ``status`` is ``consistent``, ``gap``, ``too_few_rewards`` or ``no_estimate``."""

    model: str
    version: int
    status: str
    estimate: float | None
    estimate_low: float | None
    estimate_high: float | None
    realised: float | None
    realised_low: float | None
    realised_high: float | None
    rewards: int
    message: str

    @property
    def gap(self) -> bool:
        return self.status == "gap"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _estimate(loop: Loop, model: Model, version: int) -> tuple[float | None, float | None, float | None]:
    test = (loop.registry.get_version(model.name, version).metrics or {}).get("test") or {}
    return test.get("policy_value"), test.get("policy_value_low"), test.get("policy_value_high")


def check_canary(
    loop: Loop, model: Model, version: int, *, confidence: float = 0.95, min_rewards: int = MIN_REWARDS
) -> CounterfactualCheck:
    """Compare ``version``'s off-policy estimate with its realised mean reward as a canary."""
    value, low, high = _estimate(loop, model, version)
    rows = loop.query(
        "SELECT count(label_number) AS n, avg(label_number) AS mean, var_samp(label_number) AS var "
        f"FROM events WHERE route = 'canary' AND version = {int(version)} AND NOT coalesce(fallback, false)",
        model.name,
    ).to_pylist()
    n = int(rows[0]["n"] or 0) if rows else 0
    mean = rows[0]["mean"] if n else None
    if value is None or low is None or high is None:
        return CounterfactualCheck(
            model.name, version, "no_estimate", None, None, None, mean, None, None, n,
            f"v{version} has no conclusive off-policy estimate to compare its canary with",
        )  # fmt: skip
    if n < min_rewards or mean is None:
        return CounterfactualCheck(
            model.name, version, "too_few_rewards", value, low, high, mean, None, None, n,
            f"{n} rewarded canary requests of v{version} so far (need {min_rewards})",
        )  # fmt: skip
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(max(float(rows[0]["var"] or 0.0), 0.0) / n)
    r_low, r_high = mean - half, mean + half
    apart = r_high < low or r_low > high
    status = "gap" if apart else "consistent"
    message = (
        f"v{version} earns {mean:.4g} (interval {r_low:.4g} .. {r_high:.4g}, {n} rewards) as a canary; "
        f"off-policy evaluation estimated {value:.4g} ({low:.4g} .. {high:.4g})"
        + (
            ": the intervals do not overlap (a logging or serving bug, or a shift since the test rows)"
            if apart
            else ""
        )
    )
    return CounterfactualCheck(model.name, version, status, value, low, high, mean, r_low, r_high, n, message)


def watch(loop: Loop) -> list[CounterfactualCheck]:
    """Check every decision model's canary; journal each gap and keep it as an alert (once per episode)."""
    checks = []
    for name, model in loop.models.items():
        if model.task is not Task.POLICY:
            continue
        record = loop.rollouts.latest(name)
        if record is None or not record.open:
            continue
        stages = record.policy.get("stages") or []
        if record.stage_index >= len(stages) or stages[record.stage_index].get("kind") != "canary":
            continue
        check = check_canary(loop, model, record.version)
        checks.append(check)
        if not check.gap:
            continue
        alert = {
            "kind": GAP,
            "severity": "warning",
            "start": record.stage_started_at.isoformat(),
            "evidence": check.to_dict(),
            "cause": check.message,
            "action": "compare the canary's logged propensities with its policy; check its features online",
        }
        [new] = loop.alerts.record(name, record.version, "canary", [alert], at=loop.clock())
        if new:
            loop.journal(GAP, name, record.version, check.message, check.to_dict())
    return checks
