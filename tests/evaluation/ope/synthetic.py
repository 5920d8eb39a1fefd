"""A synthetic slate bandit whose target policy's value is known exactly, for the OPE tests."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["LOGGER", "MEANS", "POSITIONS", "TARGET", "TRUE_VALUE", "policy_frame", "simulate"]

#: P(position): rounds land on position 0 or 1.
POSITIONS = np.array([0.6, 0.4])
#: The logging policy per position (rows: actions, columns: positions).
LOGGER = np.array([[0.4, 0.25], [0.3, 0.25], [0.2, 0.25], [0.1, 0.25]])
#: The target policy per position.
TARGET = np.array([[0.1, 0.4], [0.2, 0.3], [0.3, 0.2], [0.4, 0.1]])
#: Click probability of each action at each position.
MEANS = np.array([[0.10, 0.05], [0.20, 0.10], [0.30, 0.15], [0.40, 0.20]])
#: The target policy's value: Σ_k P(k) Σ_a π(a | k) μ(a, k).
TRUE_VALUE = float((POSITIONS * (TARGET * MEANS).sum(axis=0)).sum())


def simulate(n: int, seed: int) -> pl.DataFrame:
    """``n`` logged rounds: position, action drawn by the logger, Bernoulli reward, propensity."""
    rng = np.random.default_rng(seed)
    position = rng.choice(2, n, p=POSITIONS)
    u = rng.uniform(size=n)
    cumulative = LOGGER.cumsum(axis=0)[:, position]  # (actions, n)
    action = (u[None, :] > cumulative).sum(axis=0)
    reward = rng.uniform(size=n) < MEANS[action, position]
    return pl.DataFrame(
        {
            "action": action,
            "position": position,
            "reward": reward.astype(np.int64),
            "propensity": LOGGER[action, position],
        }
    )


def policy_frame() -> pl.DataFrame:
    """The target policy as a per-action file: ``action,pos0,pos1``."""
    return pl.DataFrame({"action": np.arange(4), "pos0": TARGET[:, 0], "pos1": TARGET[:, 1]})
