"""The alert log keeps one row per episode, also when each monitor run sees only its last windows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fourloops.storage.alert_log import AlertLog
from fourloops.storage.metadata import MetadataStore

DAY = timedelta(days=1)


@pytest.fixture
def log(metadata_url: str) -> Iterator[AlertLog]:
    store = MetadataStore(metadata_url)
    try:
        yield AlertLog(store)
    finally:
        store.close()


T0 = datetime(2013, 9, 1, tzinfo=UTC)


def _alert(first: int, last: int, *, column: str = "temp", kind: str = "input_drift") -> dict[str, Any]:
    """An episode over days [first, last], as a run that saw those windows reports it."""
    return {
        "kind": kind,
        "severity": "warning",
        "column": column,
        "segment": None,
        "window": 0,
        "start": (T0 + first * DAY).isoformat(),
        "end": (T0 + (last + 1) * DAY).isoformat(),
        "windows": list(range(last - first + 1)),
        "evidence": {},
        "cause": "c",
        "action": "a",
    }


def test_a_rolling_monitor_continues_an_episode_instead_of_starting_one_every_day(log: AlertLog) -> None:
    # Day after day, a run over the last two windows sees the drift that began on day 0.
    assert log.record("m", 1, "champion", [_alert(0, 0)], at=T0 + DAY) == [True]
    for day in range(1, 6):
        assert log.record("m", 1, "champion", [_alert(day - 1, day)], at=T0 + (day + 1) * DAY) == [False]
    [row] = log.alerts("m")
    assert row["window_start"] == T0 and row["window_end"] == T0 + 6 * DAY and row["windows"] == 6
    assert row["first_seen_at"] == T0 + DAY and row["last_seen_at"] == T0 + 6 * DAY


def test_a_gap_or_another_column_is_a_new_episode(log: AlertLog) -> None:
    log.record("m", 1, "champion", [_alert(0, 1)], at=T0 + 2 * DAY)
    assert log.record("m", 1, "champion", [_alert(3, 3)], at=T0 + 4 * DAY) == [True]  # a day without
    assert log.record("m", 1, "champion", [_alert(3, 3, column="dewp")], at=T0 + 4 * DAY) == [True]
    assert log.record("m", 1, "champion", [_alert(3, 3, kind="data_quality")], at=T0 + 4 * DAY) == [True]
    assert len(log.alerts("m")) == 4
