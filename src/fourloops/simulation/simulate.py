"""``fourloops simulate``: a control run and an incident run; what was caught, when, and what was done.

With incidents, two runs replay the same history with the same seed, in the
same order (:func:`fourloops.simulation.replay.run_once`): the **control**
run as it was, and the **incident** run with the incidents injected. For each
incident the summary records when it began, when fourloops first detected it
(the first alert of a kind that catches it, or a controller action that
answers it, that the control run lacks, at or after its start) and every
response. Alerts of the control run are false alarms, counted and shown.

The summary (``DIR/summary.json``, ``--json``) has the keys of ``monitor``
(``windows``, ``alerts``) plus ``actions`` and ``incidents`` (see the
project's architecture document), and ``control`` with the control run's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fourloops import errors
from fourloops.errors import FourloopsError
from fourloops.simulation.incidents import DETECTED_BY, Incident
from fourloops.simulation.outcomes import segment_key
from fourloops.simulation.replay import RunResult, SimulationSettings, run_once

__all__ = ["SimulationResult", "simulate"]


def _what(alert: dict[str, Any]) -> tuple[Any, ...]:
    return (alert["kind"], alert.get("column"), alert.get("segment"))


def _span(alert: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The alert's episode (its first window's start to its last window's end), if it has times."""
    start, end = alert.get("start"), alert.get("end")
    if not start or not end:
        return None
    return datetime.fromisoformat(str(start)), datetime.fromisoformat(str(end))


def _in_control(alert: dict[str, Any], control: Sequence[dict[str, Any]], width: timedelta) -> bool:
    """Whether the control run raised the same alert (kind, column, segment) at about the same time.

    "About": the two episodes overlap, or are at most one window apart. A condition the history
    has without the incident (a season the reference never saw) may begin a window earlier or
    later once the incident's rows change the windows a little; that is not evidence of the
    incident. Alerts without times (windows by row count) must match their episode exactly.
    """
    mine = _span(alert)
    for other in control:
        if _what(other) != _what(alert):
            continue
        theirs = _span(other)
        if mine is None or theirs is None:
            if other.get("start") == alert.get("start"):
                return True
            continue
        if theirs[0] <= mine[1] + width and mine[0] <= theirs[1] + width:
            return True
    return False


@dataclass
class SimulationResult:
    """Both runs and what the incidents did (see the module docstring)."""

    settings: dict[str, Any]
    run: RunResult
    control: RunResult | None = None
    incidents: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        monitor = self.run.monitor
        out: dict[str, Any] = {
            "settings": self.settings,
            "reference": monitor.get("reference"),
            "windows": monitor.get("windows", []),
            "alerts": monitor.get("alerts", []),
            "raised": self.run.raised,
            "actions": self.run.actions,
            "traffic": self.run.traffic,
            "requests": self.run.requests,
            "rejected": self.run.rejected,
            "labels": self.run.labels,
            "outcomes": self.run.outcomes,
            "notes": self.run.notes + monitor.get("notes", []),
            "seconds": round(self.seconds, 2),
            "timings": _timings(self.run),
        }
        if self.incidents:
            out["incidents"] = self.incidents
        if self.control is not None:
            control = self.control
            out["control"] = {
                "windows": control.monitor.get("windows", []),
                "alerts": control.monitor.get("alerts", []),
                "raised": control.raised,
                "actions": control.actions,
                "traffic": control.traffic,
                "requests": control.requests,
                "outcomes": control.outcomes,
                "timings": {
                    k: round(v, 2) for k, v in sorted(control.seconds.items(), key=lambda kv: -kv[1])
                },
            }
            out["false_alarms"] = len(control.raised)
        return out


def _released(incident: Incident, run: RunResult) -> int | None:
    """The version a bad-release incident handed to the controller."""
    for action in run.actions:
        if action["kind"] == "release" and action["evidence"].get("incident") == incident.name:
            return int(action["version"])
    return None


def _relevance(incident: Incident, signal: dict[str, Any], released: int | None) -> int:
    """How specifically an alert or action answers ``incident``: 0 not at all, 1 in general, 2 precisely.

    A covariate shift is caught by drift (precisely: on a column of its segment); a concept
    shift by a performance alert overall or in its own segment, or in one its ``where`` names
    (both hold the rows that changed: precisely); a broken field by a
    quarantine of its view, a quality or drift alert on its field or a coverage alert on its view;
    a bad release by an abort, a rollback or a failing check's pause of the released version.
    """
    kind = signal["kind"]
    if kind not in DETECTED_BY[incident.kind]:
        return 0
    own_segments = {f"{c}={v}" for c, v in {**incident.segment, **incident.where}.items()}
    segment = signal.get("segment")
    if incident.kind == "covariate_shift":
        return 2 if signal.get("column") in incident.segment else 1
    if incident.kind == "concept_shift":
        if segment is None:
            return 1
        return 2 if segment in own_segments else 0
    if incident.kind == "broken_field":
        if kind == "quarantine":
            return 2 if signal["evidence"].get("view") == incident.view else 0
        if kind == "coverage":
            return 2 if signal.get("column") == incident.view else 0
        return 2 if signal.get("column") == incident.field else 0
    # bad_release: only what the controller did to the released version counts.
    if released is None or signal.get("version") != released:
        return 0
    if kind == "pause" and str(signal.get("reason", "")).startswith("undecided"):
        return 0
    return 2


def _describe(signal: dict[str, Any]) -> str:
    if "cause" in signal:  # an alert
        return (
            f"alert {signal['kind']}"
            + (f" on {signal['column']}" if signal["column"] else "")
            + (f" ({signal['segment']})" if signal.get("segment") else "")
            + f": {signal['cause']}"
        )
    version = f" v{signal['version']}" if signal.get("version") is not None else ""
    return f"{signal['kind']}{version}: {signal['reason']}"


#: Actions of the adaptation loop that answer an incident once it is detected.
_ADAPTATION = (
    "retrain",
    "retrain_refused",
    "retrain_suppressed",
    "candidate_rejected",
    "rollout_start",
    "stage",
    "promote",
    "abort",
    "pause",
    "rollback",
)


def _answers(incident: Incident, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The adaptation loop's actions that answer ``incident``: retraining decisions its alerts
    triggered (or its broken data refused), and what became of the versions they trained."""
    kinds = set(DETECTED_BY[incident.kind])
    ours: set[int] = set()
    expecting = False
    out = []
    for action in actions:
        kind = action["kind"]
        if kind in ("retrain", "retrain_refused", "retrain_suppressed"):
            cited = {str(a).split(" on ")[0] for a in action["evidence"].get("alerts", [])}
            relevant = bool(cited & kinds)
            if incident.kind == "broken_field" and kind == "retrain_refused":
                relevant = (
                    f"on {incident.field}" in action["reason"] or f"on {incident.view}" in action["reason"]
                )
            if relevant:
                out.append(action)
            expecting = relevant and kind == "retrain"
        elif expecting and kind in ("rollout_start", "candidate_rejected"):
            if action.get("version") is not None:
                ours.add(int(action["version"]))
            out.append(action)
            expecting = False
        elif action.get("version") in ours and kind in _ADAPTATION:
            out.append(action)
    return out


def _timings(run: RunResult) -> dict[str, float]:
    """Wall seconds per phase of a run, the largest first."""
    return {k: round(v, 2) for k, v in sorted(run.seconds.items(), key=lambda kv: -kv[1])}


def _detect(
    incident: Incident, run: RunResult, control: RunResult | None, width: timedelta = timedelta(days=1)
) -> dict[str, Any]:
    """When fourloops first caught ``incident`` in ``run``, and every response (see the module docstring).

    An alert the control run also raised at about the same time (:func:`_in_control`; ``width``
    is a window) is the history's, not the incident's: never a signal.
    """
    start = incident.start.isoformat()
    quiet = control.raised if control is not None else []
    control_actions = (
        {(a["kind"], a.get("reason")) for a in control.actions} if control is not None else set()
    )
    released = _released(incident, run)
    signals: list[tuple[str, int, dict[str, Any]]] = []
    seen: set[tuple[Any, ...]] = set()
    for alert in sorted(run.raised, key=lambda a: a["raised_at"]):
        # Raised after the incident began (a window ending at its start saw none of it); each
        # kind of alert on each column and segment once, at its first.
        what = _what(alert)
        if alert["raised_at"] > start and what not in seen and not _in_control(alert, quiet, width):
            score = _relevance(incident, alert, released)
            if score:
                seen.add(what)
                signals.append((alert["raised_at"], score, alert))
    for action in run.actions:
        if action["at"] >= start and (action["kind"], action.get("reason")) not in control_actions:
            score = _relevance(incident, action, released)
            if score:
                signals.append((action["at"], score, action))
    # The earliest signal first; at the same moment, the more precise one.
    signals.sort(key=lambda s: (s[0], -s[1], _describe(s[2])))
    detected = signals[0][0] if signals else None
    # The responses: what caught it, then what the adaptation loop did about it from then on.
    responses = [f"{at} {_describe(signal)}" for at, _, signal in signals]
    if detected is not None:
        fresh = [
            a
            for a in run.actions
            if a["at"] >= detected and (a["kind"], a.get("reason")) not in control_actions
        ]
        for action in _answers(incident, fresh):
            line = f"{action['at']} {_describe(action)}"
            if line not in responses:
                responses.append(line)
    delay = None
    if detected is not None:
        delay = (datetime.fromisoformat(detected) - incident.start).total_seconds() / 3600
    return {
        **incident.to_dict(),
        "detected_at": detected,
        "detection_delay_hours": None if delay is None else round(delay, 2),
        "detected_by": _describe(signals[0][2]) if signals else None,
        "signals": [_describe(s) for _, _, s in signals[:10]],
        "responses": sorted(responses),
        "released_version": released,
    }


_Job = tuple[Path, Path, SimulationSettings, list[Incident], str]


def _metric_during(incident: Incident, run: RunResult, control: RunResult | None) -> list[dict[str, Any]]:
    """The primary metric in the windows the incident touched: served, without acting, and in the
    control run (no incident); under ``segment``, the same on the incident's segment alone."""
    start = incident.start.isoformat()
    end = incident.end.isoformat() if incident.end is not None else None
    key = segment_key(incident.segment) if incident.segment else None
    quiet = {w["start"]: w for w in (control.outcomes.get("windows", []) if control else [])}
    out = []
    for w in run.outcomes.get("windows", []):
        if not (w["end"] > start and (end is None or w["start"] < end)):
            continue
        q = quiet.get(w["start"], {})
        window = {
            "start": w["start"],
            "with": w["with"],
            "without": w["without"],
            "control": q.get("with"),
            "labelled": w["labelled"],
        }
        own = (w.get("segments") or {}).get(key) if key is not None else None
        if own is not None:
            window["segment"] = {**own, "control": ((q.get("segments") or {}).get(key) or {}).get("with")}
        out.append(window)
    return out


def _cost(during: list[dict[str, Any]]) -> dict[str, Any]:
    """The primary metric averaged over the incident's windows (weighted by labelled rows): served,
    without fourloops acting, and with no incident; and the two differences that tell the story.
    Under ``segment``, the same on the incident's segment alone."""
    out = _averages(during)
    own = [w["segment"] for w in during if "segment" in w]
    if own:
        out["segment"] = _averages(own)
    return out


def _averages(during: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        pairs = [(w[key], w["labelled"]) for w in during if w[key] is not None and w["labelled"]]
        total = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / total if total else None

    served, passive, quiet = mean("with"), mean("without"), mean("control")
    return {
        "windows": len(during),
        "with": served,
        "without": passive,
        "control": quiet,
        "lost": None if served is None or quiet is None else quiet - served,
        "saved": None if served is None or passive is None else served - passive,
    }


def _run_all(
    jobs: list[_Job], progress: Callable[[str], None] | None, *, parallel: bool | None
) -> list[RunResult]:
    """The runs of ``jobs``: one after the other, or each in a fresh interpreter of its own (see
    :mod:`fourloops.simulation.worker`), their progress relayed as it comes."""
    if parallel is None:
        parallel = (os.cpu_count() or 1) >= 2
    if not parallel:
        return [run_once(src, wd, st, inc, name=name, progress=progress) for src, wd, st, inc, name in jobs]
    lines: queue.Queue[str | None] = queue.Queue()
    children = []
    with tempfile.TemporaryDirectory(prefix="fourloops-simulate-") as folder:
        for n, job in enumerate(jobs):
            path = Path(folder) / f"job-{n}.pickle"
            path.write_bytes(pickle.dumps(job))
            child = subprocess.Popen(
                [sys.executable, "-m", "fourloops.simulation.worker", str(path)],
                stdout=subprocess.PIPE,
                text=True,
                env=_worker_env(),
            )
            threading.Thread(target=_relay, args=(child, lines), daemon=True).start()
            children.append((child, path))
        finished = 0
        while finished < len(children):
            message = lines.get()
            if message is None:
                finished += 1
            elif progress is not None:
                progress(message)
        results = []
        for child, path in children:
            child.wait()
            result = path.with_suffix(".result")
            if not result.exists():
                raise FourloopsError(
                    f"a simulation run died (exit code {child.returncode}); see its output above"
                )
            outcome = pickle.loads(result.read_bytes())
            if isinstance(outcome, dict):  # an error: raised again here, as its own class when it can be
                kind = getattr(errors, outcome["error"], FourloopsError)
                raise kind(outcome["message"]) if _plain(kind) else FourloopsError(outcome["message"])
            results.append(outcome)
        return results


def _worker_env() -> dict[str, str]:
    """The environment of a run's process: this one's, with OpenMP threads that sleep when idle.

    Two runs share the cores. OpenMP threads (LightGBM's) spin while they wait by default, and
    two spinning trainers on two cores took twice as long each as with sleeping ones (measured:
    11 s against 5 s per fit; 2.2 s alone). Sleeping changes timing only, never a result; a
    policy the caller set is kept.
    """
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def _relay(child: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert child.stdout is not None
    with child.stdout:
        for line in child.stdout:
            lines.put(line.rstrip("\n"))
    lines.put(None)


def _plain(kind: type) -> bool:
    """Whether an error class is made from its message alone."""
    try:
        kind("x")
    except TypeError:
        return False
    return True


def simulate(
    source: Path,
    out: Path,
    settings: SimulationSettings,
    incidents: Sequence[Incident] = (),
    *,
    progress: Callable[[str], None] | None = None,
    parallel: bool | None = None,
) -> SimulationResult:
    """Replay ``source``'s history (and a control run when there are incidents); write ``out``.

    The control and incident runs share nothing (each has its own copy of the project and its own
    clock), so with ``parallel`` (default: when the machine has two cores or more) they run at the
    same time in two processes; the results are the same either way.
    """
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    control = None
    # Both runs score the incidents' segments too, to tell what each cost there.
    own = {tuple(i.segment.items()): None for i in incidents if i.segment}
    settings = dataclasses.replace(settings, segments=tuple(own))
    if incidents:
        jobs = [
            (source, out / "control", settings, [], "control"),
            (source, out / "incidents", settings, list(incidents), "incidents"),
        ]
        control, run = _run_all(jobs, progress, parallel=parallel)
    else:
        run = run_once(source, out / "run", settings, [], name="run", progress=progress)
    found = []
    for incident in incidents:
        during = _metric_during(incident, run, control)
        detected = _detect(incident, run, control, settings.window)
        found.append({**detected, "metric": during, "cost": _cost(during)})
    result = SimulationResult(
        {
            "model": settings.model,
            "start": settings.start.isoformat(),
            "end": settings.end.isoformat(),
            "window": str(settings.window),
            "materialize_every": str(settings.materialize_every),
            "seed": settings.seed,
            "serving": "in process, through the ASGI app of fourloops serve",
        },
        run,
        control,
        found,
        time.perf_counter() - started,
    )
    summary = result.to_dict()
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    from fourloops.simulation.report import render

    (out / "report.html").write_text(render(summary), encoding="utf-8")
    return result
