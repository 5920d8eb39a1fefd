"""Judging a decision model on its test rows: off-policy estimates of its policy, beside the logger's.

A decision model (``task="policy"``) is trained on logged rounds (context,
action, propensity, reward). Its test rows are rounds it never saw; on them:

* the **reward model** is scored like a regression (its predicted reward of
  the logged action against the reward: ``reward_rmse``, ``reward_mae``);
* its **served policy** (the greedy choice spread by the model's
  :class:`~fourloops.definitions.Explore`: rate, segment caps, floor, exactly
  as the server computes it) and its **greedy policy** are evaluated
  off-policy from the logged propensities, with the project's estimators
  (:mod:`fourloops.evaluation.ope`: DM, IPS, SNIPS, DR with bootstrap
  intervals, diagnostics and a verdict), one round per test row;
* the **champion**'s served policy is evaluated on the same rounds, and the
  **logging policy**'s value is the mean logged reward.

``policy_value`` (the primary metric) is the served policy's estimate by the
first :class:`~fourloops.definitions.gates.OffPolicyLift` gate's estimator
(DR by default); :class:`PolicyEvidence` carries every number the gate reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from fourloops.adaptation.gates import GateContext
from fourloops.definitions import Category, FeatureView, Field, Model, Task
from fourloops.definitions.explore import ACTION_COLUMN, PROPENSITY_COLUMN, Explore
from fourloops.evaluation import evaluate
from fourloops.evaluation.ope import OPEResult, align, read_logs, read_policy
from fourloops.evaluation.ope import evaluate as evaluate_ope
from fourloops.ingestion.features import model_inputs

__all__ = [
    "PolicyEvidence",
    "estimate_policy",
    "evaluate_policy",
    "evaluate_policy_run",
    "greedy_matrix",
    "policy_matrix",
    "reward_model_inputs",
]

#: Bootstrap replicates of the off-policy intervals at training.
REPLICATES = 500
_ROUND = "round_id"


@dataclass(frozen=True)
class PolicyEvidence:
    """What a decision model's gates are judged on: off-policy results on the test rows.

    ``served`` and ``greedy`` are the candidate's policies, ``champion`` the champion's served
    policy on the same rounds (None without a champion that scores them); ``logged_value`` is
    the logging policy's value (the mean logged reward) and ``estimator`` the one that
    ``policy_value`` reports.
    """

    served: OPEResult
    greedy: OPEResult
    champion: OPEResult | None
    champion_version: int | None
    logged_value: float
    estimator: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: each policy's :meth:`OPEResult.to_dict`, and the logging policy's value."""
        return {
            "estimator": self.estimator,
            "confidence": self.confidence,
            "logged_value": self.logged_value,
            "served": self.served.to_dict(),
            "greedy": self.greedy.to_dict(),
            "champion": None if self.champion is None else self.champion.to_dict(),
            "champion_version": self.champion_version,
        }


def greedy_matrix(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """The greedy policy of ``(n, K)`` scores: probability one on the best (the first of equals)."""
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    out = np.zeros_like(scores, dtype=np.float64)
    out[np.arange(len(scores)), np.argmax(finite, axis=1)] = 1.0
    return out


def policy_matrix(explore: Explore, scores: NDArray[np.float64], rows: pl.DataFrame) -> NDArray[np.float64]:
    """The served policy's probabilities for ``(n, K)`` scores and the rows' segment columns."""
    columns = sorted({key.partition("=")[0] for key in explore.max_rate_by_segment})
    present = [c for c in columns if c in rows.columns]
    records = rows.select(present).to_dicts() if present else None
    probabilities, _ = explore.matrix(scores, records)
    return probabilities


def estimate_policy(
    logs: pl.DataFrame,
    probabilities: NDArray[np.float64],
    actions: Sequence[str],
    *,
    replicates: int = REPLICATES,
    confidence: float = 0.95,
    seed: int = 0,
) -> OPEResult:
    """The off-policy value of a per-round policy on logged rounds, with the project's estimators.

    ``logs`` has one row per round: ``action``, ``reward`` and ``propensity`` (the logging
    policy's probability of the logged action); ``probabilities`` is the evaluated policy's
    ``(rounds, K)`` distribution over ``actions`` in each round.
    """
    n = logs.height
    logged = read_logs(
        logs.with_columns(pl.Series(_ROUND, np.arange(n)).cast(pl.String)),
        action=ACTION_COLUMN,
        reward="reward",
        propensity=PROPENSITY_COLUMN,
        round_id=_ROUND,
        what="the test rows",
    )
    k = len(actions)
    policy = pl.DataFrame(
        {
            _ROUND: np.repeat(np.arange(n), k).astype(str),
            "action": np.tile(np.asarray(actions, dtype=object), n),
            "position": np.zeros(n * k, dtype=np.int64),
            "probability": probabilities.reshape(-1),
        }
    )
    rounds = align(logged, read_policy(policy, round_id=_ROUND), what="the evaluated policy")
    return evaluate_ope(rounds, replicates=replicates, confidence=confidence, seed=seed)


def _logs(test: pl.DataFrame, y: NDArray[Any]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            ACTION_COLUMN: test[ACTION_COLUMN].cast(pl.String),
            "reward": np.asarray(y, dtype=np.float64),
            PROPENSITY_COLUMN: test[PROPENSITY_COLUMN].cast(pl.Float64),
        }
    )


def _value(result: OPEResult | None, estimator: str) -> float | None:
    if result is None or result.verdict.value != "ok":
        return None
    return result.estimates[estimator].value


def evaluate_policy(
    model: Model,
    *,
    test: pl.DataFrame,
    X_test: Any,
    y_test: NDArray[Any],
    candidate: Any,
    champion: Any | None,
    champion_version: int | None,
    seed: int,
) -> tuple[dict[str, Any], PolicyEvidence]:
    """The test metrics of a decision model (``candidate``: a policy predictor) and the gates' evidence."""
    assert model.exploration is not None and model.actions is not None
    gate = next((g for g in model.gates if g.kind == "off_policy_lift"), None)
    estimator = str(getattr(gate, "estimator", "dr"))
    confidence = float(getattr(gate, "confidence", 0.95))
    logs = _logs(test, y_test)
    scores = np.asarray(candidate.predict(X_test), dtype=np.float64)
    served_p = policy_matrix(model.exploration, scores, test)

    def judge(probabilities: NDArray[np.float64]) -> OPEResult:
        return estimate_policy(logs, probabilities, model.actions or [], confidence=confidence, seed=seed)

    served, greedy = judge(served_p), judge(greedy_matrix(scores))
    champ = None
    if champion is not None and list(getattr(champion, "actions", [])) == model.actions:
        champ = judge(policy_matrix(model.exploration, np.asarray(champion.predict(X_test)), test))
    logged_value = float(np.mean(logs["reward"].to_numpy())) if logs.height else 0.0
    predicted = candidate.rewards(X_test, logs[ACTION_COLUMN].to_list())
    reward_fit = evaluate("regression", np.asarray(y_test, dtype=np.float64), predicted)
    evidence = PolicyEvidence(
        served,
        greedy,
        champ,
        champion_version if champ is not None else None,
        logged_value,
        estimator,
        confidence,
    )
    served_estimate = served.estimates[estimator]
    metrics = {
        "policy_value": _value(served, estimator),
        "policy_value_low": served_estimate.low if served.verdict.value == "ok" else None,
        "policy_value_high": served_estimate.high if served.verdict.value == "ok" else None,
        "greedy_value": _value(greedy, estimator),
        "logged_value": logged_value,
        "reward_rmse": reward_fit.get("rmse"),
        "reward_mae": reward_fit.get("mae"),
        "rounds": logs.height,
        "mean_exploration": float(1.0 - served_p[np.arange(len(scores)), np.argmax(scores, axis=1)].mean())
        if len(scores)
        else None,
    }
    return metrics, evidence


def reward_model_inputs(model: Model, views: dict[str, FeatureView]) -> dict[str, Field]:
    """The inputs a model is trained on: its inputs, and for a decision model the action (a category)."""
    inputs = model_inputs(model, views)
    if model.task is Task.POLICY and model.actions is not None:
        inputs[ACTION_COLUMN] = Category(model.actions)
    return inputs


def evaluate_policy_run(
    model: Model,
    data: Any,
    predictor: Any,
    champion: Any | None,
    champion_version: int | None,
    *,
    seed: int,
) -> tuple[dict[str, Any], GateContext]:
    """A training run's evaluation of a decision model (``data``: its ``TrainingData``).

    Returns the run's metrics (``test``, ``baseline``: the logging policy, ``champion``, and
    ``policy``: every off-policy result) and the gates' context.
    """
    metrics, evidence = evaluate_policy(
        model,
        test=data.split.test,
        X_test=data.X_test,
        y_test=data.y_test,
        candidate=predictor,
        champion=champion,
        champion_version=champion_version,
        seed=seed,
    )
    baseline = {"policy_value": evidence.logged_value}
    champ = (
        None if evidence.champion is None else {"policy_value": _value(evidence.champion, evidence.estimator)}
    )
    ctx = GateContext(
        task=model.task.value,
        primary=model.primary_metric,
        metrics=metrics,
        baseline=baseline,
        champion=champ,
        champion_version=evidence.champion_version,
        policy=evidence,
    )
    evaluated = {
        "test": metrics,
        "baseline": baseline,
        "champion": champ,
        "champion_version": evidence.champion_version,
        "policy": evidence.to_dict(),
    }
    return evaluated, ctx
