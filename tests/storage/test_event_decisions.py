"""The event store refuses a decision event whose action distribution breaks a rule (nothing of the group)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fourloops.errors import SchemaError
from fourloops.storage.events import LocalEventStore, PredictionEvent
from fourloops.storage.events.decisions import RULES, distribution_problem

AT = datetime(2024, 1, 1, tzinfo=UTC)


def _event(
    rid: str, action: str, propensity: float | None, distribution: object, rest: float = 0.0
) -> PredictionEvent:
    extra = {"policy": {"distribution": distribution, "rest": rest, "rate": 0.1}}
    return PredictionEvent(
        rid, None, AT, "offers", 1, "champion", {"x": 1}, action, propensity, 1.0, extra=extra
    )


def test_good_decisions_and_other_events_are_logged(tmp_path: Path) -> None:
    store = LocalEventStore(tmp_path)
    plain = PredictionEvent("p", None, AT, "late", 1, "champion", {}, 0.3, None)
    store.append(
        [_event("d", "b", 0.25, {"a": 0.75, "b": 0.25}), plain, _event("t", "a", 0.5, {"a": 0.5}, 0.5)]
    )
    assert store.count() == 3
    store.close()


@pytest.mark.parametrize(
    ("event", "rule"),
    [
        (_event("bad", "b", 0.25, {"a": 0.7, "b": 0.25}), "sums_to_one"),
        (_event("bad", "b", None, {"a": 1.0, "b": 0.0}), "chosen_action_positive"),
        (_event("bad", "c", 0.1, {"a": 0.9, "b": 0.1}), "chosen_action_positive"),
        (_event("bad", "b", 0.5, {"a": 0.75, "b": 0.25}), "propensity_matches"),
        (_event("bad", "b", 0.25, {"a": 1.2, "b": -0.2}), "probability_range"),
        (_event("bad", "b", 0.25, None), "probability_range"),
    ],
)
def test_a_broken_decision_refuses_the_whole_group(tmp_path: Path, event: PredictionEvent, rule: str) -> None:
    store = LocalEventStore(tmp_path)
    with pytest.raises(SchemaError, match=rf"1 of 2 rows .*event 'bad' of model 'offers': {rule}") as err:
        store.append([_event("ok", "a", 0.75, {"a": 0.75, "b": 0.25}), event])
    assert "\n" not in str(err.value) and rule in RULES
    assert store.count() == 0  # nothing of the group was logged
    store.close()


def test_rounded_logs_pass_within_the_tolerance() -> None:
    assert distribution_problem({"a": 0.3333, "b": 0.3333, "c": 0.3333}, 0.0, "a", 0.3333) is None
    assert distribution_problem({"a": 0.33, "b": 0.33, "c": 0.33}, None, "a", None) == (
        "sums_to_one",
        "the probabilities sum to 0.99, not 1",
    )
