"""A model version's reference: its test rows as the event log will show them, profiled once.

When a version is trained, its **test rows** (the newest period of its data,
scored out of sample) are laid out exactly like the model's compacted events
(one column per input, ``prediction`` for the model's output, ``label_number``
for the label) and profiled (:mod:`fourloops.evaluation.profile`). The profile
is stored with the version; monitoring the event log compares every window
with it, so a window is judged against what the version was validated on.
Beside the bins it keeps the task, the decision threshold, the label delay,
the inputs' importance, the columns' default values, each feature view's
coverage in training (the share of rows that found a value) and the model's
operating budget, and a uniform sample of up to 1,000 test rows (multivariate
drift compares windows with it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from fourloops.engines.base import Engine
from fourloops.engines.summaries import ScorePlan
from fourloops.evaluation.drift.policy import DriftPolicy
from fourloops.evaluation.profile import ReferenceProfile, fit_profile

__all__ = ["LABEL", "PREDICTION", "ModelReference", "fit_model_reference", "reference_table"]

#: The event tables' columns for the model's output and a label that is a number (binary or regression).
PREDICTION, LABEL = "prediction", "label_number"
#: Rows of the reference kept as they are, for the domain classifier (multivariate drift).
SAMPLE_ROWS = 1000


def reference_table(
    rows: pl.DataFrame, inputs: Sequence[str], scores: np.ndarray, labels: np.ndarray, *, task: str
) -> pa.Table:
    """Test rows as events: the inputs as they were, the output as ``prediction``, the label."""
    scores = np.asarray(scores)
    if task == "multiclass" and scores.ndim == 2:
        prediction = scores.argmax(axis=1).astype(float)
    elif task == "binary" and scores.ndim == 2:
        prediction = scores[:, 1].astype(float)
    else:
        prediction = scores.astype(float)
    table = rows.select([c for c in inputs if c in rows.columns]).to_arrow()
    table = table.append_column(PREDICTION, pa.array(prediction, pa.float64()))
    label = np.asarray(labels, dtype=float) if task != "multiclass" else np.asarray(labels)
    return table.append_column(LABEL, pa.array(label))


class ModelReference:
    """A version's reference profile and the facts monitoring needs about the model (JSON-able)."""

    def __init__(
        self,
        profile: ReferenceProfile,
        *,
        task: str,
        threshold: float = 0.5,
        label_delay: timedelta | None = None,
        importance: Mapping[str, float] | None = None,
        primary: str | None = None,
        coverage: Mapping[str, float] | None = None,
        budget: Mapping[str, float] | None = None,
        sample: pa.Table | None = None,
    ) -> None:
        self.profile = profile
        self.sample = sample
        self.coverage = dict(coverage or {})
        self.budget = dict(budget or {})
        self.task = task
        self.threshold = threshold
        self.label_delay = label_delay
        self.importance = dict(importance or {})
        self.primary = primary

    def __repr__(self) -> str:
        return (
            f"ModelReference(task={self.task!r}, rows={self.profile.rows}, "
            f"columns={len(self.profile.columns)}, label_delay={self.label_delay!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile.to_dict(),
            "task": self.task,
            "threshold": self.threshold,
            "label_delay_s": None if self.label_delay is None else self.label_delay.total_seconds(),
            "importance": self.importance,
            "primary": self.primary,
            "coverage": self.coverage,
            "budget": self.budget,
            "sample": None if self.sample is None else self.sample.to_pydict(),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, policy: DriftPolicy | None = None) -> ModelReference:
        delay = d.get("label_delay_s")
        return cls(
            ReferenceProfile.from_dict(d["profile"], policy=policy),
            task=d["task"],
            threshold=float(d.get("threshold", 0.5)),
            label_delay=None if delay is None else timedelta(seconds=float(delay)),
            importance=d.get("importance") or {},
            primary=d.get("primary"),
            coverage=d.get("coverage") or {},
            budget=d.get("budget") or {},
            sample=pa.table(d["sample"]) if d.get("sample") else None,
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, policy: DriftPolicy | None = None) -> ModelReference:
        return cls.from_dict(json.loads(data), policy=policy)


def fit_model_reference(
    table: pa.Table,
    *,
    engine: Engine,
    task: str,
    segments: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    threshold: float = 0.5,
    label_delay: timedelta | None = None,
    importance: Mapping[str, float] | None = None,
    primary: str | None = None,
    policy: DriftPolicy | None = None,
    coverage: Mapping[str, float] | None = None,
    budget: Mapping[str, float] | None = None,
    seed: int = 0,
) -> ModelReference:
    """Profile a :func:`reference_table` (inputs, output and label) for monitoring."""
    label = LABEL if task != "multiclass" else None  # the log's class labels are text: metrics need a mapping
    scan = engine.open(table, positions=False)
    try:
        profile = fit_profile(
            scan,
            columns=[c for c in table.column_names if c not in (PREDICTION, LABEL)],
            segments=[s for s in segments if s in table.column_names],
            score=ScorePlan(task, PREDICTION, label),
            defaults=defaults,
            policy=policy,
        )
    finally:
        scan.close()
    return ModelReference(
        profile,
        task=task,
        threshold=threshold,
        label_delay=label_delay,
        importance=importance,
        primary=primary,
        coverage=coverage,
        budget=budget,
        sample=_sample(table.drop_columns([c for c in (PREDICTION, LABEL) if c in table.column_names]), seed),
    )


def _sample(table: pa.Table, seed: int) -> pa.Table:
    """Up to :data:`SAMPLE_ROWS` rows drawn uniformly without replacement (the domain classifier's)."""
    if table.num_rows <= SAMPLE_ROWS:
        return table
    rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, SAMPLE_ROWS, replace=False))
    return table.take(pa.array(rows))
