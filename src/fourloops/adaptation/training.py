"""A training run: point-in-time frame -> time split -> fit -> evaluate -> gates -> registry.

Every run leaves a record. A run that fails after it started is registered as
a *failed* version with the reason (never a half-registered model); a run
that finishes is registered with its artifact (content-addressed, hashed),
metrics on the test rows beside the "do nothing" baseline and the champion,
per-segment intervals, calibration, the gate verdicts with their numbers, and
its full lineage.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fourloops.adaptation.evaluate import evaluate_candidate
from fourloops.adaptation.frame import ModelFrame, build_model_frame, feature_fields, to_matrix
from fourloops.adaptation.gates import evaluate_gates
from fourloops.adaptation.lineage import code_state, environment, frame_fingerprint
from fourloops.adaptation.split import time_split
from fourloops.definitions import FeatureView, Model
from fourloops.definitions.lifecycle import Alias
from fourloops.errors import FourloopsError, NotFoundError, RegistryError
from fourloops.evaluation import evaluate
from fourloops.ingestion.leakage import leakage_scores
from fourloops.registry.formats import load_model, save_model
from fourloops.registry.loading import load_version
from fourloops.registry.models import ModelRegistry
from fourloops.registry.records import GateReport
from fourloops.storage.artifacts import ArtifactStore

__all__ = ["TrainResult", "fit", "load_version", "train_model"]

#: Rows sampled for the single-row latency measurement when no gate says otherwise.
LATENCY_SAMPLE = 300
#: Calls made before timing starts (first calls pay for lazy initialisation).
WARMUP = 20


@dataclass
class TrainResult:
    model: str
    version: int
    status: str
    passed: bool
    metrics: dict[str, Any]
    gates: list[dict[str, Any]]
    lineage: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def fit(model: Model, X: pd.DataFrame, y: np.ndarray, *, params: dict[str, Any], seed: int) -> Any:
    """Fit the model's trainer: a cloned estimator (params applied, seeded) or a trainer function."""
    trainer = model.trainer
    if hasattr(trainer, "fit") and hasattr(trainer, "get_params"):
        from sklearn.base import clone

        estimator = clone(trainer)
        names = estimator.get_params(deep=False)
        unknown = [k for k in params if k not in names]
        if unknown:
            raise FourloopsError(f"model {model.name!r}: unknown trainer parameters {unknown}")
        settings = dict(params)
        if "random_state" in names and names["random_state"] is None:
            settings["random_state"] = seed
        estimator.set_params(**settings)
        estimator.fit(X, y)
        return estimator
    return trainer(X, y, {**model.params, **params, "seed": seed})


def _latency_p99_ms(predictor: Any, X: pd.DataFrame, sample: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), size=min(sample, len(X)), replace=False)
    records = X.iloc[rows].to_dict("records")
    for record in records[:WARMUP]:
        predictor.predict_one(record)
    timings = []
    for record in records:
        t0 = time.perf_counter()
        predictor.predict_one(record)
        timings.append(time.perf_counter() - t0)
    return float(np.percentile(np.array(timings) * 1000, 99))


def _champion(registry: ModelRegistry, artifacts: ArtifactStore, model: Model) -> tuple[Any, int] | None:
    try:
        version = registry.get_version(model.name, Alias.CHAMPION)
    except NotFoundError:
        return None
    return load_version(artifacts, version, task=model.task.value), version.version


def train_model(
    model: Model,
    *,
    root: Path,
    views: dict[str, FeatureView],
    join: Callable[..., Any],
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    definition_versions: dict[str, str],
    params: dict[str, Any] | None = None,
    seed: int = 0,
    cutoff: datetime | None = None,
    start: datetime | None = None,
    actor: str | None = None,
    register: bool = True,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train, evaluate, gate and register one version of ``model``.

    With ``register=False`` nothing is written to the registry (used to
    reproduce a version and compare); the result then has version 0.
    """
    say = progress or (lambda _m: None)
    params = dict(params or {})
    timings: dict[str, float] = {}
    lineage: dict[str, Any] = {
        "code": code_state(root),
        "definitions": definition_versions,
        "trainer": model.trainer_spec(),
        "params": params,
        "seed": seed,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "start": start.isoformat() if start else None,
        "environment": environment(),
    }
    if register:
        registry.register_model(
            model.name, model.task.value, spec=model.to_dict(), description=model.description
        )
    try:
        t0 = time.perf_counter()
        say("building the point-in-time training frame")
        mf: ModelFrame = build_model_frame(
            model, root=root, views=views, join=join, cutoff=cutoff, start=start
        )
        split = time_split(mf.frame, mf.timestamp, model.split)
        timings["frame_s"] = time.perf_counter() - t0
        fields = feature_fields(model, views)
        lineage["cutoff"] = mf.cutoff.isoformat()
        lineage["data"] = {
            "fingerprint": frame_fingerprint(mf.frame),
            "rows": mf.counts,
            "time_range": [str(mf.frame[mf.timestamp].min()), str(mf.frame[mf.timestamp].max())],
            "split": split.to_dict(),
            "features": list(fields),
            "join": mf.join_stats,
        }
        X_train, y_train = to_matrix(split.train, fields), split.train[mf.label].to_numpy()
        X_val, y_val = to_matrix(split.validation, fields), split.validation[mf.label].to_numpy()
        X_test, y_test = to_matrix(split.test, fields), split.test[mf.label].to_numpy()

        say(f"training on {len(X_train):,} rows")
        t0 = time.perf_counter()
        estimator = fit(model, X_train, y_train, params=params, seed=seed)
        timings["fit_s"] = time.perf_counter() - t0

        with tempfile.TemporaryDirectory(prefix="fourloops-model-") as tmp:
            saved = save_model(estimator, Path(tmp), feature_names=list(fields))
            ref = artifacts.put_file(saved.path)
        artifact = {**ref.to_dict(), "meta": saved.meta}
        # Evaluate what will be served: the artifact as stored, loaded back through its hash check.
        predictor = load_model(artifacts.open(ref), saved.format, task=model.task.value, meta=saved.meta)

        say("evaluating on the test rows")
        t0 = time.perf_counter()
        candidate = predictor.predict(X_test)
        champ = _champion(registry, artifacts, model)
        champion_scores = None
        champion_note = None
        if champ is not None:
            try:
                champion_scores = champ[0].predict(X_test)
            except FourloopsError as err:
                # The champion was trained on other inputs; it cannot be scored on these rows.
                champion_note = f"champion v{champ[1]} cannot score these rows: {err}"
                champ = None
        evaluation, ctx = evaluate_candidate(
            model,
            y_train=y_train,
            y_test=y_test,
            candidate=candidate,
            champion=champion_scores,
            champion_version=None if champ is None else champ[1],
            test=split.test,
            seed=seed,
        )
        validation_metrics = evaluate(
            model.task.value, y_val, predictor.predict(X_val), threshold=model.objective.threshold
        )
        latency_gate = next((g for g in model.gates if g.kind == "latency_budget"), None)
        ctx.latency_p99_ms = _latency_p99_ms(
            predictor, X_test, getattr(latency_gate, "sample", LATENCY_SAMPLE), seed
        )
        ctx.artifact_size = ref.size
        ctx.leakage = [f.to_dict() for f in leakage_scores(split.train, mf.label, list(fields))]
        judged = evaluate_gates(model.gates, ctx)
        verdicts = [v.to_dict() for v in judged]
        timings["evaluate_s"] = time.perf_counter() - t0
        lineage["timings"] = timings
        metrics = {
            **evaluation.to_dict(),
            "validation": validation_metrics,
            "latency_p99_ms": ctx.latency_p99_ms,
            "artifact_bytes": ref.size,
            "leakage_scores": ctx.leakage[:10],
            "champion_note": champion_note,
        }
        passed = all(v["passed"] for v in verdicts)
        lineage["artifact_sha256"] = ref.sha256
        number = 0
        if register:
            number = registry.create_version(
                model.name,
                status="ready",
                artifact=artifact,
                format=saved.format,
                metrics=metrics,
                gates=GateReport.judge(judged),
                lineage=lineage,
                params=params,
                actor=actor,
            ).version
    except Exception as err:
        if not register:
            raise
        reason = f"{type(err).__name__}: {err}"
        lineage["traceback"] = traceback.format_exc(limit=20)
        try:
            registry.create_version(
                model.name,
                status="failed",
                failure_reason=reason,
                lineage=lineage,
                params=params,
                actor=actor,
            )
        except RegistryError:
            pass
        raise
    return TrainResult(model.name, number, "ready", passed, metrics, verdicts, lineage, timings)
