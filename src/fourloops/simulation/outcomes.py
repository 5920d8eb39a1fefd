"""The model's primary metric over time, with fourloops acting and without: what an incident cost.

After a run, every answered request that got its label is scored again,
offline, on the inputs the server logged for it, by the version that would
have answered **without fourloops acting**: the first champion throughout,
except that from a bad release's start the released version answers every
request (nobody checked it). Beside it, the metric of what was actually
served (**with** fourloops: rollouts, aborts, retrained champions), and in
the report the control run's (no incident at all). Scoring uses each
version's own predictor, so the numbers are those the server would have
given. Given segments (an incident's ``origin = JFK``), each window also has
both numbers on the segment's rows alone: where an incident hurts one
segment, the whole traffic dilutes what it cost there and what a retrained
model won back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from fourloops.definitions import Model
from fourloops.evaluation.metrics import evaluate
from fourloops.project import Project

__all__ = ["outcomes", "segment_key"]


def segment_key(segment: Mapping[str, Any]) -> str:
    """How a segment of conditions is named: ``origin=JFK`` (conditions joined by ``, ``)."""
    return ", ".join(f"{c}={v}" for c, v in segment.items())


def _scores(predictor: Any, rows: list[dict[str, Any]]) -> np.ndarray:
    out = np.empty(len(rows))
    for i, row in enumerate(rows):
        value = predictor.predict_one(row)
        out[i] = np.nan if value is None else float(value)
    return out


def _metric(task: str, metric: str, y: np.ndarray, p: np.ndarray, threshold: float) -> float | None:
    keep = np.isfinite(y) & np.isfinite(p)
    if keep.sum() < 2:
        return None
    value = evaluate(task, y[keep], p[keep], threshold=threshold).get(metric)
    return None if value is None else float(value)


def outcomes(
    project: Project,
    model: Model,
    windows: Sequence[tuple[datetime, datetime]],
    *,
    first: int,
    releases: Sequence[tuple[datetime, int]] = (),
    segments: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Per window, the primary metric served (``with``) and without fourloops acting (``without``).

    ``first`` is the first champion; ``releases`` the (start, version) of bad releases, which
    answer everything from their start when nobody acts; ``segments`` (column -> value
    conditions) get the same per window under ``segments`` (by :func:`segment_key`).
    """
    task = model.task.value
    metric = model.primary_metric
    threshold = model.objective.threshold
    if task == "multiclass":
        return {"metric": metric, "windows": [], "note": "not computed for multiclass models"}
    versions = {first, *(v for _, v in releases)}
    predictors = {v: project.load_model(model.name, v) for v in versions}
    names: list[str] = []
    for predictor in predictors.values():
        encoder = getattr(predictor, "encoder", None)
        found = encoder.names if encoder is not None else (predictor.feature_names or [])
        names += [n for n in found if n not in names]
    if segments:  # only those whose columns the events hold (a feature view's may not be there)
        empty = project.query_events("SELECT * FROM events LIMIT 0", model=model.name, compact=False)
        logged = set(empty.column_names)
        segments = [segment for segment in segments if set(segment) <= logged]
    wanted = names + [c for segment in segments for c in segment]
    columns = ", ".join('"' + n.replace('"', '""') + '"' for n in dict.fromkeys(wanted))
    table = project.query_events(
        f'SELECT "at", label_number, prediction{", " + columns if columns else ""} FROM events '
        "WHERE route IN ('champion', 'canary') AND label_number IS NOT NULL AND prediction IS NOT NULL "
        'ORDER BY "at", request_id',
        model=model.name,
        compact=False,
    )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    ordered = sorted(releases)
    out = []
    for lo, hi in windows:
        part = frame.filter((pl.col("at") >= lo) & (pl.col("at") < hi))
        y = part["label_number"].to_numpy().astype(float)
        served = part["prediction"].to_numpy().astype(float)
        rows = part.select(names).to_dicts() if names else [{} for _ in range(part.height)]
        at = part["at"].to_list()
        without = np.full(part.height, np.nan)
        for version in versions:
            # Who answers a request at time t without anyone acting: the newest release begun by t.
            chosen = [
                i
                for i, t in enumerate(at)
                if next((v for start, v in reversed(ordered) if start <= t), first) == version
            ]
            if chosen:
                without[chosen] = _scores(predictors[version], [rows[i] for i in chosen])
        window: dict[str, Any] = {
            "start": lo.isoformat(),
            "end": hi.isoformat(),
            "labelled": part.height,
            "with": _metric(task, metric, y, served, threshold),
            "without": _metric(task, metric, y, without, threshold),
        }
        if segments:
            window["segments"] = {}
        for segment in segments:
            rows_in = np.ones(part.height, dtype=bool)
            for column, value in segment.items():
                rows_in &= (part[column] == value).fill_null(False).to_numpy()
            window["segments"][segment_key(segment)] = {
                "labelled": int(rows_in.sum()),
                "with": _metric(task, metric, y[rows_in], served[rows_in], threshold),
                "without": _metric(task, metric, y[rows_in], without[rows_in], threshold),
            }
        out.append(window)
    return {"metric": metric, "windows": out}
