"""Drawing a decision model's action: reproducible per request id, at the policy's probabilities, logged."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chisquare

import fourloops as fl
from fourloops.errors import ModelUnavailable
from fourloops.inference.decisions import Decider, draw_position
from fourloops.storage.events.decisions import distribution_problem

ACTIONS = [f"offer_{i}" for i in range(14)]


def test_the_same_request_id_gets_the_same_action_and_others_spread() -> None:
    decider = Decider("offers", ["a", "b", "c"], fl.Explore(rate=0.5))
    first = [decider.decide([0.3, 0.1, 0.2], {}, f"r-{i}") for i in range(2000)]
    again = [decider.decide([0.3, 0.1, 0.2], {}, f"r-{i}") for i in range(2000)]
    assert [d.action for d in first] == [d.action for d in again]
    assert draw_position("offers", "r-1") != draw_position("other", "r-1")  # models draw independently
    counts = [sum(d.action == a for d in first) for a in "abc"]
    p = [first[0].distribution[a] for a in "abc"]  # the draws follow the probabilities
    assert chisquare(counts, [x * 2000 for x in p]).pvalue > 0.001


def test_logged_propensities_and_distribution_follow_the_policy_with_top_k() -> None:
    explore = fl.Explore(kind="softmax", temperature=0.5, rate=0.8, floor=0.01, top_k=3)
    decider = Decider("offers", ACTIONS, explore)
    rng = np.random.default_rng(1)
    for i in range(500):
        scores = list(rng.normal(size=len(ACTIONS)))
        d = decider.decide(scores, {}, f"q-{i}")
        p, rate, greedy = explore.distribution(scores, {})
        chosen = ACTIONS.index(d.action)
        assert d.propensity == p[chosen] and d.rate == rate and d.greedy == ACTIONS[greedy]
        assert d.expected_reward == scores[chosen]
        top = sorted(range(len(p)), key=lambda j: -p[j])[:3]
        listed = {ACTIONS[j] for j in top} | {d.action}
        assert set(d.distribution) == listed and len(d.distribution) in (3, 4)
        assert math.fsum(d.distribution.values()) + d.rest == pytest.approx(1.0, abs=1e-12)
        assert d.rest == pytest.approx(math.fsum(p[j] for j in range(len(p)) if ACTIONS[j] not in listed))
        assert min(p) >= 0.01
        assert distribution_problem(d.distribution, d.rest, d.action, d.propensity) is None
        extra = d.extra(7, 0.25)["policy"]
        assert (
            extra["version"] == 7
            and extra["route_propensity"] == 0.25
            and extra["explore"] == decider.explore_hash
        )


def test_the_segment_cap_holds_on_every_draw() -> None:
    explore = fl.Explore(rate=0.6, floor=0.02, max_rate_by_segment={"tier=vip": 0.1, "region=eu": 0.3})
    decider = Decider("offers", ["a", "b", "c", "d"], explore)
    rng = np.random.default_rng(2)
    for i in range(300):
        row = {"tier": rng.choice(["vip", "std"]), "region": rng.choice(["eu", "us"])}
        scores = list(rng.normal(size=4))
        d = decider.decide(scores, row, f"c-{i}")
        p, _, greedy = explore.distribution(scores, row)
        cap = min([0.1] * (row["tier"] == "vip") + [0.3] * (row["region"] == "eu") + [1.0])
        assert 1 - p[greedy] <= cap + 1e-12 and min(p) >= 0.02
        assert d.rate <= 0.6 and (cap == 1.0) == (d.rate == 0.6)


def test_bad_scores_and_foreign_fallback_answers_are_refused() -> None:
    decider = Decider("offers", ["a", "b"], fl.Explore())
    with pytest.raises(ModelUnavailable, match="not one number per action"):
        decider.decide([0.1], {}, "x")
    with pytest.raises(ModelUnavailable, match="not one of its actions"):
        decider.certain("z")
    certain = decider.certain("b")
    assert certain.propensity == 1.0 and certain.distribution == {"b": 1.0} and certain.rest == 0.0
