"""On a synthetic bandit with a known policy value, the 95 % intervals cover it at their nominal rate."""

from __future__ import annotations

import numpy as np
import pytest

import fourloops as fl

from .synthetic import LOGGER, TARGET, TRUE_VALUE, policy_frame, simulate

SIMULATIONS = 400
ROUNDS = 4000
#: Fewer than the default 1,000 replicates, to keep 400 simulations fast; the 2.5 % tails stay stable.
REPLICATES = 200


def test_the_truth_is_what_the_target_would_earn() -> None:
    assert TRUE_VALUE == pytest.approx(0.22)
    assert np.allclose(LOGGER.sum(axis=0), 1) and np.allclose(TARGET.sum(axis=0), 1)
    logged = simulate(200_000, seed=12345)
    assert logged["reward"].mean() == pytest.approx(0.17, abs=0.003)  # the logger's own value, 0.17


@pytest.mark.slow
def test_intervals_cover_the_true_value_at_their_nominal_rate() -> None:
    """400 seeded simulations of 4,000 rounds, 200 bootstrap replicates each.

    Measured: DM 0.9475, IPS 0.935, SNIPS 0.9425, DR 0.9475 (a percentile bootstrap runs a little
    short of nominal at small n: about 0.93 at 1,000 rounds).
    """
    policy = policy_frame()
    covered = {name: 0 for name in ("dm", "ips", "snips", "dr")}
    for seed in range(SIMULATIONS):
        result = fl.ope(simulate(ROUNDS, seed), policy, replicates=REPLICATES, seed=seed, position_base=0)
        assert result.verdict.value == "ok"
        for name, e in result.estimates.items():
            assert e.low is not None and e.high is not None
            covered[name] += e.low <= TRUE_VALUE <= e.high
    rates = {name: hits / SIMULATIONS for name, hits in covered.items()}
    for name in ("ips", "snips", "dr", "dm"):
        assert 0.92 <= rates[name] <= 0.98, rates
