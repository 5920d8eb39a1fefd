"""A model's labelled, point-in-time-correct frame, and its feature matrix.

Rows come from the model's entity source (one row per prediction event). The
request fields are validated by the model's request contract (the same rules
the server applies), features are joined point-in-time at each row's
prediction time, and the label is computed and checked for maturity: a row
whose label was not yet known at the cutoff is left out and counted, never
treated as a negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from fourloops.contracts import compile_contract
from fourloops.definitions import FeatureView, Model, Task
from fourloops.definitions.explore import ACTION_COLUMN, PROPENSITY_COLUMN
from fourloops.errors import SchemaError
from fourloops.ingestion.features import model_inputs
from fourloops.ingestion.labels import mature
from fourloops.ingestion.sources import read_entities

__all__ = ["ModelFrame", "build_model_frame"]


@dataclass
class ModelFrame:
    """Labelled rows of a model with what was left out and why."""

    frame: pl.DataFrame  # timestamp, request fields, features, label
    timestamp: str
    features: list[str]  # model inputs, in order
    label: str
    cutoff: datetime
    counts: dict[str, int] = field(default_factory=dict)
    join_stats: dict[str, Any] = field(default_factory=dict)


def _logged_rounds(model: Model, raw: pl.DataFrame, counts: dict[str, int]) -> pl.DataFrame:
    """A decision model's rounds: the logged action (one of the model's) and its propensity, in (0, 1].

    Rows with another action, or without a usable propensity, are left out and counted
    (``action_unknown``, ``propensity_invalid``); a source without the columns is an error.
    """
    missing = [c for c in (ACTION_COLUMN, PROPENSITY_COLUMN) if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"model {model.name!r}: a policy model's rounds need the logged columns {missing} "
            "(the action taken and the probability the logging policy gave it)"
        )
    raw = raw.with_columns(
        pl.col(ACTION_COLUMN).cast(pl.String), pl.col(PROPENSITY_COLUMN).cast(pl.Float64, strict=False)
    )
    known = pl.col(ACTION_COLUMN).is_in(model.actions or [])
    counts["action_unknown"] = int(raw.select((~known.fill_null(False)).sum()).item())
    raw = raw.filter(known.fill_null(False))
    p = pl.col(PROPENSITY_COLUMN)
    usable = p.is_not_null() & p.is_not_nan() & (p > 0) & (p <= 1)
    counts["propensity_invalid"] = int(raw.select((~usable.fill_null(False)).sum()).item())
    return raw.filter(usable.fill_null(False))


def build_model_frame(
    model: Model,
    *,
    root: Path,
    views: dict[str, FeatureView],
    join: Any,
    cutoff: datetime | None = None,
    start: datetime | None = None,
    now: datetime | None = None,
) -> ModelFrame:
    """Entities -> request validation -> label and maturity -> point-in-time features.

    ``join(entities, features, timestamp)`` performs the point-in-time join
    (the project passes its :meth:`Project.dataset`). ``cutoff`` is "now" for
    maturity (default: the newest prediction time); ``start`` drops older rows.
    """
    ts = model.entities.timestamp
    raw = read_entities(model.entities, root)
    counts: dict[str, int] = {"rows": raw.height}
    if ts not in raw.columns:
        raise SchemaError(f"model {model.name!r}: entity source has no timestamp column {ts!r}")
    if model.request is not None:
        result = compile_contract(model.request).validate_batch(raw)
        counts["request_invalid"] = result.n_quarantined
        raw = result.valid
    label = model.label
    expr = label.expr if label.expr is not None else pl.col(label.name)
    try:
        raw = raw.with_columns(expr.alias(label.name))
    except pl.exceptions.PolarsError as err:
        raise SchemaError(f"model {model.name!r}: cannot compute label {label.name!r}: {err}") from err
    if start is not None:
        raw = raw.filter(pl.col(ts) >= start)
    newest = raw[ts].max()
    if cutoff is None:
        if not isinstance(newest, datetime):
            raise SchemaError(f"model {model.name!r}: no prediction events to train on")
        # What is known now: the newest row, or the clock when it is earlier (a simulation).
        cutoff = newest if now is None else min(newest, now)
    raw = raw.filter(pl.col(ts) <= cutoff)
    counts["after_time_filter"] = raw.height
    unlabelled = raw[label.name].is_null()
    counts["no_label"] = int(unlabelled.sum())
    raw = raw.filter(~unlabelled)
    known = mature(label, timestamp=ts, cutoff=cutoff)
    immature = raw.select((~known).sum()).item()
    counts["label_not_mature"] = int(immature)
    raw = raw.filter(known)
    if label.name in raw.columns and raw[label.name].dtype == pl.Boolean:
        raw = raw.with_columns(pl.col(label.name).cast(pl.Int8))
    if model.task is Task.POLICY:
        raw = _logged_rounds(model, raw, counts)
    inputs = model_inputs(model, views)
    join_stats: dict[str, Any] = {}
    if model.features:
        training = join(raw, model.features, ts)
        joined = training.to_polars()
        join_stats = training.stats
    else:
        joined = raw
    counts["rows_used"] = joined.height
    logged = [ACTION_COLUMN, PROPENSITY_COLUMN] if model.task is Task.POLICY else []
    keep = [ts, *inputs, *logged, label.name, *[s for s in model.segments if s not in inputs and s != ts]]
    missing = [c for c in keep if c not in joined.columns]
    if missing:
        raise SchemaError(
            f"model {model.name!r}: columns {missing} are in neither the entity source nor the features"
        )
    return ModelFrame(
        joined.select(keep).sort(ts, maintain_order=True),
        ts,
        list(inputs),
        label.name,
        cutoff,
        counts,
        join_stats,
    )
