"""``fl.ope``: off-policy evaluation of a target policy on logged bandit data.

Reads the logs and the policy (:mod:`~fourloops.evaluation.ope.logs`,
:mod:`~fourloops.evaluation.ope.policy`), aligns them
(:mod:`~fourloops.evaluation.ope.align`), and returns the four estimates
(:mod:`~fourloops.evaluation.ope.estimators`) with bootstrap intervals
(:mod:`~fourloops.evaluation.ope.bootstrap`), the diagnostics and a verdict
(:mod:`~fourloops.evaluation.ope.diagnostics`).

>>> import numpy as np, polars as pl
>>> import fourloops as fl
>>> rng = np.random.default_rng(0)
>>> n = 5000
>>> logged = rng.choice(["a", "b"], n, p=[0.8, 0.2])            # the logger prefers "a"
>>> reward = rng.binomial(1, np.where(logged == "a", 0.1, 0.3))  # "b" is better
>>> logs = pl.DataFrame({"action": logged, "reward": reward, "propensity": np.where(logged == "a", 0.8, 0.2)})
>>> policy = pl.DataFrame({"action": ["a", "b"], "probability": [0.2, 0.8]})  # true value 0.26
>>> result = fl.ope(logs, policy, replicates=200)
>>> result.verdict.value, round(result.logged_value, 3), round(result.estimates["snips"].value, 3)
('ok', 0.138, 0.252)
>>> e = result.estimates["dr"]
>>> bool(e.low < 0.26 < e.high), round(result.diagnostics.ess)
(True, 1560)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fourloops.evaluation.ope.align import Rounds, align
from fourloops.evaluation.ope.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_REPLICATES, intervals
from fourloops.evaluation.ope.diagnostics import DEFAULT_MAX_UNSUPPORTED, DEFAULT_MIN_ESS, diagnose, judge
from fourloops.evaluation.ope.estimators import ESTIMATORS, Sums, estimate
from fourloops.evaluation.ope.logs import read_logs
from fourloops.evaluation.ope.policy import read_policy
from fourloops.evaluation.ope.result import Estimate, OPEResult

__all__ = ["evaluate", "ope"]


def evaluate(
    rounds: Rounds,
    *,
    replicates: int = DEFAULT_REPLICATES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    min_ess: float = DEFAULT_MIN_ESS,
    max_unsupported: float = DEFAULT_MAX_UNSUPPORTED,
    settings: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> OPEResult:
    """The estimates, intervals, diagnostics and verdict of aligned ``rounds`` (both doors end here)."""
    sums = Sums.of(rounds)
    points = estimate(sums)
    bounds = intervals(rounds, replicates=replicates, confidence=confidence, seed=seed)
    estimates = {}
    for name in ESTIMATORS:
        value = float(points[name][0])
        interval = bounds[name]
        if not np.isfinite(value) or interval is None:
            estimates[name] = Estimate(value if np.isfinite(value) else None, None, None)
        else:
            estimates[name] = Estimate(value, interval[0], interval[1])
    diagnostics = diagnose(rounds.weight, sums)
    verdict, reason = judge(diagnostics, min_ess=min_ess, max_unsupported=max_unsupported)
    used = {
        "replicates": replicates,
        "confidence": confidence,
        "seed": seed,
        "min_ess": min_ess,
        "max_unsupported": max_unsupported,
        "bootstrap_units": rounds.units,
        "actions": len(rounds.actions),
        "positions": list(rounds.positions),
        "policy_form": "per_action" if rounds.table is not None else "per_round",
        **(settings or {}),
    }
    return OPEResult(
        rounds=rounds.rounds,
        logged_value=float(rounds.reward.mean()),
        estimates=estimates,
        diagnostics=diagnostics,
        verdict=verdict,
        reason=reason,
        settings=used,
        notes=[*notes, *rounds.notes],
    )


def ope(
    logs: Any,
    policy: Any,
    *,
    action: str = "action",
    position: str | None = None,
    reward: str = "reward",
    propensity: str = "propensity",
    round_id: str | None = None,
    distribution: str | None = None,
    policy_action: str | None = None,
    position_base: int | None = None,
    replicates: int = DEFAULT_REPLICATES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    min_ess: float = DEFAULT_MIN_ESS,
    max_unsupported: float = DEFAULT_MAX_UNSUPPORTED,
) -> OPEResult:
    """Estimate the value of ``policy`` from ``logs`` collected by another (logging) policy.

    Parameters
    ----------
    logs:
        One row per round: a Polars or pandas frame, an Arrow table, or a CSV/Parquet path.
    policy:
        The target policy, one row per action with a probability column per position
        (``item_id,pos0,pos1,pos2``), or one row per round, action and position
        (``round_id,action,position,probability``); a frame, table or path.
    action, position, reward, propensity:
        The logs' columns: the logged action, its position (default ``position`` if present,
        else one position), the reward, and the logging policy's probability of the logged
        action at its position.
    round_id:
        The logs' round id column (default ``round_id`` if present); a per-round policy is looked up
        by it (without it, round ids are row numbers from 0), and rows sharing one are resampled together.
    distribution:
        The logging policy's action distribution per round, when the logs carry it (default
        ``distribution`` if present; JSON text or a struct, unlisted mass in ``<column>_rest``):
        rows whose distribution does not sum to one, gives the chosen action no probability, or
        disagrees with its propensity are refused, named and counted in one line.
    policy_action:
        The action column of a per-action policy file (default ``item_id``, ``action``, ``route`` or
        its first column).
    position_base:
        0 or 1: how log positions number the policy's columns (default: 0 if any logged position is
        0, else 1; see :mod:`fourloops.evaluation.ope.align`).
    replicates, confidence, seed:
        The percentile bootstrap (1,000 replicates, 95 %, seeded).
    min_ess, max_unsupported:
        Below this effective sample size, or above this unsupported mass, the verdict is
        ``inconclusive``.

    Returns
    -------
    OPEResult
        ``.to_dict()`` is the JSON of ``fourloops ope --json``.
    """
    logged = read_logs(
        logs,
        action=action,
        position=position,
        reward=reward,
        propensity=propensity,
        round_id=round_id,
        distribution=distribution,
    )
    target = read_policy(policy, action=policy_action)
    rounds = align(logged, target, position_base=position_base)
    settings = {"columns": logged.columns}
    return evaluate(
        rounds,
        replicates=replicates,
        confidence=confidence,
        seed=seed,
        min_ess=min_ess,
        max_unsupported=max_unsupported,
        settings=settings,
    )
