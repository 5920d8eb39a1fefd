from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops import evaluation as ev
from fourloops.errors import DefinitionError

COSTS = st.floats(-5.0, 20.0, allow_nan=False)


def brute_total(y, score, cost, threshold):
    total = 0.0
    for label, s in zip(y, score, strict=True):
        act = s >= threshold
        if act and label:
            total += cost.tp
        elif act:
            total += cost.fp
        elif label:
            total += cost.fn
        else:
            total += cost.tn
    return total


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.2, 0.5, 0.5, 0.8, 1.0])),
        min_size=1,
        max_size=30,
    ),
    COSTS,
    COSTS,
    COSTS,
    COSTS,
)
def test_best_threshold_matches_brute_force(rows, fp, fn, tp, tn) -> None:
    y = [r[0] for r in rows]
    score = [r[1] for r in rows]
    cost = ev.Cost(fp=fp, fn=fn, tp=tp, tn=tn)
    candidates = sorted(set(score), reverse=True)
    never = float(np.nextafter(max(score), math.inf))
    totals = [(brute_total(y, score, cost, t), -t) for t in [never, *candidates]]
    best_total, neg_t = min(totals)
    choice = ev.best_threshold(y, score, cost)
    assert choice.cost == pytest.approx(best_total, abs=1e-9)
    assert choice.cost_per_row == pytest.approx(best_total / len(y), abs=1e-9)
    # the chosen threshold really costs that much; ties resolve to the highest threshold
    assert brute_total(y, score, cost, choice.threshold) == pytest.approx(choice.cost, abs=1e-9)
    scale = (abs(fp) + abs(fn) + abs(tp) + abs(tn)) * len(y)
    ties = [-nt for total, nt in totals if total <= best_total + 1e-12 * scale]
    assert choice.threshold == max(ties)
    for t in (0.0, 0.5, 0.9):
        assert ev.expected_cost(y, score, cost, threshold=t) == pytest.approx(
            brute_total(y, score, cost, t), abs=1e-9
        )


def test_never_acting_wins_when_false_positives_are_dear() -> None:
    choice = ev.best_threshold([0, 0, 1], [0.9, 0.8, 0.1], ev.Cost(fp=10.0, fn=1.0))
    assert choice.threshold > 0.9
    assert choice.cost == 1.0


def test_cost_validation_and_serialisation() -> None:
    cost = ev.Cost(fp=1, fn=2)
    assert cost.to_dict() == {"fp": 1.0, "fn": 2.0, "tp": 0.0, "tn": 0.0}
    assert ev.Cost(**cost.to_dict()) == cost
    with pytest.raises(DefinitionError):
        ev.Cost(fp=math.nan, fn=1.0)
    with pytest.raises(DefinitionError):
        ev.Cost(fp="1", fn=1.0)  # type: ignore[arg-type]


def test_empty_sample() -> None:
    choice = ev.best_threshold([], [], ev.Cost(fp=1.0, fn=1.0))
    assert choice.cost == 0.0 and choice.threshold == math.inf
    assert choice.to_dict()["cost_per_row"] == 0.0
