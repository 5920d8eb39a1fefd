"""The event log as typed, partitioned Parquet: what the evaluation loop's engine reads.

The durable append path stays as it is (framed JSON lines, or PostgreSQL
rows): fast and safe against a killed process. *Compaction* turns what was
appended since the last compaction into typed Parquet files, partitioned by
model and UTC day, that a batch engine (DuckDB; later Spark) scans directly,
so monitoring a hundred million events never parses JSON per event in
Python. Layout under the project's ``storage.event_tables`` folder::

    events/model=<model>/day=<YYYY-MM-DD>/part-<n>-<id>.parquet
    labels/model=<model>/day=<YYYY-MM-DD>/part-<n>-<id>.parquet   by their prediction's model and day
    labels/model=<model>/part-<n>-<id>.parquet   older layout: by model only
    labels/part-<n>-<id>.parquet         labels of no known prediction yet (and the first layout's)
    manifest.json       how far each source has been compacted
    compaction.lock     one compactor at a time (flock)

An event file has one column per request field and feature of the model's
serving contract (typed by the contract: float64, int64, bool, string,
timestamp), beside ``request_id``, ``unit_id``, ``at``, ``version``,
``route``, ``prediction`` (float64: the score, or for multiclass the index of
the likeliest class, whose probabilities are in ``probabilities``),
``propensity``, ``latency_ms``, ``fallback``, ``fallback_reason``,
``routed_version``, ``cached``, ``shadow_of``, ``status__<view>`` (how each
view's features were found: ok, missing, expired) and ``extra`` (the event's
extra JSON). A decision model's events (``task="policy"``) also have
``action`` (the chosen action, text; ``propensity`` is its probability under
the route that answered), ``distribution`` (the logged action distribution,
JSON text), ``distribution_rest`` (the mass of the actions it does not list),
``exploration_rate`` and ``route_propensity``; their ``prediction`` is the
predicted reward of the chosen action. A value that does not fit its declared type (a contract changed
under old events) is kept as JSON text in ``unparsed``, never dropped. A
label file has ``request_id``, ``label`` (JSON text), ``label_number`` (bools
as 0/1, numbers), ``label_text`` (string labels), ``label_at`` and
``prediction_hour`` (the UTC hour, 0-23, of the prediction's ``at``; null
where it was not known, and in files written before it existed).

**Labels are partitioned by the model and the day of their prediction**
(the UTC day of the prediction's ``at``: the day partition its event is in),
so that judging one model (a rollout check, a monitor window) joins its events
with its own labels, not every model's, and a scan of many days can join them
a few days at a time, each day's events with that day's labels only, holding
one chunk's labels in memory instead of the whole log's. A day busier than a
chunk is read a few hours at a time: each file of labels is sorted by
``prediction_hour``, so a query for some hours of a day reads only the row
groups that hold them. A backend hands each
label's model, prediction day and hour over with it (the store knows them when the
label arrives after its prediction, as labels do). A request id's events are
normally repeats of one write, in one hour; where they are not (a retry stamped
a moment later, maybe in the next hour or day), the store names no day or hour
once it has seen both, and the local log's compaction files each label it
compacts by the event it keeps, when that event is among those it wrote. A label the store
could not place (it arrived before its prediction) is looked up among the
events the same compaction wrote (the local log's compaction does this: a
label logged before its prediction is compacted with it or before it), and
placed if its prediction is there; else it stays in the top folder, which every model's and every day's
reads include, so it still joins its event when that arrives (it is not moved
later: a file is never rewritten).
Files of the earlier layouts (every label in the top folder; labels by model
without a day) read the same way: they join to every day
(:meth:`EventTables.label_days`).

**Exactly once per request id, first event wins.** The log is at-least-once
for requests whose answer was never acknowledged (a killed process, a retried
write), so a compaction drops every event whose request id is already in the
compacted files of its model, and keeps the first of repeats within itself
(earliest ``at``, then log order). The same holds for labels. That also makes
compaction idempotent: re-reading records after a crash between writing
files and the manifest adds nothing.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from fourloops.definitions import Bool, Category, Field, Float, Int, String, Timestamp
from fourloops.errors import SchemaError, StoreError

__all__ = [
    "BASE_COLUMNS",
    "CompactionReport",
    "EventSchema",
    "EventTables",
    "LABEL_COLUMNS",
    "POLICY_COLUMNS",
    "RAW_EVENT_COLUMNS",
    "RAW_LABEL_COLUMNS",
    "raw_events_frame",
    "raw_labels_frame",
]

_TS = pl.Datetime("us", "UTC")

#: The columns every compacted event has, beside its model's fields (``model``/``day`` are partitions).
BASE_COLUMNS: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "unit_id": pl.String(),
    "at": _TS,
    "version": pl.Int64(),
    "route": pl.String(),
    "propensity": pl.Float64(),
    "latency_ms": pl.Float64(),
    "fallback": pl.Boolean(),
    "fallback_reason": pl.String(),
    "routed_version": pl.Int64(),
    "cached": pl.Boolean(),
    "shadow_of": pl.String(),
    "extra": pl.String(),
    "unparsed": pl.String(),
}
#: The columns of a compacted label.
LABEL_COLUMNS: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "label": pl.String(),
    "label_number": pl.Float64(),
    "label_text": pl.String(),
    "label_at": _TS,
    "prediction_hour": pl.Int8(),  # the UTC hour of the prediction's ``at``; null when not known
}
#: Columns of the raw event frame a backend hands to :meth:`EventTables.append` (JSON still text).
RAW_EVENT_COLUMNS: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "unit_id": pl.String(),
    "at": _TS,
    "model": pl.String(),
    "version": pl.Int64(),
    "route": pl.String(),
    "features": pl.String(),
    "output": pl.String(),
    "propensity": pl.Float64(),
    "latency_ms": pl.Float64(),
    "fallback": pl.Boolean(),
    "extra": pl.String(),
    "position": pl.Int64(),  # log order, for "first event wins" among equal times
}
RAW_LABEL_COLUMNS: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "value": pl.String(),
    "at": _TS,
    "model": pl.String(),  # the model of the label's prediction; null when the store does not know it
    "day": pl.String(),  # the UTC day of the prediction (YYYY-MM-DD); null when not known
    "hour": pl.Int8(),  # the UTC hour of the prediction (0-23); null when not known
    "position": pl.Int64(),
}
#: The extra columns of a decision model's events, with the JSON path each is read from.
POLICY_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "action": (pl.String(), ""),
    "distribution": (pl.String(), "$.policy.distribution"),
    "distribution_rest": (pl.Float64(), "$.policy.rest"),
    "exploration_rate": (pl.Float64(), "$.policy.rate"),
    "route_propensity": (pl.Float64(), "$.policy.route_propensity"),
}
_MANIFEST, _LOCK = "manifest.json", "compaction.lock"
_STATUS = "status__"


def _dtype(f: Field) -> pl.DataType:
    if f.sensitive:
        return pl.String()  # logged as a keyed hash
    if isinstance(f, Float):
        return pl.Float64()
    if isinstance(f, Int):
        return pl.Int64()
    if isinstance(f, Bool):
        return pl.Boolean()
    if isinstance(f, Timestamp):
        return _TS
    if isinstance(f, Category | String):
        return pl.String()
    return pl.String()


@dataclass(frozen=True)
class EventSchema:
    """The typed columns of one model's compacted events: its serving fields and looked-up views."""

    model: str
    fields: dict[str, pl.DataType] = field(default_factory=dict)
    views: tuple[str, ...] = ()
    multiclass: bool = False
    policy: bool = False  # a decision model: the action and its distribution get columns

    @classmethod
    def from_contract(
        cls,
        model: str,
        fields: Mapping[str, Field],
        *,
        views: Sequence[str] = (),
        multiclass: bool = False,
        policy: bool = False,
    ) -> EventSchema:
        """The schema of a model whose requests (and looked-up features) follow ``fields``."""
        taken = set(BASE_COLUMNS) | {"prediction", "probabilities", "model", "day"}
        if policy:
            taken |= set(POLICY_COLUMNS)
        for name in fields:
            if name in taken or name.startswith(_STATUS):
                raise SchemaError(
                    f"model {model!r}: field {name!r} has the name of an event column; rename it"
                )
        return cls(model, {n: _dtype(f) for n, f in fields.items()}, tuple(views), multiclass, policy)

    def typed(self, raw: pl.DataFrame) -> pl.DataFrame:
        """This model's raw events (JSON text) as typed columns (vectorised, no Python per event)."""
        features = _decode_fields(raw["features"], self.fields)
        extra = _decode_extra(raw["extra"], self.views)
        out = raw.select(
            "request_id", "unit_id", "at", "version", "route", "propensity", "latency_ms", "fallback", "extra"
        )
        if self.multiclass:
            probabilities = raw["output"].str.json_decode(pl.List(pl.Float64()))
            out = out.with_columns(
                probabilities.list.arg_max().cast(pl.Float64).alias("prediction"),
                probabilities.alias("probabilities"),
            )
        elif self.policy:
            out = out.with_columns(_decisions(raw))
        else:
            out = out.with_columns(raw["output"].cast(pl.Float64, strict=False).alias("prediction"))
        out = pl.concat([out, extra, features.drop("unparsed")], how="horizontal")
        return out.with_columns(features["unparsed"])

    def empty(self) -> pl.DataFrame:
        """A frame with no rows and every column of this schema."""
        columns = {**BASE_COLUMNS, "prediction": pl.Float64(), **self.fields}
        if self.multiclass:
            columns["probabilities"] = pl.List(pl.Float64())
        if self.policy:
            columns.update({name: dtype for name, (dtype, _) in POLICY_COLUMNS.items()})
        columns.update({f"{_STATUS}{v}": pl.String() for v in self.views})
        return pl.DataFrame(schema=columns)


def _decisions(raw: pl.DataFrame) -> list[pl.Series]:
    """A decision model's action, its predicted reward (``prediction``) and its distribution columns."""
    extra = raw["extra"]
    columns = [
        raw["output"].str.json_decode(pl.String()).alias("action"),
        extra.str.json_path_match("$.policy.expected_reward")
        .cast(pl.Float64, strict=False)
        .alias("prediction"),
    ]
    for name, (dtype, path) in POLICY_COLUMNS.items():
        if path:
            columns.append(extra.str.json_path_match(path).cast(dtype, strict=False).alias(name))
    return columns


def _decode_fields(text: pl.Series, fields: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """The feature JSON objects as one typed column per field, plus ``unparsed`` (JSON text or null)."""
    if not fields:
        return pl.DataFrame({"unparsed": pl.Series([None] * len(text), dtype=pl.String)})
    decodable = {n: (pl.String() if t == _TS else t) for n, t in fields.items()}
    try:  # the common case: every value fits its type; Polars' NDJSON reader, in Rust, in parallel
        lines = "\n".join(text.fill_null("{}").to_list()).encode()
        frame = pl.read_ndjson(io.BytesIO(lines), schema=decodable)
        if frame.height != len(text):  # pragma: no cover - a line break inside a value cannot happen
            raise pl.exceptions.ComputeError("feature records and events differ in number")
        bad: dict[str, pl.Series] = {}
    except pl.exceptions.PolarsError:  # a contract changed under old events: field by field
        frame, bad = _decode_leniently(text, decodable)
    for name, dtype in fields.items():
        if dtype == _TS:
            parsed = frame[name].str.to_datetime(time_zone="UTC", strict=False)
            bad_ts = frame[name].is_not_null() & parsed.is_null()
            if bad_ts.any():
                bad[name] = frame[name].set(~bad_ts, None)
            frame = frame.with_columns(parsed.dt.cast_time_unit("us").alias(name))
    if bad:
        unparsed = pl.DataFrame(bad).select(
            pl.when(pl.any_horizontal([pl.col(n).is_not_null() for n in bad]))
            .then(pl.struct(list(bad)).struct.json_encode())
            .alias("unparsed")
        )["unparsed"]
    else:
        unparsed = pl.Series("unparsed", [None] * len(text), dtype=pl.String)
    return frame.with_columns(unparsed.alias("unparsed"))


def _decode_leniently(
    text: pl.Series, fields: Mapping[str, pl.DataType]
) -> tuple[pl.DataFrame, dict[str, pl.Series]]:
    columns: dict[str, pl.Series] = {}
    bad: dict[str, pl.Series] = {}
    for name, dtype in fields.items():
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        raw = text.str.json_path_match(f"$['{quoted}']")
        if dtype == pl.Boolean():
            value = raw.replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
        elif dtype == pl.String():
            value = raw
        else:
            value = raw.cast(dtype, strict=False)
        misfit = raw.is_not_null() & value.is_null()
        if misfit.any():
            bad[name] = raw.set(~misfit, None)
        columns[name] = value.alias(name)
    return pl.DataFrame(columns), bad


def _decode_extra(text: pl.Series, views: Sequence[str]) -> pl.DataFrame:
    status = pl.Struct({v: pl.String() for v in views}) if views else None
    schema: dict[str, pl.DataType] = {
        "fallback": pl.String(),
        "fallback_reason": pl.String(),
        "routed_version": pl.Int64(),
        "cached": pl.Boolean(),
        "shadow_of": pl.String(),
    }
    if status is not None:
        schema["features_status"] = status
    frame = text.str.json_decode(pl.Struct(schema)).struct.unnest()
    frame = frame.drop("fallback").with_columns(pl.col("cached").fill_null(False))
    if status is not None:
        frame = frame.with_columns(
            pl.col("features_status").struct.rename_fields([f"{_STATUS}{v}" for v in views])
        ).unnest("features_status")
    return frame


def raw_events_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with exactly the raw event columns, in order and type."""
    return rows.select([pl.col(n).cast(t) for n, t in RAW_EVENT_COLUMNS.items()])


def raw_labels_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with exactly the raw label columns, in order and type (``model``, ``day``, ``hour``
    null where absent)."""
    for name in ("model", "day", "hour"):
        if name not in rows.columns:
            rows = rows.with_columns(pl.lit(None, RAW_LABEL_COLUMNS[name]).alias(name))
    return rows.select([pl.col(n).cast(t) for n, t in RAW_LABEL_COLUMNS.items()])


def _owned(labels: pl.DataFrame) -> pl.DataFrame:
    """Labels joined with their owners (``owner``, ``owner_day``, ``owner_hour``: the model, day and
    hour of the event found for each): a label of no named day with an owner takes its owner's place."""
    placed = pl.col("day").is_null() & pl.col("owner").is_not_null()
    return labels.select(
        pl.exclude("model", "day", "hour", "owner", "owner_day", "owner_hour"),
        pl.when(placed).then("owner").otherwise("model").alias("model"),
        pl.when(placed).then("owner_day").otherwise("day").alias("day"),
        pl.when(placed).then("owner_hour").otherwise("hour").alias("hour"),
    )


def _typed_labels(raw: pl.DataFrame) -> pl.DataFrame:
    """Labels with their JSON value also as a number (bools as 0/1) and as text (string labels),
    sorted by their prediction's hour (so a file's row groups each span few hours)."""
    value = pl.col("value")
    quoted = value.str.starts_with('"')
    return (
        raw.sort("hour", nulls_last=True, maintain_order=True)
        .select(
            pl.col("request_id"),
            value.alias("label"),
            value.replace({"true": "1", "false": "0"}).cast(pl.Float64, strict=False).alias("label_number"),
            pl.when(quoted).then(value).str.json_decode(pl.String()).alias("label_text"),
            pl.col("at").alias("label_at"),
            pl.col("hour").alias("prediction_hour"),
        )
        .cast(LABEL_COLUMNS)  # type: ignore[arg-type]
    )


@dataclass
class CompactionReport:
    """What one compaction did: events and labels read, written, dropped as repeats, files written."""

    events_read: int = 0
    events_written: int = 0
    events_repeated: int = 0
    labels_read: int = 0
    labels_written: int = 0
    labels_repeated: int = 0
    files: int = 0
    corrupt: int = 0
    models: dict[str, int] = field(default_factory=dict)
    #: Serving-count rows merged into hourly ones (see :meth:`ServingPeriods.roll_up`).
    serving_rows_rolled_up: int = 0
    #: Request ids whose events this compaction met in different hours (a retry stamped a moment
    #: later): it kept the earliest, so their labels are placed by it, not by the store's first guess.
    split: set[str] = field(default_factory=set)

    def add(self, other: CompactionReport) -> None:
        """Add ``other``'s counts to these (one report for a compaction done in chunks)."""
        for name in ("events_read", "events_written", "events_repeated", "labels_read", "labels_written",
                     "labels_repeated", "files", "corrupt", "serving_rows_rolled_up"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for model, n in other.models.items():
            self.models[model] = self.models.get(model, 0) + n
        self.split |= other.split

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {**{k: v for k, v in self.__dict__.items() if k != "split"}, "models": dict(self.models)}


class EventTables:
    """The compacted event log in a folder (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"EventTables({str(self.root)!r})"

    # -- reading ---------------------------------------------------------------------------
    def event_files(
        self, model: str | None = None, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[Path]:
        """The event Parquet files (of one model), oldest part first within each partition.

        With ``since`` / ``until``, only the day partitions that can hold an event timed in
        ``[since, until)`` (a day of margin on either side: partitions are UTC days).
        """
        base = self.root / "events"
        pattern = f"model={model}/day=*/part-*.parquet" if model else "model=*/day=*/part-*.parquet"
        files = sorted(base.glob(pattern))
        if since is None and until is None:
            return files
        low = None if since is None else (since.astimezone(UTC) - timedelta(days=1)).date().isoformat()
        high = None if until is None else (until.astimezone(UTC) + timedelta(days=1)).date().isoformat()
        kept = []
        for f in files:
            day = f.parent.name.removeprefix("day=")
            if (low is None or day >= low) and (high is None or day <= high):
                kept.append(f)
        return kept

    def label_files(self, model: str | None = None) -> list[Path]:
        """The label Parquet files: every one, or those that can hold labels of ``model``.

        A model's are its own partition (by day, and the older layout's files without a day) and the
        top folder (labels of no known prediction when they were compacted, and the first layout's
        files).
        """
        every_day, by_day = self.label_days(model)
        return every_day + [f for day in sorted(by_day) for f in by_day[day]]

    def label_days(self, model: str | None = None) -> tuple[list[Path], dict[str, list[Path]]]:
        """The label files that can hold labels of ``model``'s events (every model's without one):
        those that can belong to an event of any day (the top folder, and a model folder's files of
        the layout without days), and those of each prediction day (``YYYY-MM-DD``: the event
        partition's day), oldest part first.

        An event of day ``d`` can only have its label in the first list or in ``by_day[d]``.
        """
        base = self.root / "labels"
        models = f"model={model}" if model else "model=*"
        every_day = sorted(base.glob("part-*.parquet")) + sorted(base.glob(f"{models}/part-*.parquet"))
        by_day: dict[str, list[Path]] = {}
        for f in sorted(base.glob(f"{models}/day=*/part-*.parquet")):
            by_day.setdefault(f.parent.name.removeprefix("day="), []).append(f)
        return every_day, by_day

    def models(self) -> list[str]:
        """The models with compacted events."""
        base = self.root / "events"
        return sorted(p.name.removeprefix("model=") for p in base.glob("model=*") if p.is_dir())

    def manifest(self) -> dict[str, Any]:
        """How far each source has been compacted (``{}`` before the first compaction)."""
        path = self.root / _MANIFEST
        if not path.is_file():
            return {}
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            raise StoreError(f"event tables {self.root}: unreadable {_MANIFEST}: {err}") from err

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Hold the compaction lock; yields the manifest, which :meth:`save_manifest` replaces."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise StoreError(f"event tables {self.root}: cannot take the compaction lock: {err}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self.manifest()
        finally:
            os.close(fd)

    def save_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Replace the manifest atomically (write a new file, then rename it over the old one)."""
        path = self.root / _MANIFEST
        tmp = path.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(json.dumps(manifest, sort_keys=True, indent=1))
            os.replace(tmp, path)
        except OSError as err:
            raise StoreError(f"event tables {self.root}: cannot write {_MANIFEST}: {err}") from err

    def append(
        self,
        events: pl.DataFrame,
        labels: pl.DataFrame,
        schemas: Mapping[str, EventSchema],
        manifest: dict[str, Any],
        *,
        placed_after: int | None = None,
        split_ids: Collection[str] = (),
    ) -> CompactionReport:
        """Write raw events and labels (their raw frames) as typed files, exactly once per request id.

        Call inside :meth:`locked`. Models without a schema keep their
        features as JSON text (column ``features``). With ``placed_after`` (a part number: the
        manifest's ``parts`` when the compaction began), a label the store could not place is
        looked up among the event files numbered above it, those this compaction wrote: a label
        logged before its prediction is compacted with it or before it, never after; without it, among
        the event files this call writes. ``split_ids``: request ids an earlier call of the same
        compaction met in different hours (:attr:`CompactionReport.split`): their labels are placed
        by the event compaction kept, not where the store first put them.
        """
        report = CompactionReport(events_read=events.height, labels_read=labels.height)
        counter = began = int(manifest.get("parts", 0))
        if events.height:
            events = events.sort(["at", "position"], maintain_order=True).with_columns(
                pl.col("at").dt.date().cast(pl.String).alias("day"),
                pl.col("at").dt.hour().cast(pl.Int8).alias("hour"),
            )
            repeats = events.filter(pl.col("request_id").is_duplicated())
            if repeats.height:
                places = repeats.group_by("request_id").agg(pl.struct("day", "hour").n_unique().alias("n"))
                report.split.update(places.filter(pl.col("n") > 1)["request_id"].to_list())
            for (model,), group in events.group_by(["model"], maintain_order=True):
                fresh = self._first_seen(group, self.event_files(str(model)))
                report.events_repeated += group.height - fresh.height
                if not fresh.height:
                    continue
                schema = schemas.get(str(model))
                typed = schema.typed(fresh) if schema is not None else _untyped(fresh)
                typed = typed.with_columns(fresh["day"])
                for (day,), part in typed.group_by(["day"], maintain_order=True):
                    counter += 1
                    folder = self.root / "events" / f"model={model}" / f"day={day}"
                    self._write(part.drop("day"), folder, counter)
                    report.files += 1
                report.events_written += typed.height
                report.models[str(model)] = report.models.get(str(model), 0) + typed.height
        if labels.height:
            labels = labels.sort(["at", "position"], maintain_order=True)
            fresh = self._first_seen(labels, self.label_files())
            report.labels_repeated = labels.height - fresh.height
            split = report.split | set(split_ids)
            if split:  # placed by one of its request id's events in different hours: by the kept one
                moved = pl.col("request_id").is_in(list(split))
                fresh = fresh.with_columns(
                    pl.when(moved).then(None).otherwise(pl.col(c)).alias(c) for c in ("day", "hour")
                )
            # events this call wrote are in the files numbered above where it began
            placed_after = (
                placed_after if placed_after is not None else (began if report.events_written else None)
            )
            if placed_after is not None:
                fresh = self._placed(fresh, placed_after)
            for (model, day), group in fresh.group_by(["model", "day"], maintain_order=True):
                counter += 1
                folder = self.root / "labels"
                if model is not None:
                    folder /= f"model={model}"
                    if day is not None:  # a store that names no day: the model's folder, every day's
                        folder /= f"day={day}"
                self._write(_typed_labels(group), folder, counter)
                report.files += 1
            report.labels_written = fresh.height
        manifest["parts"] = counter
        return report

    def _placed(self, labels: pl.DataFrame, after: int) -> pl.DataFrame:
        """``labels`` of no named day placed by their event where it is in an event file numbered above
        ``after`` (this compaction's): the model, day and hour of the event compaction kept. That
        places a label the store could not (it arrived before its prediction), and one whose request
        id has events in different hours (a retry stamped in the next hour)."""
        unknown = labels.filter(pl.col("day").is_null())["request_id"]
        files = [f for f in self.event_files() if int(f.name.split("-")[1]) > after] if unknown.len() else []
        if not files:
            return labels
        found = (
            pl.scan_parquet(
                [str(f) for f in files],
                hive_partitioning=False,
                include_file_paths="path",
                extra_columns="ignore",  # models differ in columns; every file has these
            )
            .select("request_id", "at", "path")
            .filter(pl.col("request_id").is_in(unknown.implode()))
            .collect()
        )
        if not found.height:
            return labels
        where = pl.col("path").str.extract_groups(r"/model=([^/]+)/day=([^/]+)/[^/]+$")
        owners = (
            found.sort("at")
            .unique("request_id", keep="first", maintain_order=True)
            .select(
                "request_id",
                where.struct.field("1").alias("owner"),
                where.struct.field("2").alias("owner_day"),
                pl.col("at").dt.hour().cast(pl.Int8).alias("owner_hour"),
            )
        )
        return _owned(labels.join(owners, on="request_id", how="left", maintain_order="left"))

    @staticmethod
    def _first_seen(batch: pl.DataFrame, files: Sequence[Path]) -> pl.DataFrame:
        """The first row per request id of ``batch`` whose id no compacted file holds yet."""
        batch = batch.unique("request_id", keep="first", maintain_order=True)
        if not files:
            return batch
        ids = batch["request_id"]
        known = (
            pl.scan_parquet(
                [str(f) for f in files],
                hive_partitioning=False,
                extra_columns="ignore",  # every file has a request id; layouts differ in the rest
                missing_columns="insert",
            )
            .select("request_id")
            .filter(pl.col("request_id").is_in(ids.implode()))
            .collect()["request_id"]
        )
        return batch.filter(~pl.col("request_id").is_in(known.implode())) if known.len() else batch

    @staticmethod
    def _write(frame: pl.DataFrame, folder: Path, counter: int) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"part-{counter:08d}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = target.with_suffix(".tmp")
            frame.write_parquet(tmp, compression="zstd", statistics=True)
            os.replace(tmp, target)  # readers never see half a file
        except OSError as err:
            raise StoreError(f"event tables {folder}: cannot write a part: {err}") from err


def _untyped(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.select(
        "request_id", "unit_id", "at", "version", "route", "propensity", "latency_ms", "fallback",
        "extra", "features", pl.col("output").alias("prediction_json"),
    )  # fmt: skip
