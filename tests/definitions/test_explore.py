"""fl.Explore and decision models (task="policy"): settings, validation, the distribution it defines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import fourloops as fl
from fourloops.errors import DefinitionError

REQUEST = fl.Contract({"tier": fl.Category(["std", "vip"]), "score": fl.Float()})


def _model(**kw: object) -> fl.Model:
    settings: dict[str, object] = {
        "task": "policy",
        "entities": fl.FileSource("rounds.parquet", timestamp="at"),
        "label": fl.Label("reward"),
        "trainer": LinearRegression(),
        "request": REQUEST,
        "actions": ["a", "b", "c"],
    }
    settings.update(kw)
    return fl.Model("offers", **settings)  # type: ignore[arg-type]


def test_a_policy_model_records_its_actions_and_exploration() -> None:
    model = _model(exploration=fl.Explore(rate=0.2, max_rate_by_segment={"tier=vip": 0.05}))
    spec = model.to_dict()
    assert spec["task"] == "policy" and spec["actions"] == ["a", "b", "c"]
    assert spec["exploration"] == {
        "kind": "epsilon_greedy", "rate": 0.2, "floor": 0.01, "top_k": 10,
        "max_rate_by_segment": {"tier=vip": 0.05},
    }  # fmt: skip
    assert model.primary_metric == "policy_value"
    assert _model().exploration == fl.Explore()  # the default: epsilon-greedy 0.1, floor 0.01


def test_other_models_keep_their_content_hash() -> None:
    model = fl.Model(
        "m", task="binary", entities=fl.FileSource("x.parquet", timestamp="at"), label=fl.Label("y"),
        trainer=LinearRegression(), request=REQUEST,
    )  # fmt: skip
    # The keys a model always had, and no new one: the content hash of existing models is unchanged.
    assert set(model.to_dict()) == {
        "name", "task", "entities", "label", "features", "request", "trainer", "objective", "gates",
        "segments", "split", "fallback",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"actions": None}, "needs actions="),
        ({"actions": ["a"]}, "at least two actions"),
        ({"actions": ["a", "a", "b"]}, r"actions \['a'\] are listed more than once"),
        ({"actions": ["a", ""]}, "must be a non-empty string"),
        ({"exploration": fl.Explore(floor=0.4)}, r"floor 0.4 x 3 actions is more than 1"),
        ({"exploration": fl.Explore(floor=0.05, max_rate_by_segment={"tier=vip": 0.05})}, "below the floor"),
        ({"exploration": fl.Explore(max_rate_by_segment={"zone=x": 0.5})}, "'zone' is not a request field"),
        ({"gates": [fl.gates.NoRegression()]}, "use fl.gates.OffPolicyLift"),
        ({"fallback": fl.Fallback(constant=0.5)}, "must be one of the actions"),
        ({"request": fl.Contract({"action": fl.String()})}, "not a request field"),
        ({"exploration": "greedy"}, "must be an fl.Explore"),
    ],
)
def test_policy_models_refuse_settings_that_cannot_hold(kw: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as err:
        _model(**kw)
    assert "\n" not in str(err.value)


def test_actions_and_the_lift_gate_are_for_policy_models_only() -> None:
    with pytest.raises(DefinitionError, match="are for task='policy'"):
        _model(task="regression")
    with pytest.raises(DefinitionError, match="OffPolicyLift is for task='policy'"):
        _model(task="regression", actions=None, gates=[fl.gates.OffPolicyLift()])


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"kind": "thompson"}, "kind must be one of"),
        ({"rate": 1.5}, r"rate must be in \[0, 1\]"),
        ({"rate": True}, "rate must be a number"),
        ({"temperature": 2.0}, "temperature= is for kind='softmax'"),
        ({"kind": "softmax", "temperature": -1}, "temperature must be a number > 0"),
        ({"floor": -0.1}, r"floor must be in \[0, 1\]"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"max_rate_by_segment": {"vip": 0.1}}, "must look like 'column=value'"),
        ({"max_rate_by_segment": {"tier=vip": 2}}, r"the cap of segment 'tier=vip' must be in \[0, 1\]"),
        ({"offpolicy": 1}, "unexpected keyword"),
    ],
)
def test_explore_refuses_bad_settings(kw: dict[str, object], message: str) -> None:
    with pytest.raises((DefinitionError, TypeError), match=message):
        fl.Explore(**kw)  # type: ignore[arg-type]


def _independent(
    kind: str, scores: list[float], rate: float, floor: float, temperature: float = 1.0
) -> list[float]:
    """The distribution written out from its definition, for a row in no capped segment."""
    k = len(scores)
    best = scores.index(max(scores))
    if kind == "epsilon_greedy":
        explore = [1 / k] * k
    else:
        weights = [math.exp(s / temperature) for s in scores]
        explore = [w / sum(weights) for w in weights]
    mixed = [(1 - rate) * (i == best) + rate * e for i, e in enumerate(explore)]
    return [floor + (1 - k * floor) * m for m in mixed]


@pytest.mark.parametrize("kind", ["epsilon_greedy", "softmax"])
def test_the_distribution_is_its_definition_and_the_batch_agrees(kind: str) -> None:
    rng = np.random.default_rng(0)
    extra = {"temperature": 0.3} if kind == "softmax" else {}
    explore = fl.Explore(kind=kind, rate=0.3, floor=0.02, max_rate_by_segment={"tier=vip": 0.1}, **extra)
    scores = rng.normal(size=(200, 5))
    rows = [{"tier": "vip" if i % 3 == 0 else "std"} for i in range(200)]
    matrix, rates = explore.matrix(scores, rows)
    for i, row in enumerate(rows):
        p, rate, greedy = explore.distribution(list(scores[i]), row)
        assert np.allclose(p, matrix[i], atol=1e-12) and rate == pytest.approx(rates[i])
        assert math.fsum(p) == pytest.approx(1.0, abs=1e-12) and min(p) >= 0.02 - 1e-15
        if row["tier"] == "vip":
            assert 1 - p[greedy] <= 0.1 + 1e-12  # the cap on not taking the best action
        else:
            assert p == pytest.approx(_independent(kind, list(scores[i]), 0.3, 0.02, 0.3), abs=1e-12)


def test_non_finite_scores_are_never_greedy() -> None:
    p, _, greedy = fl.Explore(rate=0.0, floor=0.0).distribution([float("nan"), 0.1, float("inf") * -1], {})
    assert greedy == 1 and p == [0.0, 1.0, 0.0]
