"""A training run, as steps a retraining trigger can reuse: frame -> fit -> evaluate -> gate -> register.

Every run leaves a record. A run that fails after it started is registered as
a *failed* version with the reason (never a half-registered model); a run
that finishes is registered with its artifact (content-addressed, hashed, and
carrying the input encoder it was trained through), metrics on the test rows
beside the "do nothing" baseline and the champion, per-segment intervals,
calibration, the gate verdicts with their numbers, and its full lineage.

The steps, each usable alone:

1. :func:`prepare_data`: the point-in-time frame, its time split and the
   encoded matrices (:class:`TrainingData`);
2. :func:`fit_candidate`: fit the trainer, save the artifact, load it back
   through its hash check (:class:`Candidate`: what will be served);
3. :func:`evaluate_run`: metrics of the candidate, the baseline and the
   champion on the same rows, latency, size, leakage (:class:`RunEvaluation`);
   :func:`profile_reference`: the test rows profiled for monitoring;
4. :func:`judge`: the gates (:class:`~fourloops.registry.records.GateReport`);
5. :func:`register_run`: the version in the registry.

:func:`train_model` runs them in order. :func:`judge_version` runs steps 1, 3
and 4 for a version that was not trained here (imported from MLflow) or that
is to be judged again on newer data.
"""

from __future__ import annotations

import difflib
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fourloops.adaptation.evaluate import evaluate_candidate
from fourloops.adaptation.frame import ModelFrame, build_model_frame
from fourloops.adaptation.gates import GateContext, evaluate_gates
from fourloops.adaptation.lineage import code_state, environment, frame_fingerprint
from fourloops.adaptation.policy_evaluation import evaluate_policy_run, reward_model_inputs
from fourloops.adaptation.split import Split, time_split
from fourloops.clock import Clock, utcnow
from fourloops.contracts.encoder import InputEncoder
from fourloops.definitions import FeatureView, Model, Task, TimeSplit
from fourloops.definitions.explore import ACTION_COLUMN
from fourloops.definitions.lifecycle import Alias
from fourloops.engines import DuckDBEngine, Engine
from fourloops.errors import DefinitionError, FourloopsError, NotFoundError, RegistryError
from fourloops.evaluation import evaluate
from fourloops.ingestion.features import model_inputs
from fourloops.ingestion.leakage import leakage_scores
from fourloops.registry.formats import Predictor, load_model, save_model
from fourloops.registry.loading import load_version
from fourloops.registry.models import ModelRegistry
from fourloops.registry.records import GateReport
from fourloops.storage.artifacts import ArtifactRef, ArtifactStore

__all__ = [
    "Candidate",
    "check_params",
    "RunEvaluation",
    "TrainResult",
    "TrainingData",
    "evaluate_run",
    "fit",
    "fit_candidate",
    "judge",
    "judge_version",
    "prepare_data",
    "profile_reference",
    "register_run",
    "train_model",
]

#: Rows sampled for the single-row latency measurement when no gate says otherwise.
LATENCY_SAMPLE = 300
#: Calls made before timing starts (first calls pay for lazy initialisation).
WARMUP = 20

Say = Callable[[str], None]


@dataclass
class TrainResult:
    """What one run produced (``version`` 0 when nothing was registered)."""

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


@dataclass
class TrainingData:
    """A model's labelled frame, split by time and encoded for the trainer."""

    frame: ModelFrame
    split: Split
    encoder: InputEncoder
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_validation: pd.DataFrame
    y_validation: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray

    def lineage(self) -> dict[str, Any]:
        """The data part of a run's lineage: fingerprint, counts, time range, split, features."""
        mf = self.frame
        return {
            "fingerprint": frame_fingerprint(mf.frame),
            "rows": mf.counts,
            "time_range": [str(mf.frame[mf.timestamp].min()), str(mf.frame[mf.timestamp].max())],
            "split": self.split.to_dict(),
            "features": self.encoder.names,
            "join": mf.join_stats,
        }


@dataclass
class Candidate:
    """A fitted model as it will be served: its stored artifact and the predictor loaded from it."""

    estimator: Any
    ref: ArtifactRef
    artifact: dict[str, Any]
    format: str
    predictor: Predictor


@dataclass
class RunEvaluation:
    """Everything a run measured, and the numbers its gates are judged on."""

    metrics: dict[str, Any]
    context: GateContext


def check_params(model: Model, params: dict[str, Any]) -> None:
    """Refuse parameters the model's estimator does not take, naming the close ones it does.

    Checked before anything runs or is registered, so a typo in ``--param``
    costs neither a training run nor a version number.
    """
    trainer = model.trainer
    if not (hasattr(trainer, "fit") and hasattr(trainer, "get_params")):
        return  # a trainer function takes whatever it reads
    names = list(trainer.get_params(deep=False))
    unknown = [k for k in params if k not in names]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, names, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise DefinitionError(
            f"model {model.name!r}: {type(trainer).__name__} has no parameter {', '.join(hints)}"
        )


def fit(model: Model, X: pd.DataFrame, y: np.ndarray, *, params: dict[str, Any], seed: int) -> Any:
    """Fit the model's trainer: a cloned estimator (params applied, seeded) or a trainer function."""
    trainer = model.trainer
    if hasattr(trainer, "fit") and hasattr(trainer, "get_params"):
        from sklearn.base import clone

        check_params(model, params)
        estimator = clone(trainer)
        names = estimator.get_params(deep=False)
        settings = dict(params)
        if "random_state" in names and names["random_state"] is None:
            settings["random_state"] = seed
        estimator.set_params(**settings)
        estimator.fit(X, y)
        return estimator
    return trainer(X, y, {**model.params, **params, "seed": seed})


def prepare_data(
    model: Model,
    *,
    root: Path,
    views: dict[str, FeatureView],
    join: Callable[..., Any],
    cutoff: datetime | None = None,
    start: datetime | None = None,
    now: datetime | None = None,
    split: TimeSplit | None = None,
) -> TrainingData:
    """Step 1: the point-in-time frame (as known at ``cutoff``), split by time, encoded.

    Without ``cutoff``, the run sees what is known at ``now`` (the project's
    clock), or at the newest row if that is earlier. ``split`` replaces the
    model's own (a retrain's shorter holdout, ``fl.Retrain(split=...)``).
    """
    mf = build_model_frame(model, root=root, views=views, join=join, cutoff=cutoff, start=start, now=now)
    parts = time_split(mf.frame, mf.timestamp, split if split is not None else model.split)
    encoder = InputEncoder.from_fields(reward_model_inputs(model, views))
    return TrainingData(
        mf,
        parts,
        encoder,
        encoder.frame(parts.train),
        parts.train[mf.label].to_numpy(),
        encoder.frame(parts.validation),
        parts.validation[mf.label].to_numpy(),
        encoder.frame(parts.test),
        parts.test[mf.label].to_numpy(),
    )


def fit_candidate(
    model: Model, data: TrainingData, *, artifacts: ArtifactStore, params: dict[str, Any], seed: int
) -> Candidate:
    """Step 2: fit, store the artifact with its encoder, and load it back through its hash check."""
    estimator = fit(model, data.X_train, data.y_train, params=params, seed=seed)
    with tempfile.TemporaryDirectory(prefix="fourloops-model-") as tmp:
        saved = save_model(estimator, Path(tmp), inputs=data.encoder, policy=model.actions)
        ref = artifacts.put_file(saved.path)
    artifact = {**ref.to_dict(), "meta": saved.meta}
    # Evaluate what will be served: the artifact as stored, loaded back through its hash check.
    predictor = load_model(artifacts.open(ref), saved.format, task=model.task.value, meta=saved.meta)
    return Candidate(estimator, ref, artifact, saved.format, predictor)


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


def _champion(
    registry: ModelRegistry, artifacts: ArtifactStore, model: Model, *, besides: int | None = None
) -> tuple[Any, int] | None:
    """The champion's predictor and number (None: no champion, or it is version ``besides`` itself)."""
    try:
        version = registry.get_version(model.name, Alias.CHAMPION)
    except NotFoundError:
        return None
    if version.version == besides:
        return None
    return load_version(artifacts, version, task=model.task.value), version.version


def evaluate_run(
    model: Model,
    data: TrainingData,
    candidate: Candidate,
    *,
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    seed: int,
    version: int | None = None,
) -> RunEvaluation:
    """Step 3: the candidate against the baseline and the champion on the same test rows.

    ``version`` is the candidate's own number when it is already registered (it is then not
    compared with itself should it be the champion).
    """
    champ = _champion(registry, artifacts, model, besides=version)
    champion_scores = None
    champion_note = None
    if champ is not None:
        try:
            champion_scores = champ[0].predict(data.X_test)
        except FourloopsError as err:
            # The champion was trained on other inputs; it cannot be scored on these rows.
            champion_note = f"champion v{champ[1]} cannot score these rows: {err}"
            champ = None
    if model.task is Task.POLICY:
        # A decision model: judged off-policy (fourloops.adaptation.policy_evaluation).
        champion_predictor, champion_version = (None, None) if champ is None else champ
        evaluated, ctx = evaluate_policy_run(
            model, data, candidate.predictor, champion_predictor, champion_version, seed=seed
        )
        validation_metrics = {
            "reward_rmse": evaluate(
                "regression",
                data.y_validation.astype(float),
                candidate.predictor.rewards(  # type: ignore[attr-defined]
                    data.X_validation, data.split.validation[ACTION_COLUMN].to_list()
                ),
            ).get("rmse")
        }
    else:
        evaluation, ctx = evaluate_candidate(
            model,
            y_train=data.y_train,
            y_test=data.y_test,
            candidate=candidate.predictor.predict(data.X_test),
            champion=champion_scores,
            champion_version=None if champ is None else champ[1],
            test=data.split.test,
            seed=seed,
        )
        evaluated = evaluation.to_dict()
        validation_metrics = evaluate(
            model.task.value,
            data.y_validation,
            candidate.predictor.predict(data.X_validation),
            threshold=model.objective.threshold,
        )
    latency_gate = next((g for g in model.gates if g.kind == "latency_budget"), None)
    ctx.latency_p99_ms = _latency_p99_ms(
        candidate.predictor, data.X_test, getattr(latency_gate, "sample", LATENCY_SAMPLE), seed
    )
    ctx.artifact_size = candidate.ref.size
    ctx.leakage = [
        f.to_dict() for f in leakage_scores(data.split.train, data.frame.label, data.encoder.names)
    ]
    metrics = {
        **evaluated,
        "validation": validation_metrics,
        "latency_p99_ms": ctx.latency_p99_ms,
        "artifact_bytes": candidate.ref.size,
        "leakage_scores": ctx.leakage[:10],
        "champion_note": champion_note,
    }
    return RunEvaluation(metrics, ctx)


def profile_reference(
    model: Model,
    data: TrainingData,
    predictor: Predictor,
    *,
    artifacts: ArtifactStore,
    engine: Engine,
    estimator: Any = None,
    defaults: Mapping[str, Any] | None = None,
) -> ArtifactRef:
    """Step 3b: the version's monitoring reference (its test rows as events, profiled), stored.

    See :mod:`fourloops.evaluation.reference`. Returns the stored profile's artifact.
    """
    from fourloops.evaluation.reference import fit_model_reference, reference_table

    names = data.encoder.names
    importance: dict[str, float] = {}
    raw = getattr(estimator, "feature_importances_", None)
    if raw is not None and len(raw) == len(names):
        importance = {n: float(v) for n, v in zip(names, raw, strict=True)}
    task, primary = model.task.value, model.primary_metric
    if model.task is Task.POLICY:
        # Monitored as what its events log: the predicted reward of the action taken, against the reward.
        task, primary = Task.REGRESSION.value, "rmse"
        scores = predictor.rewards(data.X_test, data.split.test[ACTION_COLUMN].to_list())  # type: ignore[attr-defined]
    else:
        scores = predictor.predict(data.X_test)
    table = reference_table(data.split.test, names, scores, data.y_test, task=task)
    reference = fit_model_reference(
        table,
        engine=engine,
        task=task,
        segments=model.segments,
        defaults=defaults,
        threshold=model.objective.threshold,
        label_delay=model.label.delay,
        importance=importance,
        primary=primary,
        coverage=_coverage(data.frame.join_stats),
        budget=model.budget.to_dict() if model.budget is not None else None,
    )
    return artifacts.put_bytes(reference.to_bytes(), suffix=".json")


def _coverage(join_stats: Mapping[str, Any]) -> dict[str, float]:
    """Each feature view's share of training rows that found a value."""
    out = {}
    for name, v in (join_stats.get("views") or {}).items():
        total = v.get("found", 0) + v.get("missing", 0) + v.get("expired", 0)
        if total:
            out[name] = v["found"] / total
    return out


def judge(model: Model, evaluation: RunEvaluation) -> GateReport:
    """Step 4: every gate's verdict on the run, with its numbers."""
    return GateReport.judge(evaluate_gates(model.gates, evaluation.context))


def register_run(
    registry: ModelRegistry,
    model: Model,
    candidate: Candidate,
    evaluation: RunEvaluation,
    report: GateReport,
    *,
    lineage: dict[str, Any],
    params: dict[str, Any],
    actor: str | None = None,
) -> int:
    """Step 5: register the candidate as the model's next ready version; returns its number."""
    return registry.create_version(
        model.name,
        status="ready",
        artifact=candidate.artifact,
        format=candidate.format,
        metrics=evaluation.metrics,
        gates=report,
        lineage=lineage,
        params=params,
        actor=actor,
    ).version


def judge_version(
    model: Model,
    version: int,
    *,
    root: Path,
    views: dict[str, FeatureView],
    join: Callable[..., Any],
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    seed: int = 0,
    cutoff: datetime | None = None,
    actor: str | None = None,
    progress: Say | None = None,
    clock: Clock = utcnow,
) -> TrainResult:
    """Evaluate a registered version on ``model``'s test rows, run its gates and record both.

    For a version trained elsewhere (``fourloops import-mlflow``) this is what training
    does after the fit: the same frame, split, metrics against the baseline and the
    champion, per-segment intervals, calibration and gates; the version's metrics and gate
    verdicts are replaced and the judgement is audited. The version must take the
    model's inputs by name (its recorded feature names, or its input encoder); otherwise a
    :class:`~fourloops.errors.RegistryError` names both lists. A version without an input
    encoder (imported) is given the one it was judged through, so that serving encodes a
    request exactly as the judged rows were (categories as the contract's codes).
    """
    say = progress or (lambda _m: None)
    recorded = registry.get_version(model.name, version)
    if recorded.status.value != "ready" or not recorded.artifact:
        raise RegistryError(
            f"version {version} of {model.name!r} is {recorded.status.value}; nothing to judge"
        )
    say("building the point-in-time frame")
    t0 = time.perf_counter()
    data = prepare_data(model, root=root, views=views, join=join, cutoff=cutoff, now=clock())
    timings = {"frame_s": time.perf_counter() - t0}
    predictor = load_version(artifacts, recorded, task=model.task.value)
    encoder = predictor.encoder or _encoder_for(model, views, predictor.feature_names, version)
    split = data.split
    data = dataclass_replace(
        data, encoder=encoder, X_validation=encoder.frame(split.validation), X_test=encoder.frame(split.test)
    )
    ref = ArtifactRef.from_dict(recorded.artifact)
    candidate = Candidate(None, ref, recorded.artifact, recorded.format or "", predictor)
    say("evaluating on the test rows")
    t0 = time.perf_counter()
    evaluation = evaluate_run(
        model, data, candidate, registry=registry, artifacts=artifacts, seed=seed, version=version
    )
    report = judge(model, evaluation)
    timings["evaluate_s"] = time.perf_counter() - t0
    judgement = {
        "cutoff": data.frame.cutoff.isoformat(),
        "data": data.lineage(),
        "definition": model.version,
        "seed": seed,
        "timings": timings,
    }
    registry.record_judgement(
        model.name,
        version,
        metrics=evaluation.metrics,
        gates=report,
        judgement=judgement,
        inputs=None if predictor.encoder is not None else encoder.to_dict(),
        actor=actor,
    )
    verdicts = [v.to_dict() for v in report.verdicts]
    return TrainResult(
        model.name, version, "ready", bool(report.passed), evaluation.metrics, verdicts, judgement, timings
    )


def _encoder_for(
    model: Model, views: dict[str, FeatureView], takes: list[str] | None, version: int
) -> InputEncoder:
    """The model's input encoder in the column order a version trained elsewhere takes."""
    fields = model_inputs(model, views)
    if takes is None:
        return InputEncoder.from_fields(fields)
    if sorted(takes) != sorted(fields):
        raise RegistryError(
            f"version {version} of {model.name!r} takes {takes}, but the model's inputs are "
            f"{list(fields)}: it cannot be judged on the model's rows"
        )
    return InputEncoder.from_fields({name: fields[name] for name in takes})


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
    split: TimeSplit | None = None,
    actor: str | None = None,
    register: bool = True,
    progress: Say | None = None,
    clock: Clock = utcnow,
    engine: Engine | None = None,
) -> TrainResult:
    """Train, evaluate, gate and register one version of ``model`` (the steps above, in order).

    With ``register=False`` nothing is written to the registry (used to
    reproduce a version and compare); the result then has version 0.
    ``split`` replaces the model's time split for this run (recorded in the lineage).
    """
    say = progress or (lambda _m: None)
    params = dict(params or {})
    check_params(model, params)  # before anything is registered: a typo costs no version number
    timings: dict[str, float] = {}
    lineage: dict[str, Any] = {
        "code": code_state(root),
        "definitions": definition_versions,
        "trainer": model.trainer_spec(),
        "params": params,
        "seed": seed,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "start": start.isoformat() if start else None,
        "split": (split if split is not None else model.split).to_dict(),
        "environment": environment(),
    }
    if register:
        registry.register_model(
            model.name, model.task.value, spec=model.to_dict(), description=model.description
        )
    try:
        t0 = time.perf_counter()
        say("building the point-in-time training frame")
        data = prepare_data(
            model, root=root, views=views, join=join, cutoff=cutoff, start=start, now=clock(), split=split
        )
        timings["frame_s"] = time.perf_counter() - t0
        lineage["cutoff"] = data.frame.cutoff.isoformat()
        lineage["data"] = data.lineage()

        say(f"training on {len(data.X_train):,} rows")
        t0 = time.perf_counter()
        candidate = fit_candidate(model, data, artifacts=artifacts, params=params, seed=seed)
        timings["fit_s"] = time.perf_counter() - t0

        say("evaluating on the test rows")
        t0 = time.perf_counter()
        evaluation = evaluate_run(model, data, candidate, registry=registry, artifacts=artifacts, seed=seed)
        report = judge(model, evaluation)
        timings["evaluate_s"] = time.perf_counter() - t0
        say("profiling the test rows for monitoring")
        t0 = time.perf_counter()
        profile = profile_reference(
            model,
            data,
            candidate.predictor,
            artifacts=artifacts,
            engine=engine or DuckDBEngine(),
            estimator=candidate.estimator,
            defaults={n: f.default for n, f in model_inputs(model, views).items() if f.default is not None},
        )
        lineage["reference_profile"] = profile.to_dict()
        timings["profile_s"] = time.perf_counter() - t0
        lineage["timings"] = timings
        lineage["artifact_sha256"] = candidate.ref.sha256
        number = 0
        if register:
            number = register_run(
                registry, model, candidate, evaluation, report, lineage=lineage, params=params, actor=actor
            )
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
    verdicts = [v.to_dict() for v in report.verdicts]
    return TrainResult(
        model.name, number, "ready", bool(report.passed), evaluation.metrics, verdicts, lineage, timings
    )
