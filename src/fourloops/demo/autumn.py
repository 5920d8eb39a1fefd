"""The demo's second part: the last months of the replay simulated through all four loops, incidents injected.

A fresh copy of the bundled example (with its own ``fl.Rollout`` and
``fl.Retrain``) is replayed by :mod:`fourloops.simulation` over the last
``days`` days of the demo's period, beside a control run with nothing
injected. One incident of each kind is spread over the period, at fixed
fractions of it so that a shorter demo keeps the same story:

* Delta's flights at JFK start running late (half of their on-time arrivals
  become late ones, the same inputs: a concept shift in JFK, to the end):
  the model ranks Delta among JFK's most punctual carriers, so JFK's
  performance drops once labels arrive; a retrained model can learn it (the
  change follows the carrier: late arrivals scattered at random over JFK
  could not be learnt) and win JFK back;
* Newark's temperature arrives empty for a week (a broken field): the rows
  quarantined, coverage and data-quality alerts, no retraining on it;
* LaGuardia's departures triple for two weeks (covariate shift): drift on
  ``origin``, and the model should be left alone;
* a release trained with Newark's labels mostly inverted (a bad release): its
  rollout aborted before it reaches everyone.

The incidents file is written beside the simulation's report, ready for
``fourloops simulate --incidents``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fourloops.project import Project
from fourloops.scaffold import init_project
from fourloops.simulation import Incident

__all__ = ["incidents_for", "simulate_autumn", "to_toml"]


def incidents_for(start: datetime, days: int) -> list[Incident]:
    """The demo's four incidents, placed at fixed fractions of a period of ``days`` days from ``start``."""

    def at(fraction: float) -> datetime:
        return start + timedelta(days=round(days * fraction))

    return [
        Incident(
            "Delta's flights at JFK start running late",
            "concept_shift",
            at(1 / 8),
            {"origin": "JFK"},
            to_positive=0.5,
            where={"carrier": "DL"},
        ),
        Incident(
            "Newark's temperature arrives empty",
            "broken_field",
            at(3 / 8),
            {"origin": "EWR"},
            end=at(3 / 8) + timedelta(days=max(1, round(days / 16))),
            view="weather",
            field="temp",
            mode="empty",
        ),
        Incident(
            "LaGuardia's departures triple",
            "covariate_shift",
            at(5 / 8),
            {"origin": "LGA"},
            end=at(3 / 4),
            factor=3,
        ),
        Incident("a release that fails Newark", "bad_release", at(13 / 16), {"origin": "EWR"}, flip=0.9),
    ]


def to_toml(incidents: list[Incident]) -> str:
    """``incidents`` as an incidents file (``fourloops simulate --incidents``)."""
    lines = []
    for incident in incidents:
        d = incident.to_dict()
        lines.append("[[incident]]")
        for key in ("name", "kind", "start", "end", "view", "field", "mode"):
            if d.get(key) is not None:
                lines.append(f'{key} = "{d[key]}"')
        for key in ("segment", "where"):
            if key in d:
                conditions = ", ".join(f'{k} = "{v}"' for k, v in d[key].items())
                lines.append(f"{key} = {{ {conditions} }}")
        if incident.kind == "covariate_shift":
            lines.append(f"factor = {int(incident.factor)}")
        if incident.kind == "bad_release":
            lines.append(f"flip = {incident.flip}")
        if incident.kind == "concept_shift":
            lines.append(f"to_positive = {incident.positive_rate}")
            lines.append(f"to_negative = {incident.negative_rate}")
        lines.append("")
    return "\n".join(lines)


def simulate_autumn(
    out: Path, end: datetime, days: int, seed: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """Simulate the ``days`` days before ``end`` with the demo's incidents; what the demo reports of it."""
    start = end - timedelta(days=days)
    source = out / "simulation-source"
    init_project(source, force=True)
    incidents = incidents_for(start, days)
    folder = out / "simulation"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "incidents.toml").write_text(to_toml(incidents), encoding="utf-8")
    say(f"simulating {start.date()} to {end.date()}: a control run and an incident run")
    with Project.load(source, env={}) as project:
        result = project.simulate(
            start=start, end=end, out=folder, window="1d", incidents=incidents, seed=seed, progress=say
        )
    summary = result.to_dict()
    return {
        "report": "simulation/report.html",
        "summary": "simulation/summary.json",
        "incidents_file": "simulation/incidents.toml",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "requests": summary["requests"],
        "control_requests": summary["control"]["requests"],
        "seconds": summary["seconds"],
        "metric": summary["outcomes"].get("metric"),
        "false_alarms": summary["false_alarms"],
        "false_alarm_kinds": sorted({a["kind"] for a in summary["control"]["raised"]}),
        "actions": [{k: a[k] for k in ("at", "kind", "version", "reason")} for a in summary["actions"]],
        "incidents": [
            {
                key: incident.get(key)
                for key in (
                    "name",
                    "kind",
                    "start",
                    "end",
                    "segment",
                    "detected_at",
                    "detection_delay_hours",
                    "detected_by",
                    "cost",
                    "responses",
                )
            }
            for incident in summary["incidents"]
        ],
    }
