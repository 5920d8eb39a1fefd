"""``fl.Project``: a project folder, and every operation of fourloops as a method.

>>> import fourloops as fl
>>> project = fl.Project.load("examples/flights")      # doctest: +SKIP
>>> project.apply()                                    # doctest: +SKIP
>>> train = project.dataset(flights, features=["weather:temp"], timestamp="sched_dep")  # doctest: +SKIP

The command line is a thin layer over these methods, so notebooks and
schedulers (Airflow, Dagster, cron) can do everything it does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourloops.clock import Clock, utcnow
from fourloops.config import Config, load_config
from fourloops.definitions import FeatureView, Model
from fourloops.definitions.lifecycle import Alias
from fourloops.definitions.loader import Definitions, load_definitions
from fourloops.errors import NotFoundError
from fourloops.ingestion.features import resolve_features
from fourloops.ingestion.online import OnlineFeatures, read_online_features
from fourloops.registry.definitions import ApplyPlan, apply_definitions, plan_definitions
from fourloops.storage.metadata import MetadataStore
from fourloops.storage.online import OnlineStore, open_online_store

# The batch side (DuckDB, Polars, training) is imported where it is used, so that
# a prediction server, which needs none of it, starts faster.
if TYPE_CHECKING:
    from fourloops.adaptation.training import TrainResult
    from fourloops.engines import Engine
    from fourloops.ingestion.dataset import EntityFrame, TrainingSet
    from fourloops.ingestion.ingest import IngestReport
    from fourloops.ingestion.materialize import MaterializeResult
    from fourloops.ingestion.offline_store import OfflineStore
    from fourloops.registry.aliases import AliasChange
    from fourloops.registry.models import ModelRegistry, ModelVersion
    from fourloops.storage.artifacts import ArtifactStore

__all__ = ["Project"]

Progress = Callable[[str], None]


class Project:
    """A loaded fourloops project: its configuration, definitions and stores.

    Stores open lazily on first use; ``clock`` (default: the wall clock, UTC)
    is what "now" means for materialisation and online reads, so tests and
    replays can control time.
    """

    def __init__(
        self,
        config: Config,
        definitions: Definitions,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self.config = config
        self.definitions = definitions
        self.clock = clock

    @classmethod
    def load(
        cls,
        path: str | Path = ".",
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock = utcnow,
    ) -> Project:
        """Load ``fourloops.toml`` and the definitions of the project in ``path``."""
        config = load_config(path, env=env)
        defs = load_definitions(config.path(config.project.definitions))
        return cls(config, defs, clock=clock)

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, name={self.name!r})"

    # -- basic facts ----------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.config.root

    @property
    def name(self) -> str:
        return self.config.project.name

    @property
    def feature_views(self) -> dict[str, FeatureView]:
        return self.definitions.feature_views

    @property
    def models(self) -> dict[str, Model]:
        return self.definitions.models

    def model(self, name: str) -> Model:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise NotFoundError(f"no model {name!r} defined (known: {known})") from None

    def feature_view(self, name: str) -> FeatureView:
        try:
            return self.feature_views[name]
        except KeyError:
            known = ", ".join(sorted(self.feature_views)) or "none"
            raise NotFoundError(f"no feature view {name!r} (known: {known})") from None

    # -- stores (opened on first use) ---------------------------------------------------------
    @cached_property
    def metadata(self) -> MetadataStore:
        return MetadataStore(self.config.url(self.config.storage.metadata), clock=self.clock)

    @cached_property
    def offline(self) -> OfflineStore:
        from fourloops.ingestion.offline_store import OfflineStore

        return OfflineStore(self.config.path(self.config.storage.offline))

    @cached_property
    def online(self) -> OnlineStore:
        return open_online_store(self.config.url(self.config.storage.online), namespace=self.name)

    @cached_property
    def engine(self) -> Engine:
        from fourloops.engines import DuckDBEngine

        e = self.config.engine
        temp = self.config.path(e.temp_directory)
        return DuckDBEngine(
            memory_limit=e.memory_limit or None,
            threads=e.threads or None,
            temp_directory=str(temp),
        )

    @cached_property
    def registry(self) -> ModelRegistry:
        from fourloops.registry.models import ModelRegistry

        return ModelRegistry(self.metadata)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from fourloops.storage.artifacts import open_artifact_store

        value = self.config.storage.artifacts
        return open_artifact_store(value if "://" in value else self.config.path(value))

    def close(self) -> None:
        """Release database connections."""
        for name in ("metadata", "online"):
            store = self.__dict__.pop(name, None)
            if store is not None:
                store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- apply ------------------------------------------------------------------------------
    def plan(self) -> ApplyPlan:
        """What ``apply`` would change, without changing anything."""
        return plan_definitions(self.definitions, self.metadata)

    def apply(self, *, allow_breaking: bool = False, actor: str | None = None) -> ApplyPlan:
        """Register the definitions' versions; refuse breaking changes unless allowed."""
        return apply_definitions(self.definitions, self.metadata, allow_breaking=allow_breaking, actor=actor)

    # -- ingestion ---------------------------------------------------------------------------
    def _views_for(self, target: str | None) -> list[FeatureView]:
        if target is None:
            return list(self.feature_views.values())
        if target in self.feature_views:
            return [self.feature_views[target]]
        by_source = [v for v in self.feature_views.values() if v.source.name == target]
        if by_source:
            return by_source
        target_path = Path(target).resolve()
        by_path = [
            v
            for v in self.feature_views.values()
            if Path(v.source.resolve(self.root)).resolve() == target_path
        ]
        if by_path:
            return by_path
        known = ", ".join(sorted(self.feature_views)) or "none"
        raise NotFoundError(
            f"{target!r} is neither a feature view, a source name nor a source path (views: {known})"
        )

    def validate(
        self, target: str | None = None, *, force: bool = False, progress: Progress | None = None
    ) -> list[IngestReport]:
        """Validate new source files of a view/source (default: all) into offline store and quarantine."""
        from fourloops.ingestion.ingest import ingest_view

        return [
            ingest_view(
                view,
                root=self.root,
                offline=self.offline,
                quarantine_dir=self.config.path(self.config.storage.quarantine),
                metadata=self.metadata,
                force=force,
                now=self.clock,
                progress=progress,
            )
            for view in self._views_for(target)
        ]

    ingest = validate

    def dataset(
        self,
        entities: EntityFrame,
        *,
        features: Sequence[str] | str,
        timestamp: str = "event_timestamp",  # fourloops.ingestion.dataset.DEFAULT_TIMESTAMP
        out: str | Path | None = None,
        full_names: bool = False,
        label: str | None = None,
    ) -> TrainingSet:
        """A point-in-time-correct training frame (see :mod:`fourloops.ingestion.dataset`).

        Views whose source has new files are validated first, so the join always
        sees every valid row and never an invalid one.
        """
        from fourloops.ingestion.dataset import build_training_set

        grouped = resolve_features(features, self.feature_views)
        for view_name in grouped:
            self.validate(view_name)
        return build_training_set(
            entities,
            features=features,
            views=self.feature_views,
            offline=self.offline,
            engine=self.engine,
            timestamp=timestamp,
            out=out,
            full_names=full_names,
            label=label,
        )

    def materialize(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        views: Sequence[str] | None = None,
        incremental: bool = True,
    ) -> list[MaterializeResult]:
        """Copy the latest values knowable at ``end`` (default: now) into the online store."""
        from fourloops.ingestion.materialize import materialize_view

        end = end or self.clock()
        results = []
        for view in self._views_for(None) if views is None else [self.feature_view(v) for v in views]:
            if not view.online:
                continue
            self.validate(view.name)
            result = materialize_view(
                view,
                offline=self.offline,
                online=self.online,
                end=end,
                start=start,
                incremental=incremental,
            )
            self.metadata.record_materialization(
                view=view.name,
                start=result.start,
                end=end,
                written=result.written,
                skipped=result.skipped_older,
            )
            results.append(result)
        return results

    def online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        features: Sequence[str] | str,
        now: datetime | None = None,
        full_names: bool = False,
    ) -> list[OnlineFeatures]:
        """Serve features for entity rows with their age; missing/expired values are marked."""
        grouped = resolve_features(features, self.feature_views)
        return read_online_features(
            self.online,
            grouped,
            self.feature_views,
            entity_rows,
            now=now or self.clock(),
            full_names=full_names,
        )

    # -- adaptation: training and the registry -------------------------------------------------
    def _definition_versions(self, model: Model) -> dict[str, str]:
        views = {ref.split(":")[0] for ref in model.features}
        out = {f"model:{model.name}": model.version}
        for name in sorted(views):
            view = self.feature_view(name)
            out[f"feature_view:{name}"] = view.version
            out[f"contract:{name}"] = view.contract.version
        if model.request is not None:
            out[f"contract:{model.name}.request"] = model.request.version
        return out

    def _join(self, frame: Any, features: Sequence[str], timestamp: str) -> TrainingSet:
        return self.dataset(frame, features=features, timestamp=timestamp)

    def train(
        self,
        name: str,
        *,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        cutoff: datetime | None = None,
        start: datetime | None = None,
        register: bool = True,
        progress: Progress | None = None,
    ) -> TrainResult:
        """Train a candidate version of model ``name``: lineage, evaluation, gates, registration.

        ``cutoff`` is "now" for the run (rows and labels known by then; default:
        the newest row); ``start`` drops older rows.
        """
        from fourloops.adaptation.training import train_model

        model = self.model(name)
        return train_model(
            model,
            root=self.root,
            views=self.feature_views,
            join=self._join,
            registry=self.registry,
            artifacts=self.artifacts,
            definition_versions=self._definition_versions(model),
            params=params,
            seed=seed,
            cutoff=cutoff,
            start=start,
            register=register,
            progress=progress,
        )

    def reproduce(self, name: str, version: int, *, progress: Progress | None = None) -> dict[str, Any]:
        """Re-run a version's training with its recorded ingredients and compare the results."""
        from fourloops.adaptation.reproduce import compare_runs

        recorded = self.registry.get_version(name, version)
        if recorded.status.value != "ready":
            raise NotFoundError(f"model {name!r} v{version} is {recorded.status.value}; nothing to reproduce")
        lineage = recorded.lineage
        cutoff = datetime.fromisoformat(lineage["cutoff"]) if lineage.get("cutoff") else None
        start = datetime.fromisoformat(lineage["start"]) if lineage.get("start") else None
        rerun = self.train(
            name,
            params=recorded.params,
            seed=int(lineage.get("seed", 0)),
            cutoff=cutoff,
            start=start,
            register=False,
            progress=progress,
        )
        result = compare_runs(
            {"lineage": lineage, "metrics": recorded.metrics},
            {"lineage": rerun.lineage, "metrics": rerun.metrics},
        )
        return {"model": name, "version": version, **result}

    def versions(self, name: str) -> list[ModelVersion]:
        """Every registered version of a model (failed runs included)."""
        return self.registry.versions(name)

    def verify(self, name: str | None = None) -> list[dict[str, Any]]:
        """Check every registered artifact (of one model or all) against its recorded SHA-256."""
        from fourloops.errors import ArtifactIntegrityError
        from fourloops.storage.artifacts import ArtifactRef

        names = [name] if name else [m.name for m in self.registry.models()]
        results = []
        for model_name in names:
            for v in self.registry.versions(model_name):
                if v.artifact is None:
                    continue
                ref = ArtifactRef.from_dict(v.artifact)
                try:
                    self.artifacts.verify(ref)
                    results.append(
                        {
                            "model": model_name,
                            "version": v.version,
                            "ok": True,
                            "sha256": ref.sha256,
                        }
                    )
                except ArtifactIntegrityError as err:
                    results.append(
                        {
                            "model": model_name,
                            "version": v.version,
                            "ok": False,
                            "sha256": ref.sha256,
                            "error": str(err),
                        }
                    )
        return results

    def promote(
        self,
        name: str,
        version: int,
        *,
        alias: str = Alias.CHAMPION,
        reason: str = "",
        force: bool = False,
        actor: str | None = None,
    ) -> AliasChange:
        """Point ``alias`` (champion) at ``version``; refused when its gates failed unless ``force``."""
        return self.registry.promote(
            name, version, alias=alias, reason=reason or "promoted", force=force, actor=actor
        )

    def rollback(
        self, name: str, *, alias: str = Alias.CHAMPION, reason: str = "", actor: str | None = None
    ) -> AliasChange:
        """Move ``alias`` back to the version it held before (one command, journaled)."""
        return self.registry.rollback(name, alias=alias, reason=reason or "rolled back", actor=actor)

    def load_model(self, name: str, version: int | str = Alias.CHAMPION) -> Any:
        """The predictor of a version or alias, loaded after its artifact's hash is verified."""
        from fourloops.registry.loading import load_version

        v = self.registry.get_version(name, version)
        task = self.models[name].task.value if name in self.models else self.registry.model(name).task
        return load_version(self.artifacts, v, task=str(task))

    def import_mlflow(
        self,
        path: str | Path,
        *,
        name: str,
        task: str,
        allow_pickle: bool = False,
        actor: str | None = None,
    ) -> ModelVersion:
        """Register an existing MLflow model folder as a new version of model ``name``.

        The model is re-saved in its native format (pickles only with
        ``allow_pickle=True``, re-saved with skops) and recorded with the MLflow
        run's metadata as its lineage. It has no gate results: promoting it needs
        ``force=True``, as for any version nobody has judged.
        """
        import tempfile

        from fourloops.registry.mlflow_import import import_mlflow_model
        from fourloops.registry.records import GateReport, GateVerdict

        imported = import_mlflow_model(path, allow_pickle=allow_pickle)
        self.registry.register_model(name, task)
        with tempfile.TemporaryDirectory(prefix="fourloops-import-") as tmp:
            saved = imported.save(tmp)
            ref = self.artifacts.put_file(saved.path)
        return self.registry.create_version(
            name,
            status="ready",
            artifact={**ref.to_dict(), "meta": saved.meta},
            format=saved.format,
            lineage={
                "imported_from": "mlflow",
                "path": str(Path(path).resolve()),
                **imported.metadata,
                "signature": imported.signature,
            },
            gates=GateReport.judge([GateVerdict("imported", False, "imported from MLflow; never evaluated")]),
            actor=actor,
        )
