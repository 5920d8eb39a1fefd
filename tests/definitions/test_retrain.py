"""``fl.Retrain``: triggers and limits, what a retraining trains on, a one-line error for each mistake."""

from __future__ import annotations

from datetime import timedelta

import pytest

import fourloops as fl
from fourloops.errors import DefinitionError


def test_a_retrain_keeps_its_triggers_limits_window_and_split() -> None:
    r = fl.Retrain(
        every="30d", on_alerts=["performance"], cooldown="7d", max_per_week=1, window="90d",
        split=fl.TimeSplit(validation="7d", test="7d"),
    )  # fmt: skip
    assert (r.every, r.cooldown, r.window) == (timedelta(days=30), timedelta(days=7), timedelta(days=90))
    assert r.to_dict() == {
        "every": "30d", "new_labels": None, "on_alerts": ["performance"], "cooldown": "1w", "max_per_week": 1,
        "rollout": True, "window": "90d", "split": {"validation": "7d", "test": "7d"},
    }  # fmt: skip
    plain = fl.Retrain(every="30d")
    assert plain.window is None and plain.split is None  # every row, the model's own split
    assert plain.to_dict()["window"] is None and plain.to_dict()["split"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Retrain needs a trigger"),
        ({"every": "1d", "on_alerts": ["weather"]}, "unknown kind 'weather'"),
        ({"every": "1d", "max_per_week": 0}, "max_per_week must be an integer >= 1"),
        ({"every": "1d", "new_labels": -5}, "new_labels must be a positive integer"),
        ({"every": "1d", "window": "soon"}, "Retrain window"),
        ({"every": "1d", "split": {"validation": "7d", "test": "7d"}}, "split must be an fl.TimeSplit"),
    ],
)
def test_a_mistake_in_a_retrain_is_one_line_naming_it(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        fl.Retrain(**kwargs)  # type: ignore[arg-type]
