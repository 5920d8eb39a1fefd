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

import numpy as np
import pandas as pd
import polars as pl

from fourloops.contracts import compile_contract
from fourloops.definitions import (
    UNKNOWN_CATEGORY,
    Bool,
    Category,
    FeatureView,
    Field,
    Model,
)
from fourloops.definitions.fields import Float, Int, UnknownPolicy
from fourloops.errors import SchemaError
from fourloops.ingestion.features import model_inputs as feature_fields
from fourloops.ingestion.labels import mature
from fourloops.ingestion.sources import read_entities

__all__ = ["ModelFrame", "build_model_frame", "feature_fields", "to_matrix"]


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


def build_model_frame(
    model: Model,
    *,
    root: Path,
    views: dict[str, FeatureView],
    join: Any,
    cutoff: datetime | None = None,
    start: datetime | None = None,
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
        cutoff = newest
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
    inputs = feature_fields(model, views)
    join_stats: dict[str, Any] = {}
    if model.features:
        training = join(raw, model.features, ts)
        joined = training.to_polars()
        join_stats = training.stats
    else:
        joined = raw
    counts["rows_used"] = joined.height
    keep = [ts, *inputs, label.name, *[s for s in model.segments if s not in inputs and s != ts]]
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


def to_matrix(frame: pl.DataFrame, fields: dict[str, Field]) -> pd.DataFrame:
    """The feature matrix for training or scoring: numeric columns as float, categories fixed.

    Category columns get a pandas Categorical whose categories are exactly the
    contract's (plus ``__unknown__`` under ``unknown="map"``), so that codes
    are the same in training and serving whatever values a batch happens to hold.
    """
    columns: dict[str, Any] = {}
    for name, f in fields.items():
        series = frame[name]
        if isinstance(f, Category):
            cats = list(f.categories) + ([UNKNOWN_CATEGORY] if f.unknown == UnknownPolicy.MAP else [])
            columns[name] = pd.Categorical(series.to_list(), categories=cats)
        elif isinstance(f, Bool):
            columns[name] = series.cast(pl.Float64).to_numpy()
        elif isinstance(f, Float | Int):
            columns[name] = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
        else:
            raise SchemaError(f"feature {name!r}: type {type(f).__name__} cannot be a model input")
    return pd.DataFrame(columns)
