"""What counts as catching an incident: alerts the control run also raised at about the same time do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fourloops.simulation.incidents import Incident
from fourloops.simulation.replay import RunResult
from fourloops.simulation.simulate import _detect

START = datetime(2013, 9, 16, tzinfo=UTC)
DAY = timedelta(days=1)


def _alert(kind: str, day: int, *, column: str | None = None, days: int = 1) -> dict[str, Any]:
    start = START + day * DAY
    return {
        "kind": kind, "column": column, "segment": None, "severity": "warning",
        "start": start.isoformat(), "end": (start + days * DAY).isoformat(),
        "raised_at": (start + days * DAY).isoformat(), "cause": f"{kind} {column}", "evidence": {},
    }  # fmt: skip


def _run(name: str, raised: list[dict[str, Any]]) -> RunResult:
    return RunResult(name, Path("."), raised=raised)


def test_an_alert_the_control_run_raised_a_window_apart_is_not_a_signal() -> None:
    incident = Incident("LaGuardia triples", "covariate_shift", START, segment={"origin": "LGA"}, factor=3)
    seasonal = _alert("estimated_performance", 1)  # the history has it too, a day later
    drift = _alert("input_drift", 2, column="origin")
    control = _run("control", [_alert("estimated_performance", 2), _alert("input_drift", 2, column="temp")])
    found = _detect(incident, _run("run", [seasonal, drift]), control, DAY)
    assert found["detected_at"] == drift["raised_at"]
    assert [s for s in found["signals"] if "estimated_performance" in s] == []
    assert found["detection_delay_hours"] == 72.0


def test_the_same_alert_far_from_the_control_runs_is_a_signal() -> None:
    incident = Incident("LaGuardia triples", "covariate_shift", START, segment={"origin": "LGA"}, factor=3)
    early = _alert("estimated_performance", 1)
    control = _run("control", [_alert("estimated_performance", 9)])  # a week later: another episode
    found = _detect(incident, _run("run", [early]), control, DAY)
    assert found["detected_at"] == early["raised_at"]


def test_without_a_control_run_every_relevant_alert_is_a_signal() -> None:
    incident = Incident("LaGuardia triples", "covariate_shift", START, segment={"origin": "LGA"}, factor=3)
    found = _detect(incident, _run("run", [_alert("input_drift", 0, column="origin")]), None, DAY)
    assert found["detection_delay_hours"] == 24.0


def test_a_concept_shift_is_caught_in_its_segment_or_in_the_one_its_where_names_not_elsewhere() -> None:
    incident = Incident(
        "Delta late at JFK", "concept_shift", START, segment={"origin": "JFK"}, to_positive=0.5,
        where={"carrier": "DL"},
    )  # fmt: skip

    def performance(day: int, segment: str) -> dict[str, Any]:
        return {**_alert("performance", day), "segment": segment}

    elsewhere, carrier, airport = (
        performance(1, "origin=LGA"),
        performance(2, "carrier=DL"),
        performance(3, "origin=JFK"),
    )
    found = _detect(incident, _run("run", [elsewhere, carrier, airport]), None, DAY)
    assert found["detected_at"] == carrier["raised_at"]
    assert [s.split(": ")[0] for s in found["signals"]] == [
        "alert performance (carrier=DL)",
        "alert performance (origin=JFK)",
    ]
