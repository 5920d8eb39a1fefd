"""The controller: one step (:func:`tick`) notices, retrains, rolls out and backs out; :func:`run` loops it.

A tick, for every model, in order:

1. holds the lease (one controller acts at a time; a second one waits and
   takes over within the lease time when the first dies) or does nothing;
2. steps the model's running rollout, if it has one
   (:func:`fourloops.adaptation.rollout.step`: wait, next stage, promote,
   pause or abort);
3. otherwise checks the model's retraining triggers (``fl.Retrain``): a
   schedule, the labels matured since the newest version's training, alerts
   the monitor raised since then. A trigger inside the cooldown or past the
   weekly cap is suppressed, and says so; a trigger while the data is broken
   (within the cooldown, the contract quarantined more than 1 % of a feature
   view's rows, or the monitor saw a ``coverage`` alert) is refused, and says
   so. A refusal or suppression is journaled when it begins or its reason
   changes, not at every tick. Otherwise the model is trained on the
   newest point-in-time-correct data; a candidate that fails its gates is
   recorded as rejected with the gates that blocked it; one that passes
   starts the model's rollout.

A tick is idempotent: run twice at the same moment it decides the same
things (the second finds the rollout in the stage the first left it, the
triggers satisfied by the version the first trained), so it is safe from
cron, Airflow or a Kubernetes CronJob. Time is the project's clock, so a
simulated clock drives it in tests and in ``fourloops simulate``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fourloops.adaptation import rollout
from fourloops.adaptation.loop import Decision, Loop
from fourloops.definitions import Model
from fourloops.errors import FourloopsError
from fourloops.storage.controller_state import RolloutStatus

__all__ = [
    "BROKEN",
    "LEASE",
    "QUARANTINE_SHARE",
    "TickReport",
    "TriggerCheck",
    "default_holder",
    "run",
    "tick",
    "triggers",
]

#: The controller's lease name.
LEASE = "controller"
#: Alert kinds that mark the data broken: no retraining on it.
BROKEN = ("coverage",)
#: Share of a feature view's delivered rows its contract quarantined that marks the data broken.
QUARANTINE_SHARE = 0.01


def _broken(loop: Loop, model: Model, since: datetime) -> list[str]:
    """Why the data is broken now (empty if it is not): what a retrain must not learn from.

    Two signs, both recent (at or after ``since``, the cooldown back): the contract quarantined more
    than :data:`QUARANTINE_SHARE` of the rows delivered to one of the model's feature views (the
    contract is the arbiter of broken data: a nullable column whose nulls rise is a quality
    alert for people, not a reason to stop adapting), or the monitor still sees a coverage alert
    (features missing behind served predictions: a join or a materialisation stopped).
    """
    out = []
    views = sorted({feature.split(":", 1)[0] for feature in model.features})
    for view in views:
        runs = [r for r in loop.metadata.validation_runs(view, limit=500) if r["started_at"] >= since]
        rows = sum(int(r["n_rows"]) for r in runs)
        quarantined = sum(int(r["n_quarantined"]) for r in runs)
        if rows and quarantined / rows > QUARANTINE_SHARE:
            out.append(f"the contract quarantined {quarantined:,} of {rows:,} rows of view {view}")
    out += sorted(
        {
            f"{a['kind']} on {a['column']}"
            for a in loop.alerts.alerts(model.name, limit=500)
            if a["kind"] in BROKEN and a["last_seen_at"] >= since
        }
    )
    return out


def default_holder() -> str:
    """This process's name as a lease holder: host, process id and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@dataclass
class TickReport:
    """What one tick did: whether it held the lease (and who did), and its decisions."""

    at: datetime
    acquired: bool
    holder: str | None
    decisions: list[Decision] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "acquired": self.acquired,
            "holder": self.holder,
            "decisions": [d.to_dict() for d in self.decisions],
        }


@dataclass(frozen=True)
class TriggerCheck:
    """Whether a model's retraining triggers fire now, why, and what suppresses or refuses it."""

    fired: list[str]
    suppressed: str | None = None
    refused: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def triggers(loop: Loop, model: Model) -> TriggerCheck:
    """Evaluate ``model.retrain`` now (see the module docstring)."""
    retrain = model.retrain
    if retrain is None:
        return TriggerCheck([])
    now = loop.clock()
    versions = sorted(loop.registry.versions(model.name), key=lambda v: v.created_at)
    if not versions:
        return TriggerCheck(["no version yet"], evidence={"versions": 0})
    newest = versions[-1]
    since = newest.created_at
    fired: list[str] = []
    evidence: dict[str, Any] = {"newest_version": newest.version, "trained_at": since.isoformat()}
    if retrain.every is not None and now - since >= retrain.every:
        fired.append(f"schedule: {now - since} since v{newest.version} (every {retrain.every})")
    if retrain.new_labels is not None:
        cutoff = newest.lineage.get("cutoff") or since.isoformat()
        rows = loop.query(
            "SELECT count(*) AS n FROM events WHERE label_number IS NOT NULL "
            f"AND \"at\" > TIMESTAMPTZ '{cutoff}' AND route = 'champion'",
            model.name,
        ).to_pylist()
        matured = int(rows[0]["n"]) if rows else 0
        evidence["new_labels"] = matured
        if matured >= retrain.new_labels:
            fired.append(
                f"{matured:,} labels matured since v{newest.version}'s cutoff "
                f"(threshold {retrain.new_labels:,})"
            )
    recent = [a for a in loop.alerts.alerts(model.name, limit=500) if a["first_seen_at"] > since]
    raised = sorted(
        {
            f"{a['kind']}" + (f" on {a['column']}" if a["column"] else "")
            for a in recent
            if a["kind"] in retrain.on_alerts
        }
    )
    if raised:
        fired.append("alerts since the newest version: " + ", ".join(raised[:6]))
        evidence["alerts"] = raised
    if not fired:
        return TriggerCheck([], evidence=evidence)
    broken = _broken(loop, model, now - retrain.cooldown)
    if broken:
        evidence["broken"] = broken
        return TriggerCheck(fired, refused="the data is broken: " + "; ".join(broken[:4]), evidence=evidence)
    if now - since < retrain.cooldown:
        return TriggerCheck(
            fired,
            suppressed=f"cooldown: v{newest.version} was trained {now - since} ago "
            f"(cooldown {retrain.cooldown})",
            evidence=evidence,
        )
    week = [v for v in versions if now - v.created_at < timedelta(days=7)]
    if len(week) >= retrain.max_per_week:
        return TriggerCheck(
            fired,
            suppressed=f"weekly cap: {len(week)} versions trained in the last 7 days "
            f"(at most {retrain.max_per_week})",
            evidence=evidence,
        )
    return TriggerCheck(fired, evidence=evidence)


#: Counts in a refusal's reason (rows quarantined so far), left out of its signature.
_NUMBERS = re.compile(r"\d[\d,.]*")


def _last_hold(loop: Loop, name: str) -> tuple[str, str] | None:
    """The kind and signature of the model's newest retraining decision, if it held a retrain back."""
    for entry in loop.metadata.audit_entries(f"model:{name}", limit=50):
        action = str(entry["action"])
        if action in ("controller:retrain", "controller:candidate_rejected"):
            return None
        if action in ("controller:retrain_refused", "controller:retrain_suppressed"):
            signature = (entry.get("details") or {}).get("evidence", {}).get("signature")
            return action.removeprefix("controller:"), str(signature)
    return None


def _retrain(loop: Loop, model: Model) -> list[Decision]:
    check = triggers(loop, model)
    if not check.fired:
        return []
    name = model.name
    why = "; ".join(check.fired)
    if check.refused or check.suppressed:
        kind = "retrain_refused" if check.refused else "retrain_suppressed"
        # What stops it, without the parts that move every tick (how long ago, how many rows).
        signature = _NUMBERS.sub("#", check.refused) if check.refused else str(check.suppressed).split(":")[0]
        if _last_hold(loop, name) == (kind, signature):
            return []  # said already: the journal is not a heartbeat
        detail = f"but {check.refused}" if check.refused else str(check.suppressed)
        return [
            loop.journal(kind, name, None, f"{why} -- {detail}", {**check.evidence, "signature": signature})
        ]
    decisions = [loop.journal("retrain", name, None, why, check.evidence)]
    try:
        result = loop.train(name)
    except FourloopsError as err:
        decisions.append(loop.journal("candidate_rejected", name, None, f"training failed: {err}"))
        return decisions
    if not result.passed:
        failed = [
            g["gate"] if "gate" in g else g.get("name") for g in result.gates if not g.get("passed", True)
        ]
        decisions.append(
            loop.journal(
                "candidate_rejected",
                name,
                result.version,
                f"gates failed: {', '.join(map(str, failed))}",
                {"gates": result.gates},
            )
        )
        return decisions
    if model.retrain is not None and model.retrain.rollout:
        try:
            decisions.append(rollout.start(loop, name, result.version, reason=f"retrained ({why})"))
        except FourloopsError as err:
            decisions.append(
                loop.journal("candidate_rejected", name, result.version, f"rollout refused: {err}")
            )
    return decisions


def tick(loop: Loop, *, holder: str | None = None, lease: timedelta = timedelta(seconds=60)) -> TickReport:
    """One step of the controller for every model (see the module docstring)."""
    holder = holder or default_holder()
    now = loop.clock()
    if not loop.leases.acquire(LEASE, holder, ttl=lease, at=now):
        return TickReport(now, False, loop.leases.holder(LEASE, at=now))
    report = TickReport(now, True, holder)
    for name in sorted(loop.models):
        model = loop.models[name]
        try:
            record = loop.rollouts.current(name)
            if record is not None:
                if record.status == RolloutStatus.RUNNING:
                    report.decisions.append(rollout.step(loop, record))
                continue
            report.decisions.extend(_retrain(loop, model))
        except FourloopsError as err:  # one model's trouble never stops the others
            report.decisions.append(loop.journal("error", name, None, f"tick failed: {err}"))
    return report


def run(
    loop: Loop,
    *,
    interval: timedelta = timedelta(minutes=1),
    lease: timedelta = timedelta(minutes=3),
    holder: str | None = None,
    stop: threading.Event | None = None,
    ticks: int | None = None,
    on_tick: Callable[[TickReport], None] | None = None,
    sleep: Callable[[float], None] | None = None,
    prepare: Callable[[], object] | None = None,
) -> int:
    """Tick every ``interval`` until ``stop`` is set (or ``ticks`` ticks); returns how many ran.

    The lease (longer than the interval) is renewed at each tick and released on a clean stop;
    ``prepare`` runs before each tick.
    """
    holder = holder or default_holder()
    stop = stop or threading.Event()
    done = 0
    try:
        while not stop.is_set() and (ticks is None or done < ticks):
            if prepare is not None:
                prepare()  # e.g. compact the event log so the tick sees the newest events
            report = tick(loop, holder=holder, lease=lease)
            done += 1
            if on_tick is not None:
                on_tick(report)
            if ticks is not None and done >= ticks:
                break
            if sleep is not None:
                sleep(interval.total_seconds())
            else:
                stop.wait(interval.total_seconds())
    finally:
        loop.leases.release(LEASE, holder)
    return done
