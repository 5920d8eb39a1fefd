"""Incidents to inject into a simulation, from a TOML file: what breaks, where, and from when.

::

    [[incident]]
    name = "LaGuardia triples"          # optional: defaults to the kind
    kind = "covariate_shift"            # a segment's traffic multiplied (rows copied with new ids)
    start = "2013-10-01"
    segment = { origin = "LGA" }
    factor = 3

    [[incident]]
    kind = "concept_shift"              # the label of matching rows flipped with a probability
    start = "2013-11-01"
    end = "2013-11-20"                  # optional: when it stops (default: never)
    segment = { origin = "JFK" }
    where = { carrier = "B6" }          # optional: only the segment's rows that also match this
    to_positive = 0.5                   # half of the negative labels become positive (later flights);
    # to_negative for the other way, or flip = p for both ways at once

    [[incident]]
    kind = "broken_field"               # a feature source column delivered broken
    start = "2013-09-15"
    view = "weather"
    field = "pressure"
    mode = "empty"                      # "empty" (text ""), "zeros", or "unit" (multiplied by `factor`)
    segment = { origin = "EWR" }

    [[incident]]
    kind = "bad_release"                # a candidate trained with a segment's labels corrupted
    start = "2013-12-01"
    segment = { origin = "JFK" }
    flip = 0.5

An incident lasts from ``start`` until ``end`` (optional, exclusive; a bad
release has no end: it is one event). A segment is a set of ``column =
value`` conditions (all must hold) on the rows the incident touches: the
model's entity rows (covariate shift, concept shift, bad release) or the
feature view's rows (broken field). Every incident names the alert kinds or
actions that count as catching it (:data:`DETECTED_BY`).

A concept shift's ``where`` narrows the flipped rows inside the segment
without changing the segment: the segment is where the change is judged
(its alerts, its cost), ``where`` is the relation that changed. Labels
flipped at random over a whole segment change only its base rate, which no
model can rank better inside it; flipped on the part of it that ``where``
names (JetBlue's flights at JFK), the change follows a feature, and a
retrained model can learn it and win back the segment.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from fourloops.errors import ConfigError

__all__ = ["DETECTED_BY", "KINDS", "Incident", "by_kind", "load_incidents", "segment_mask"]

KINDS = ("covariate_shift", "concept_shift", "broken_field", "bad_release")
#: What counts as fourloops catching each kind: alert kinds, or controller actions.
DETECTED_BY: dict[str, tuple[str, ...]] = {
    "covariate_shift": (
        "input_drift",
        "prediction_drift",
        "multivariate_drift",
        "unknown_categories",
        "estimated_performance",
    ),
    # Estimation before labels cannot see a change of P(y | x): only realised performance can.
    "concept_shift": ("performance",),
    "broken_field": ("data_quality", "input_drift", "coverage", "quarantine"),
    "bad_release": ("abort", "rollback", "pause"),
}
_MODES = ("empty", "zeros", "unit")


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif hasattr(value, "isoformat") and not isinstance(value, str):  # a TOML date
        parsed = datetime.fromisoformat(value.isoformat())
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where}: start {value!r} is not an ISO-8601 date or time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class Incident:
    """One incident (see the module docstring)."""

    name: str
    kind: str
    start: datetime
    segment: Mapping[str, Any] = field(default_factory=dict)
    end: datetime | None = None
    factor: float = 1.0
    flip: float = 0.0
    to_positive: float = 0.0
    to_negative: float = 0.0
    where: Mapping[str, Any] = field(default_factory=dict)  # before ``field`` the attribute shadows it
    view: str | None = None
    field: str | None = None
    mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "start": self.start.isoformat()}
        out["end"] = None if self.end is None else self.end.isoformat()
        out["segment"] = dict(self.segment)
        if self.kind == "covariate_shift":
            out["factor"] = self.factor
        if self.kind == "bad_release":
            out["flip"] = self.flip
        if self.kind == "concept_shift":
            out |= {"to_positive": self.positive_rate, "to_negative": self.negative_rate}
            if self.where:
                out["where"] = dict(self.where)
        if self.kind == "broken_field":
            out |= {"view": self.view, "field": self.field, "mode": self.mode, "factor": self.factor}
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> Incident:
        kind = raw.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if "start" not in raw:
            raise ConfigError(f"{where}: start is missing")
        segment = raw.get("segment", {})
        if not isinstance(segment, Mapping):
            raise ConfigError(f'{where}: segment must be a table such as {{ origin = "LGA" }}')
        rows = raw.get("where", {})
        if not isinstance(rows, Mapping):
            raise ConfigError(f'{where}: where must be a table such as {{ carrier = "B6" }}')
        known = {
            "name",
            "kind",
            "start",
            "end",
            "segment",
            "factor",
            "flip",
            "to_positive",
            "to_negative",
            "view",
            "field",
            "mode",
            "where",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(known))})")
        incident = cls(
            name=str(raw.get("name") or kind),
            kind=kind,
            start=_time(raw["start"], where),
            segment=dict(segment),
            end=None if raw.get("end") is None else _time(raw["end"], where),
            factor=float(raw.get("factor", 1.0)),
            flip=float(raw.get("flip", 0.0)),
            to_positive=float(raw.get("to_positive", 0.0)),
            to_negative=float(raw.get("to_negative", 0.0)),
            view=raw.get("view"),
            field=raw.get("field"),
            mode=raw.get("mode"),
            where=dict(rows),
        )
        incident.check(where)
        return incident

    @property
    def positive_rate(self) -> float:
        """Chance that a negative label becomes positive."""
        return self.flip or self.to_positive

    @property
    def negative_rate(self) -> float:
        """Chance that a positive label becomes negative."""
        return self.flip or self.to_negative

    def active(self, times: pl.Series) -> pl.Series:
        """Which of ``times`` fall in the incident's period (nulls do not)."""
        inside = times >= self.start
        if self.end is not None:
            inside = inside & (times < self.end)
        return pl.Series(inside).fill_null(False)

    def check(self, where: str) -> None:
        if self.end is not None and self.end <= self.start:
            raise ConfigError(
                f"{where}: end {self.end.isoformat()} is not after start {self.start.isoformat()}"
            )
        if self.end is not None and self.kind == "bad_release":
            raise ConfigError(f"{where}: a bad_release is one event and has no end")
        if self.kind == "covariate_shift" and (self.factor < 1 or self.factor != int(self.factor)):
            raise ConfigError(f"{where}: covariate_shift needs an integer factor >= 1, got {self.factor}")
        if self.kind == "bad_release" and not 0 < self.flip <= 1:
            raise ConfigError(f"{where}: bad_release needs flip, a probability in (0, 1], got {self.flip}")
        if self.where and self.kind != "concept_shift":
            raise ConfigError(f"{where}: where narrows a concept_shift's rows; a {self.kind} has none")
        if self.kind == "concept_shift":
            rates = (self.flip, self.to_positive, self.to_negative)
            if not all(0 <= r <= 1 for r in rates) or not any(rates):
                raise ConfigError(
                    f"{where}: concept_shift needs flip (both ways), to_positive or to_negative: "
                    f"probabilities in [0, 1], not all 0; got flip={self.flip}, "
                    f"to_positive={self.to_positive}, to_negative={self.to_negative}"
                )
            if self.flip and (self.to_positive or self.to_negative):
                raise ConfigError(f"{where}: give flip, or to_positive and to_negative, not both")
        if self.kind == "broken_field":
            if not self.view or not self.field:
                raise ConfigError(f"{where}: broken_field needs view and field")
            if self.mode not in _MODES:
                raise ConfigError(
                    f"{where}: broken_field mode must be one of {', '.join(_MODES)}, got {self.mode!r}"
                )


def load_incidents(path: str | Path) -> list[Incident]:
    """The incidents of a TOML file (``[[incident]]`` tables); a one-line error names what is wrong."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such incidents file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: invalid TOML: {err}") from None
    raw = data.get("incident", [])
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{file}: give incidents as [[incident]] tables")
    return [Incident.from_dict(item, f"{file}: incident {i + 1}") for i, item in enumerate(raw)]


def segment_mask(
    frame: pl.DataFrame, segment: Mapping[str, Any], what: str, role: str = "segment"
) -> pl.Series:
    """Rows of ``frame`` in ``segment`` (every condition holds); ConfigError naming a missing column
    (as a ``role`` column: ``segment``, or ``where`` for a concept shift's narrowing)."""
    mask = pl.Series([True] * frame.height)
    for column, value in segment.items():
        if column not in frame.columns:
            raise ConfigError(
                f"{what}: {role} column {column!r} is not in the data ({', '.join(frame.columns)})"
            )
        mask = mask & (frame[column].cast(pl.String) == str(value)).fill_null(False)
    return mask


def by_kind(incidents: Sequence[Incident], kind: str) -> list[Incident]:
    return [i for i in incidents if i.kind == kind]
