"""Judging a trained model on its test rows: metrics, baseline, champion, segments, calibration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fourloops.adaptation.gates import GateContext
from fourloops.definitions import Model
from fourloops.definitions.gates import MaxSegmentDrop
from fourloops.evaluation import (
    baseline_predictions,
    bootstrap_diff,
    calibration,
    evaluate,
    segment_metrics,
)

__all__ = ["Evaluation", "evaluate_candidate"]

#: Bootstrap replicates for confidence intervals of gates and segments.
N_BOOT = 200
#: The standard normal's 97.5 % quantile: half a 95 % interval's width is this many standard errors.
_Z95 = 1.959963984540054


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    baseline: dict[str, Any]
    champion: dict[str, Any] | None
    champion_version: int | None
    diff_ci: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    segments: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.metrics,
            "baseline": self.baseline,
            "champion": self.champion,
            "champion_version": self.champion_version,
            "versus_champion": {
                m: {"diff": d, "ci_low": lo, "ci_high": hi} for m, (d, lo, hi) in self.diff_ci.items()
            },
            "segments": self.segments,
            "calibration": self.calibration,
        }


def _segment_values(model: Model, test: pl.DataFrame) -> dict[str, np.ndarray]:
    """Each segment column of the test rows as text (a null as ``(null)``): the segments' keys."""
    return {c: test[c].cast(pl.String).fill_null("(null)").to_numpy() for c in model.segments}


def _segment_table(
    model: Model, y: np.ndarray, pred: np.ndarray, test: pl.DataFrame, seed: int, n_boot: int = N_BOOT
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    if not model.segments:
        return [], {}
    segments = _segment_values(model, test)
    metrics = [
        model.primary_metric,
        *[m for m in model.objective.guardrails if m != model.primary_metric],
    ]
    results = segment_metrics(
        model.task.value,
        y,
        pred,
        segments,
        metrics=metrics,
        n_boot=n_boot,
        seed=seed,
        threshold=model.objective.threshold,
    )
    rows, points = [], {}
    for r in results:
        row = {
            "column": r.column,
            "value": r.value,
            "n": r.n,
            "positives": r.positives,
            "too_small": r.too_small,
            "metrics": {m: {"point": i.point, "low": i.low, "high": i.high} for m, i in r.metrics.items()},
        }
        rows.append(row)
        if r.column is not None:
            points[(r.column, str(r.value))] = {
                "n": r.n,
                **{m: i.point for m, i in r.metrics.items()},
            }
    return rows, points


def _segment_changes(
    model: Model,
    y: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    test: pl.DataFrame,
    points: dict[tuple[str, str], dict[str, Any]],
    seed: int,
) -> dict[tuple[str, str], dict[str, float]]:
    """The paired bootstrap standard error of (candidate - champion) in every segment a
    ``MaxSegmentDrop`` gate judges (its metric; segments of at least its ``min_size`` rows)."""
    gates = [gate for gate in model.gates if isinstance(gate, MaxSegmentDrop)]
    if not gates or not points:
        return {}
    smallest = min(gate.min_size for gate in gates)
    metrics = {gate.metric or model.primary_metric for gate in gates}
    columns = _segment_values(model, test)
    out: dict[tuple[str, str], dict[str, float]] = {}
    for (column, value), seg in points.items():
        if seg.get("n", 0) < smallest:
            continue
        rows = columns[column] == value
        for metric in metrics:
            d = bootstrap_diff(
                model.task.value,
                y[rows],
                candidate[rows],
                champion[rows],
                metric,
                n_boot=N_BOOT,
                seed=seed,
                threshold=model.objective.threshold,
            )
            if d.low is not None and d.high is not None:  # a 95 % interval's width, as a standard error
                out.setdefault((column, value), {})[metric] = (d.high - d.low) / (2 * _Z95)
    return out


def evaluate_candidate(
    model: Model,
    *,
    y_train: np.ndarray,
    y_test: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray | None,
    champion_version: int | None,
    test: pl.DataFrame,
    seed: int,
) -> tuple[Evaluation, GateContext]:
    """Score ``candidate`` (and the champion, on the same rows) and collect what gates need."""
    task = model.task.value
    kwargs: dict[str, Any] = {"threshold": model.objective.threshold}
    if task == "binary":
        kwargs["cost"] = model.objective.cost
    n_classes = candidate.shape[1] if candidate.ndim == 2 else None
    metrics = evaluate(task, y_test, candidate, **kwargs)
    base = baseline_predictions(task, y_train, len(y_test), n_classes=n_classes)
    baseline = evaluate(task, y_test, base, **kwargs)
    champ_metrics = None if champion is None else evaluate(task, y_test, champion, **kwargs)
    diff_ci: dict[str, tuple[float, float, float]] = {}
    if champion is not None:
        for metric in {model.primary_metric, *model.objective.guardrails}:
            d = bootstrap_diff(
                task,
                y_test,
                candidate,
                champion,
                metric,
                n_boot=N_BOOT,
                seed=seed,
                threshold=model.objective.threshold,
            )
            if d.point is not None and d.low is not None and d.high is not None:
                diff_ci[metric] = (d.point, d.low, d.high)
    seg_rows, seg_points = _segment_table(model, y_test, candidate, test, seed)
    champ_points: dict[tuple[str, str], dict[str, Any]] = {}
    seg_se: dict[tuple[str, str], dict[str, float]] = {}
    if champion is not None:
        _, champ_points = _segment_table(model, y_test, champion, test, seed, n_boot=0)
        seg_se = _segment_changes(model, y_test, candidate, champion, test, seg_points, seed)
    calib = None
    if task == "binary":
        calib = calibration(y_test, candidate).to_dict()
    evaluation = Evaluation(metrics, baseline, champ_metrics, champion_version, diff_ci, seg_rows, calib)
    ctx = GateContext(
        task=model.task.value,
        primary=model.primary_metric,
        metrics=metrics,
        baseline=baseline,
        champion=champ_metrics,
        champion_version=champion_version,
        diff_ci=diff_ci,
        segments=seg_points,
        champion_segments=champ_points,
        segment_diff_se=seg_se,
        ece=None if calib is None else calib["ece"],
    )
    return evaluation, ctx
