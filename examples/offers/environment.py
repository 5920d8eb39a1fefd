"""The offers example's synthetic world: customers, four offers, and the true chance each one sells.

Every round a customer arrives (a context: ``segment``, ``tenure`` in months,
an engagement ``score`` in [0, 1]); a policy shows one of :data:`ACTIONS`;
the customer buys (reward 1) or not (0). The chance of a purchase is known in
closed form (:func:`expected_reward`), so the value of any policy on any
contexts is known exactly (:func:`policy_value`) and off-policy estimates and
exploration can be checked against the truth.

The shipped logs (``data/rounds.parquet``, written by
``scripts/generate_offers.py``) were collected by :func:`logging_policy`: an
epsilon-greedy version of a simple business rule ("a discount for new
customers, nothing for the others"), with its propensities.

Everything is a pure function of its arguments and a seed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

__all__ = [
    "ACTIONS",
    "SEGMENTS",
    "START",
    "expected_reward",
    "logging_policy",
    "policy_value",
    "reward_table",
    "sample_contexts",
    "simulate",
]

#: The offers, in the order the model declares them.
ACTIONS = ["none", "discount", "free_shipping", "bundle"]
#: Customer segments and how common each is.
SEGMENTS = ["new", "regular", "vip"]
SEGMENT_SHARES = [0.45, 0.40, 0.15]
#: When the shipped logs start; rounds arrive over 60 days.
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 60
#: The logging policy's rule and its exploration.
LOGGING_EPSILON = 0.6


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def expected_reward(
    segment: np.ndarray, tenure: np.ndarray, score: np.ndarray, action: np.ndarray
) -> np.ndarray:
    """P(purchase | context, action), elementwise (``action`` as names).

    A base rate rising with engagement; a discount helps new customers most and vip ones not at
    all; free shipping helps engaged customers; a bundle helps long-standing and vip customers.
    """
    segment, action = np.asarray(segment), np.asarray(action)
    tenure, score = np.asarray(tenure, dtype=float), np.asarray(score, dtype=float)
    new, vip = segment == "new", segment == "vip"
    base = -2.0 + 1.5 * score + 0.4 * vip
    effect = np.select(
        [action == "discount", action == "free_shipping", action == "bundle"],
        [
            np.where(new, 1.1, np.where(vip, -0.3, 0.35)),
            1.6 * score - 0.6,
            0.9 * np.minimum(tenure, 60.0) / 60.0 + 0.5 * vip - 0.35,
        ],
        default=0.0,
    )
    return _sigmoid(base + effect)


def reward_table(contexts: pl.DataFrame) -> np.ndarray:
    """The ``(n, 4)`` expected rewards of every action for each context (columns in :data:`ACTIONS` order)."""
    n = contexts.height
    columns = [
        expected_reward(
            contexts["segment"].to_numpy(), contexts["tenure"].to_numpy(), contexts["score"].to_numpy(),
            np.full(n, action),
        )
        for action in ACTIONS
    ]  # fmt: skip
    return np.column_stack(columns)


def policy_value(probabilities: np.ndarray, contexts: pl.DataFrame) -> float:
    """The exact value of a policy on ``contexts``: the mean over rows of sum_a pi(a | x) mu(x, a)."""
    return float((np.asarray(probabilities) * reward_table(contexts)).sum(axis=1).mean())


def sample_contexts(n: int, rng: np.random.Generator) -> pl.DataFrame:
    """``n`` customers: segment, tenure (whole months) and score."""
    segment = rng.choice(SEGMENTS, n, p=SEGMENT_SHARES)
    months = {"new": 2.0, "regular": 18.0, "vip": 40.0}
    tenure = np.minimum(rng.poisson([months[s] for s in segment]), 120).astype(np.int64)
    score = np.round(rng.beta(2.0, 2.5, n), 4)
    return pl.DataFrame({"segment": segment, "tenure": tenure, "score": score})


def logging_policy(contexts: pl.DataFrame, epsilon: float = LOGGING_EPSILON) -> np.ndarray:
    """The logger: a discount for new customers, nothing for the others, epsilon-greedy around it."""
    rule = np.where(contexts["segment"].to_numpy() == "new", 1, 0)
    k = len(ACTIONS)
    probabilities = np.full((contexts.height, k), epsilon / k)
    probabilities[np.arange(contexts.height), rule] += 1.0 - epsilon
    return probabilities


def draw(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action index per row, drawn from its probabilities."""
    u = rng.uniform(size=len(probabilities))
    return np.minimum((u[:, None] > probabilities.cumsum(axis=1)).sum(axis=1), probabilities.shape[1] - 1)


def simulate(n: int, seed: int, *, policy: np.ndarray | None = None, start: datetime = START) -> pl.DataFrame:
    """``n`` logged rounds: time, customer, context, the action drawn, its propensity and the reward.

    ``policy`` (``(n, 4)`` probabilities) defaults to :func:`logging_policy` of the contexts drawn.
    The reward is known an hour after the offer (``rewarded_at``).
    """
    rng = np.random.default_rng(seed)
    contexts = sample_contexts(n, rng)
    probabilities = logging_policy(contexts) if policy is None else np.asarray(policy)
    chosen = draw(probabilities, rng)
    actions = np.asarray(ACTIONS)[chosen]
    mu = expected_reward(contexts["segment"].to_numpy(), contexts["tenure"].to_numpy(),
                         contexts["score"].to_numpy(), actions)  # fmt: skip
    reward = (rng.uniform(size=n) < mu).astype(np.int64)
    seconds = np.sort(rng.uniform(0, DAYS * 86400, n))
    at = [start + timedelta(seconds=float(s)) for s in seconds]
    return pl.DataFrame(
        {
            "at": at,
            "customer_id": [f"c{i:05d}" for i in rng.permutation(n)],
            **contexts.to_dict(),
            "action": actions,
            "propensity": probabilities[np.arange(n), chosen],
            "reward": reward,
            "rewarded_at": [t + timedelta(hours=1) for t in at],
        },
        schema_overrides={"at": pl.Datetime("us", "UTC"), "rewarded_at": pl.Datetime("us", "UTC")},
    )
