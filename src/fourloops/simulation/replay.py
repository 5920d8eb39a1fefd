"""One simulated run: a project's own history replayed through all four loops on a simulated clock.

The run works on a copy of the project (its definitions and data, fresh
embedded stores: nothing of the original is touched) and advances one
:class:`~fourloops.clock.ManualClock` from ``start`` to ``end``, window by
window:

1. **Ingestion.** Feature sources are delivered as they would have arrived:
   every ``deliver_every`` (a day; at most a window), the rows created
   (ingested) in that slot, else those whose event time falls in it, are
   written as a new delivery file at the slot's start and validated
   (contract, quarantine, offline store); a row stays invisible to joins and
   to the online store until its created time. Sources without a
   created or time-varying column (static tables) are delivered whole at the
   start. The online store is materialised every ``materialize_every``.
2. **Serving.** Every row of the model's entity source in the window becomes
   a request at its timestamp, carrying the request contract's fields, sent
   **in process** through the same ASGI app ``fourloops serve`` runs
   (validation, online feature lookups at the simulated time, routing,
   fallbacks, the durable event log, shadow scoring).
3. **Labels** arrive at their availability time (the label's ``available``
   column, or its declared delay) and go in as ``POST /v1/labels`` would, in
   batches on the materialisation cadence (each batch holds the labels that
   became available since the one before, and the last batch of a window is
   sent at its end, before the monitor and the controller read them).
4. **Evaluation and adaptation.** At each window's end the monitor runs on the
   last windows (``lookback``: as many as an alert must hold in a row; the
   monitor reads the windows before them that a segment's pools reach back
   to, :mod:`fourloops.evaluation.pooling`) against the current
   champion's reference (alerts are kept,
   one per episode: an episode carried on is not raised again) and the
   controller ticks:
   retraining, staged rollouts, aborts, with the project's own ``fl.Retrain``
   and ``fl.Rollout``; servers follow routing changes at once.
5. **Outcomes.** At the end, the primary metric per window as served, and as
   it would have been had nobody acted (:mod:`fourloops.simulation.outcomes`).

If the model has no champion, one is trained on the data before ``start``
and promoted (a version that fails its gates is promoted with an audited
force, and the run says so). Results are deterministic for a seed, except the
latency the events record (wall time).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fourloops.clock import ManualClock
from fourloops.definitions import FeatureView, Model
from fourloops.definitions.lifecycle import Alias
from fourloops.errors import ConfigError, FourloopsError, NotFoundError
from fourloops.ingestion.sources import match_files, read_entities, read_file
from fourloops.project import Project
from fourloops.simulation.client import InProcessClient
from fourloops.simulation.incidents import Incident, by_kind, segment_mask
from fourloops.simulation.outcomes import outcomes

__all__ = ["RunResult", "SimulationSettings", "run_once"]

_REQUEST_ID = "__fl_request_id"
_LABEL = "__fl_label"
_AVAILABLE = "__fl_available"
_LABEL_BATCH = 2000


@dataclass(frozen=True)
class SimulationSettings:
    """What to replay: the model, the period, the windows, the materialisation cadence, the seed."""

    model: str
    start: datetime
    end: datetime
    window: timedelta = timedelta(days=1)
    materialize_every: timedelta = timedelta(hours=1)
    deliver_every: timedelta = timedelta(days=1)
    #: Windows each monitor call judges (default: the windows an alert must hold in a row, at
    #: least 2); the monitor also reads the scores of the windows a segment's pools reach back to.
    lookback: int | None = None
    seed: int = 0
    #: Segments (``((column, value), ...)``) whose metric the outcomes also give: the incidents'.
    segments: tuple[tuple[tuple[str, Any], ...], ...] = ()

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ConfigError(
                f"simulation end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )
        for name in ("window", "materialize_every", "deliver_every"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"the simulation's {name} must be longer than zero")

    def windows(self) -> list[tuple[datetime, datetime]]:
        """The monitoring windows: [start, start + window), ... up to ``end``."""
        return _slices(self.start, self.end, self.window)

    def deliveries(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        """The delivery slots of the window [lo, hi): one every ``deliver_every`` (at most the window)."""
        return _slices(lo, hi, min(self.deliver_every, self.window))


def _slices(start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, datetime]]:
    out = []
    at = start
    while at < end:
        out.append((at, min(at + step, end)))
        at += step
    return out


@dataclass
class RunResult:
    """What one run did: its requests, the monitor's final judgement, alerts as raised, actions, notes."""

    name: str
    project: Path
    requests: int = 0
    rejected: int = 0
    labels: int = 0
    traffic: list[dict[str, Any]] = field(default_factory=list)
    raised: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    monitor: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _copy_project(source: Path, target: Path, name: str) -> None:
    """The project's definitions, data and settings in ``target``, with embedded stores of its own.

    Every setting is kept (the server's, the alert policy, the engine) except where the stores
    live (the copy's own, embedded), where alerts are sent (nowhere: a simulation pages nobody)
    and how often servers reread the registry (the simulation refreshes them itself, at once).
    """
    if target.exists():
        shutil.rmtree(target)
    ignore = shutil.ignore_patterns(".fourloops", "__pycache__", "*.pyc", ".git")
    shutil.copytree(source, target, ignore=ignore)
    from fourloops.config import load_config

    original = load_config(source, env={})
    sections: dict[str, dict[str, Any]] = {
        section: dict(dataclasses.asdict(getattr(original, section)))
        for section in ("project", "engine", "server", "alerts")
    }
    sections["project"]["name"] = name
    sections["server"] |= {"refresh_interval": "3650d", "admin_token": ""}  # no secret in the copy
    sections["alerts"] |= {"sinks": "", "webhook": ""}
    (target / "fourloops.toml").write_text(_toml(sections), encoding="utf-8")


def _toml(sections: dict[str, dict[str, Any]]) -> str:
    """Flat sections of strings, numbers and booleans as TOML."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = repr(value)
            else:
                text = json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)


@dataclass
class _Delivery:
    """A feature view's rows, delivered window by window (see the module docstring)."""

    view: FeatureView
    folder: Path | None
    rows: pl.DataFrame | None
    when: str | None


def _deliveries(project: Project, settings: SimulationSettings, incidents: list[Incident]) -> list[_Delivery]:
    """Each feature view's rows, taken out of its source files to be delivered again in time."""
    out = []
    for incident in by_kind(incidents, "broken_field"):
        view = project.feature_views.get(incident.view or "")
        if view is None:
            raise ConfigError(f"incident {incident.name!r}: no feature view {incident.view!r}")
        if not any(ch in view.source.path for ch in "*?["):
            raise ConfigError(
                f"incident {incident.name!r}: view {view.name!r} reads one file ({view.source.path}); "
                "a broken field is replayed in deliveries, which need a source of several files "
                "(a glob such as data/x/*.parquet)"
            )
    for view in project.feature_views.values():
        source = view.source
        files = match_files(source, project.root)
        glob = any(ch in source.path for ch in "*?[")
        when = source.created or source.timestamp
        if not glob or when is None:
            out.append(_Delivery(view, None, None, None))  # static: delivered whole, as it is
            continue
        frames = []
        for path in files:
            frame = pl.from_arrow(read_file(path, source.format))
            assert isinstance(frame, pl.DataFrame)
            frames.append(frame)
            path.unlink()
        rows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        out.append(_Delivery(view, files[0].parent, rows, when))
    return out


def _corrupt(rows: pl.DataFrame, incidents: list[Incident], view: str, when: str) -> pl.DataFrame:
    for incident in incidents:
        if incident.view != view:
            continue
        assert incident.field is not None
        if incident.field not in rows.columns:
            raise ConfigError(f"incident {incident.name!r}: view {view!r} has no column {incident.field!r}")
        hit = segment_mask(rows, incident.segment, f"incident {incident.name!r}") & incident.active(
            rows[when]
        )
        column = pl.col(incident.field)
        if incident.mode == "empty":
            broken = pl.when(hit).then(pl.lit("")).otherwise(column.cast(pl.String))
        elif incident.mode == "zeros":
            broken = pl.when(hit).then(pl.lit(0.0)).otherwise(column)
        else:
            broken = pl.when(hit).then(column * incident.factor).otherwise(column)
        rows = rows.with_columns(broken.alias(incident.field))
    return rows


def _deliver(
    project: Project,
    deliveries: list[_Delivery],
    lo: datetime | None,
    hi: datetime,
    n: int,
    incidents: list[Incident],
) -> list[dict[str, Any]]:
    """Write each view's rows of [lo, hi) as a delivery and validate it; the quarantines it made."""
    actions = []
    for d in deliveries:
        if d.rows is None or d.folder is None or d.when is None:
            continue
        moment = pl.col(d.when)
        chosen = d.rows.filter((moment < hi) if lo is None else ((moment >= lo) & (moment < hi)))
        if chosen.is_empty():
            continue
        chosen = _corrupt(chosen, by_kind(incidents, "broken_field"), d.view.name, d.when)
        chosen.write_parquet(d.folder / f"delivery-{n:05d}.parquet")
        for report in project.validate(d.view.name):
            if report.quarantined:
                actions.append(
                    {
                        "at": project.clock().isoformat(),
                        "kind": "quarantine",
                        "model": None,
                        "version": None,
                        "reason": f"{report.quarantined:,} of {report.rows:,} rows of view {d.view.name} "
                        "broke its contract and were quarantined",
                        "evidence": {"view": d.view.name, "failures": report.failures()},
                    }
                )
    return actions


def _shift_entities(project: Project, model: Model, incidents: list[Incident], seed: int) -> None:
    """Apply the covariate and concept shifts to the run's copy of the model's entity data.

    The data itself changes, as it would in production: the extra rows of a covariate shift
    exist (copies of the segment's rows, appended after every original row, so that the
    originals keep their request ids), and the labels of a concept shift are flipped in the
    label's source column, so that serving, labels *and* retraining all see the same world.
    """
    shifts = by_kind(incidents, "covariate_shift") + by_kind(incidents, "concept_shift")
    if not shifts:
        return
    files = match_files(model.entities, project.root)
    frame = read_entities(model.entities, project.root)
    ts = model.entities.timestamp
    rng = np.random.default_rng(seed)
    for incident in by_kind(incidents, "concept_shift"):
        what = f"incident {incident.name!r}"
        hit = segment_mask(frame, incident.segment, what) & segment_mask(frame, incident.where, what, "where")
        hit = hit & incident.active(frame[ts])
        label = model.label.expr if model.label.expr is not None else pl.col(model.label.name)
        positive = frame.select(label.cast(pl.Float64).fill_null(0.0).alias("v"))["v"].to_numpy() >= 0.5
        chance = np.where(positive, incident.negative_rate, incident.positive_rate)
        flip = hit & pl.Series(rng.uniform(size=frame.height) < chance)
        frame = _flip_labels(model, frame, flip)
    for incident in by_kind(incidents, "covariate_shift"):
        grown = segment_mask(frame, incident.segment, f"incident {incident.name!r}") & incident.active(
            frame[ts]
        )
        extra = frame.filter(grown)
        frame = pl.concat([frame, *[extra] * (int(incident.factor) - 1)], how="vertical_relaxed")
    # One file holds it all now, in the order the source read it (originals first).
    frame.write_parquet(files[0])
    for path in files[1:]:
        path.unlink()


def _requests(project: Project, model: Model, settings: SimulationSettings) -> pl.DataFrame:
    """The model's entity rows in the period, as requests with their labels and when those arrive."""
    frame = read_entities(model.entities, project.root)
    ts = model.entities.timestamp
    frame = frame.with_row_index(_REQUEST_ID).with_columns(pl.col(_REQUEST_ID).cast(pl.String))
    frame = frame.filter((pl.col(ts) >= settings.start) & (pl.col(ts) < settings.end))
    label = model.label
    expr = label.expr if label.expr is not None else pl.col(label.name)
    frame = frame.with_columns(expr.cast(pl.Float64).alias(_LABEL))
    if label.available is not None:
        frame = frame.with_columns(pl.col(label.available).alias(_AVAILABLE))
    else:
        frame = frame.with_columns((pl.col(ts) + (label.delay or timedelta(0))).alias(_AVAILABLE))
    return frame.sort(ts, _REQUEST_ID)


def _champion(project: Project, name: str, start: datetime, notes: list[str]) -> list[dict[str, Any]]:
    """Train and promote a first champion on the data before ``start`` when there is none."""
    try:
        project.registry.get_version(name, Alias.CHAMPION)
        return []
    except NotFoundError:
        pass
    result = project.train(name, cutoff=start)
    reason = "first champion, trained on the data before the simulation"
    if result.passed:
        project.promote(name, result.version, reason=reason)
    else:
        failed = [str(g.get("gate")) for g in result.gates if not g.get("passed", True)]
        project.promote(name, result.version, reason=reason + " (gates failed: forced)", force=True)
        gates = ", ".join(failed)
        notes.append(f"the first champion v{result.version} failed its gates ({gates}): promoted with force")
    return [
        {
            "at": start.isoformat(),
            "kind": "promote",
            "model": name,
            "version": result.version,
            "reason": reason,
            "evidence": {"gates": result.gates, "passed": result.passed},
        }
    ]


def _bad_release(project: Project, model: Model, incident: Incident, seed: int) -> list[dict[str, Any]]:
    """Train a candidate with the segment's labels corrupted and hand it to the controller (a rollout).

    It is trained as the controller's own retrains are (``fl.Retrain``'s window and split, where the
    model has them): a release is only a test of the rollout when, offline, it looks like the
    candidates the champion came from; trained on another window it may lose to the champion
    where the champion learnt something recent, and the gates would stop it for that instead.
    """
    files = match_files(model.entities, project.root)
    originals = {path: path.read_bytes() for path in files}
    frame = read_entities(model.entities, project.root)
    rng = np.random.default_rng(seed)
    hit = segment_mask(frame, incident.segment, f"incident {incident.name!r}")
    flip = hit & pl.Series(rng.uniform(size=frame.height) < incident.flip)
    _flip_labels(model, frame, flip).write_parquet(files[0])
    for path in files[1:]:
        path.unlink()
    try:
        result = project.loop.train(model.name)
    finally:
        for path, content in originals.items():
            path.write_bytes(content)
    actions = [
        {
            "at": project.clock().isoformat(),
            "kind": "release",
            "model": model.name,
            "version": result.version,
            "reason": f"incident {incident.name!r}: a candidate trained with the labels of "
            f"{incident.segment} corrupted",
            "evidence": {"incident": incident.name, "passed": result.passed, "gates": result.gates},
        }
    ]
    if project.rollout_log.current(model.name) is not None:
        # Whoever hands over a release stops the rollout in progress first.
        stopped = project.rollout_abort(
            model.name, reason=f"superseded by v{result.version} (incident {incident.name})"
        )
        actions.append(stopped.to_dict())
    try:
        decision = project.rollout(model.name, result.version, reason=f"incident {incident.name}", force=True)
        actions.append(decision.to_dict())
    except FourloopsError as err:
        actions.append(
            {
                "at": project.clock().isoformat(),
                "kind": "candidate_rejected",
                "model": model.name,
                "version": result.version,
                "reason": str(err),
                "evidence": {},
            }
        )
    return actions


def _flip_labels(model: Model, frame: pl.DataFrame, flip: pl.Series) -> pl.DataFrame:
    """``frame`` with the label flipped where ``flip`` holds, by changing the label's source column.

    A label computed from one column (``arr_delay > 15``) is flipped by giving that column a value
    on the other side: the column's own largest value where the label becomes positive, its
    smallest where it becomes negative (checked against the label's expression; far beyond every
    threshold when those do not flip it). Rows without a label keep none.
    """
    label = model.label
    expr = label.expr if label.expr is not None else pl.col(label.name)
    if label.expr is None:
        column = label.name
    else:
        roots = label.expr.meta.root_names()
        if len(roots) != 1 or roots[0] not in frame.columns:
            raise ConfigError(
                f"simulation: the label of {model.name!r} must come from one entity column to be "
                f"flipped, got {roots}"
            )
        column = str(roots[0])
    values = frame.select(expr.cast(pl.Float64).alias("v"))["v"]
    source = frame[column]
    positive, negative = _extremes(source, expr, column)
    flip = flip & values.is_not_null()
    to_negative = flip & (values >= 0.5)
    to_positive = flip & (values < 0.5)
    flipped = (
        pl.when(pl.lit(to_negative)).then(pl.lit(negative)).when(pl.lit(to_positive)).then(pl.lit(positive))
    ).otherwise(pl.col(column))
    return frame.with_columns(flipped.cast(source.dtype).alias(column))


def _extremes(source: pl.Series, expr: pl.Expr, column: str) -> tuple[Any, Any]:
    """Values of ``column`` that make the label positive and negative (see :func:`_flip_labels`)."""
    candidates: list[Any]
    if source.dtype == pl.Boolean:
        candidates = [True, False]
    else:
        candidates = [source.max(), source.min(), 1e6, -1e6]
    judged = pl.DataFrame({column: pl.Series(candidates, dtype=source.dtype, strict=False)}).select(
        expr.cast(pl.Float64).alias("v")
    )["v"]
    pairs = list(zip(candidates, judged.to_list(), strict=True))
    positive = next((c for c, v in pairs if v is not None and v >= 0.5), None)
    negative = next((c for c, v in pairs if v is not None and v < 0.5), None)
    if positive is None or negative is None:
        raise ConfigError(f"simulation: no value of {column!r} flips the label")
    return positive, negative


def run_once(
    source: Path,
    workdir: Path,
    settings: SimulationSettings,
    incidents: list[Incident],
    *,
    name: str,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """One run (see the module docstring) in ``workdir``; incidents empty for a control run."""
    say = progress or (lambda _m: None)
    project_name = Project.load(source, env={}).name
    _copy_project(source, workdir, f"{project_name}-{name}")
    clock = ManualClock(settings.start)
    result = RunResult(name, workdir)
    phase = _Phases(result.seconds)
    with Project.load(workdir, env={}, clock=clock) as project:
        model = project.model(settings.model)
        project.apply()
        lookback = settings.lookback or max(2, project.config.alerts.consecutive)
        deliveries = _deliveries(project, settings, incidents)
        say(f"{name}: delivering the data known before {settings.start.date()}")
        with phase("deliveries"):
            result.actions += _deliver(project, deliveries, None, settings.start, 0, incidents)
            for view in project.feature_views.values():
                project.validate(view.name)
        with phase("materialisation"):
            project.materialize(end=settings.start)
        say(f"{name}: training the first champion")
        with phase("first champion"):
            result.actions += _champion(project, model.name, settings.start, result.notes)
        _shift_entities(project, model, incidents, settings.seed)
        requests = _requests(project, model, settings)
        labels = requests.filter(pl.col(_LABEL).is_not_null() & pl.col(_AVAILABLE).is_not_null()).sort(
            _AVAILABLE
        )
        ts = model.entities.timestamp
        fields = list(model.request.fields) if model.request is not None else []
        label_rows = list(
            zip(
                labels[_REQUEST_ID].to_list(),
                labels[_LABEL].to_list(),
                labels[_AVAILABLE].to_list(),
                strict=True,
            )
        )
        next_label = 0
        app = project.app(models=[model.name], record_periods=False)  # its monitor must not read real time
        with InProcessClient(app) as client:

            def flush_labels(until: datetime) -> None:
                nonlocal next_label
                batch = []
                while next_label < len(label_rows) and label_rows[next_label][2] <= until:
                    rid, value, _ = label_rows[next_label]
                    batch.append(
                        {"request_id": rid, "value": value == 1.0 if model.task.value == "binary" else value}
                    )
                    next_label += 1
                    if len(batch) >= _LABEL_BATCH:
                        client.post("/v1/labels", {"labels": batch})
                        result.labels += len(batch)
                        batch = []
                if batch:
                    client.post("/v1/labels", {"labels": batch})
                    result.labels += len(batch)

            def refresh() -> None:
                for service in app.state.services.values():
                    service.refresh()

            materialize_at = settings.start + settings.materialize_every
            delivery = 0
            for lo, hi in settings.windows():
                served = 0
                for slot, slot_end in settings.deliveries(lo, hi):
                    clock.set(slot)
                    delivery += 1
                    with phase("deliveries"):
                        result.actions += _deliver(project, deliveries, slot, slot_end, delivery, incidents)
                    with phase("materialisation"):
                        project.materialize(end=slot)  # what the delivery made knowable, online at once
                    for incident in by_kind(incidents, "bad_release"):
                        if slot <= incident.start < slot_end:
                            clock.set(incident.start)
                            with phase("incidents"):
                                result.actions += _bad_release(project, model, incident, settings.seed)
                            refresh()
                    rows = requests.filter((pl.col(ts) >= slot) & (pl.col(ts) < slot_end))
                    for row in rows.select([ts, _REQUEST_ID, *fields]).iter_rows(named=True):
                        at = row[ts]
                        if materialize_at <= at:
                            with phase("materialisation"):
                                while materialize_at <= at:
                                    clock.set(materialize_at)
                                    project.materialize(end=materialize_at)
                                    materialize_at += settings.materialize_every
                            clock.set(at)
                            # The labels that became available since the last step, in one batch,
                            # as a label pipeline delivers them (every loop reads them later).
                            with phase("labels"):
                                flush_labels(at)
                        clock.set(at)
                        body = {
                            "inputs": {f: row[f] for f in fields},
                            "request_id": row[_REQUEST_ID],
                            "unit_id": row[_REQUEST_ID],
                        }
                        with phase("serving"):
                            status, _ = client.post(f"/v1/models/{model.name}/predict", body)
                        served += status == 200
                        result.rejected += status != 200
                result.requests += served
                clock.set(hi)
                flush_labels(hi)
                say(f"{name}: {hi.date()}: {result.requests:,} requests; monitoring, then a controller tick")
                result.traffic.append({"start": lo.isoformat(), "end": hi.isoformat(), "requests": served})
                since = max(settings.start, hi - lookback * settings.window)
                with phase("monitoring"):
                    # As production does: against the champion of the moment's reference.
                    seen = project.monitor(
                        model.name,
                        window=settings.window,
                        since=since,
                        until=hi,
                        notify=False,
                        all_versions=True,
                    )
                # An episode raised once: the alert log tells a new one from one carried on.
                result.raised += [{**a.to_dict(), "raised_at": hi.isoformat()} for a in seen.new_alerts]
                with phase("controller"):
                    report = project.tick(holder=f"simulation-{name}")
                result.actions += [d.to_dict() for d in report.decisions if d.kind != "wait"]
                refresh()
        with phase("final monitor"):
            final = project.monitor(
                model.name,
                window=settings.window,
                since=settings.start,
                until=settings.end,
                notify=False,
                record=False,
                all_versions=True,
                version=_first_version(result),
            )
        result.monitor = final.to_dict()
        first = _first_version(result)
        if first is not None:
            releases = [
                (datetime.fromisoformat(a["at"]), int(a["version"]))
                for a in result.actions
                if a["kind"] == "release"
            ]
            say(f"{name}: scoring the requests as if nobody had acted")
            with phase("outcomes"):
                result.outcomes = outcomes(
                    project,
                    model,
                    settings.windows(),
                    first=first,
                    releases=releases,
                    segments=[dict(segment) for segment in settings.segments],
                )
    return result


class _Phases:
    """Wall seconds spent per phase of a run (where a simulation's time goes)."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started


def _first_version(result: RunResult) -> int | None:
    first = next((a for a in result.actions if a["kind"] == "promote"), None)
    return None if first is None else first["version"]
