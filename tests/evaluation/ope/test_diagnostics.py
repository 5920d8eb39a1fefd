"""Diagnostics beside every estimate, and the inconclusive verdict when the logs cannot answer."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import fourloops as fl
from fourloops.evaluation.ope import Verdict
from fourloops.evaluation.ope.diagnostics import Diagnostics, judge

from .synthetic import policy_frame, simulate


def _uniform_logs(n: int, actions: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    action = rng.integers(0, actions, n)
    return pl.DataFrame(
        {
            "action": action,
            "reward": rng.binomial(1, 0.1 + 0.05 * action),
            "propensity": np.full(n, 1 / actions),
        }
    )


def test_the_logger_as_target_has_full_ess_and_ips_equal_to_the_logged_value() -> None:
    logs = _uniform_logs(2000, 4)
    result = fl.ope(logs, pl.DataFrame({"action": range(4), "probability": [0.25] * 4}), replicates=100)
    d = result.diagnostics
    assert d.ess == pytest.approx(2000) and d.max_weight_share == pytest.approx(1 / 2000)
    assert d.unsupported_mass == 0.0
    for name in ("ips", "snips"):
        assert result.estimates[name].value == pytest.approx(result.logged_value)
    # DM averages the per-action mean rewards under the target (DR equals it: every cell is logged)
    means = logs.group_by("action").agg(pl.col("reward").mean())["reward"].mean()
    assert result.estimates["dm"].value == pytest.approx(means)
    assert result.estimates["dr"].value == pytest.approx(means)
    assert result.verdict is Verdict.OK and result.reason is None


def test_a_target_far_from_the_logger_is_inconclusive_for_a_low_ess() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    action = rng.choice(3, n, p=[0.98, 0.0199, 0.0001])  # the logger almost never takes action 2
    logs = pl.DataFrame(
        {
            "action": action,
            "reward": rng.binomial(1, 0.2, n),
            "propensity": np.array([0.98, 0.0199, 0.0001])[action],
        }
    )
    policy = pl.DataFrame({"action": [0, 1, 2], "probability": [0.0, 0.0, 1.0]})
    result = fl.ope(logs, policy, replicates=100)
    d = result.to_dict()
    assert d["verdict"] == "inconclusive"
    assert d["diagnostics"]["ess"] < 100
    assert d["reason"].startswith(
        f"effective sample size {d['diagnostics']['ess']:.1f} is below the minimum 100"
    )
    assert "\n" not in d["reason"]
    json.dumps(d, allow_nan=False)  # no NaN even where SNIPS may have no weight to divide by


def test_every_weight_zero_gives_no_snips_and_zero_diagnostics() -> None:
    logs = pl.DataFrame({"action": ["a"] * 50, "reward": [1.0] * 50, "propensity": [1.0] * 50})
    policy = pl.DataFrame({"action": ["a", "b"], "probability": [0.0, 1.0]})
    result = fl.ope(logs, policy, replicates=50)
    d = result.to_dict()
    assert d["unreliable_estimates"]["snips"] == {"value": None, "low": None, "high": None}
    assert d["unreliable_estimates"]["ips"]["value"] == 0.0
    # Inconclusive is not a number: every estimate of the answer is null.
    assert all(e == {"value": None, "low": None, "high": None} for e in d["estimates"].values())
    assert d["diagnostics"] == {"ess": 0.0, "max_weight_share": 0.0, "unsupported_mass": 1.0}
    assert d["verdict"] == "inconclusive"
    json.dumps(d, allow_nan=False)


def test_mass_on_actions_never_logged_is_measured_and_bounded() -> None:
    logs = _uniform_logs(5000, 4)  # actions 0..3 only
    policy = pl.DataFrame({"action": range(5), "probability": [0.225, 0.225, 0.225, 0.225, 0.1]})
    result = fl.ope(logs, policy, replicates=50)
    assert result.diagnostics.unsupported_mass == pytest.approx(0.1)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.reason is not None and result.reason.startswith(
        "10.0% of the target policy's probability is on (action, position) pairs the logs never contain"
    )
    relaxed = fl.ope(logs, policy, replicates=50, max_unsupported=0.2)
    assert relaxed.verdict is Verdict.OK


def test_unsupported_mass_is_per_position() -> None:
    # action 1 is logged at position 0 only; the target puts half its mass on it at position 1
    logs = pl.DataFrame(
        {
            "action": [0, 1, 0, 1, 0, 0],
            "position": [0, 0, 0, 0, 1, 1],
            "reward": [1, 0, 1, 0, 1, 1],
            "propensity": [0.5] * 4 + [1.0] * 2,
        }
    )
    policy = pl.DataFrame({"action": [0, 1], "pos0": [0.5, 0.5], "pos1": [0.5, 0.5]})
    result = fl.ope(logs, policy, replicates=20, min_ess=0)
    assert result.diagnostics.unsupported_mass == pytest.approx(2 * 0.5 / 6)


def test_the_largest_weights_share() -> None:
    logs = pl.DataFrame({"action": [0, 0, 0, 1], "reward": [0, 0, 0, 1], "propensity": [0.9, 0.9, 0.9, 0.1]})
    policy = pl.DataFrame({"action": [0, 1], "probability": [0.5, 0.5]})
    d = fl.ope(logs, policy, replicates=20).diagnostics
    weights = np.array([0.5 / 0.9] * 3 + [5.0])
    assert d.max_weight_share == pytest.approx(5.0 / weights.sum())
    assert d.ess == pytest.approx(weights.sum() ** 2 / (weights**2).sum())


def test_the_verdict_names_the_ess_before_support() -> None:
    both = Diagnostics(ess=10.0, max_weight_share=0.5, unsupported_mass=0.5)
    verdict, reason = judge(both, min_ess=100, max_unsupported=0.05)
    assert (
        verdict is Verdict.INCONCLUSIVE and reason is not None and reason.startswith("effective sample size")
    )
    assert judge(both, min_ess=5, max_unsupported=0.6) == (Verdict.OK, None)


def test_results_are_deterministic_for_a_seed_and_differ_across_seeds() -> None:
    logs = simulate(1000, 3)
    one = fl.ope(logs, policy_frame(), replicates=100, seed=7, position_base=0).to_dict()
    two = fl.ope(logs, policy_frame(), replicates=100, seed=7, position_base=0).to_dict()
    three = fl.ope(logs, policy_frame(), replicates=100, seed=8, position_base=0).to_dict()
    assert one == two
    assert one["estimates"]["ips"]["value"] == three["estimates"]["ips"]["value"]
    assert one["estimates"]["ips"]["low"] != three["estimates"]["ips"]["low"]


def test_the_json_has_the_design_keys() -> None:
    d = fl.ope(simulate(500, 0), policy_frame(), replicates=50, position_base=0).to_dict()
    assert {"rounds", "logged_value", "estimates", "diagnostics", "verdict", "reason"} <= set(d)
    assert set(d["estimates"]) == {"dm", "ips", "snips", "dr"}
    assert all(set(e) == {"value", "low", "high"} for e in d["estimates"].values())
    assert set(d["diagnostics"]) == {"ess", "max_weight_share", "unsupported_mass"}
    assert d["rounds"] == 500 and isinstance(d["rounds"], int)
