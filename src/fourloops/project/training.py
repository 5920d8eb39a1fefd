"""The adaptation loop's operations on a project: training, the registry, promotion and rollback."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourloops.definitions import Model, TimeSplit
from fourloops.definitions.lifecycle import Alias
from fourloops.errors import FourloopsError, NotFoundError, RegistryError
from fourloops.project.ingestion import IngestionOperations, Progress

if TYPE_CHECKING:
    from fourloops.adaptation.training import TrainResult
    from fourloops.ingestion.dataset import TrainingSet
    from fourloops.registry.aliases import AliasChange
    from fourloops.registry.models import ModelSummary, ModelVersion

__all__ = ["TrainingOperations"]


class TrainingOperations(IngestionOperations):
    """Training runs with lineage and gates, the registry, promotion and rollback."""

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
        split: TimeSplit | None = None,
        register: bool = True,
        progress: Progress | None = None,
    ) -> TrainResult:
        """Train a candidate version of model ``name``: lineage, evaluation, gates, registration.

        ``cutoff`` is "now" for the run (rows and labels known by then; default:
        the newest row); ``start`` drops older rows; ``split`` replaces the model's
        ``fl.TimeSplit`` for this run (a retrain's own, ``fl.Retrain(split=...)``).
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
            split=split,
            register=register,
            progress=progress,
            clock=self.clock,
            engine=self.engine,
        )

    def judge(
        self,
        name: str,
        version: int | str,
        *,
        seed: int = 0,
        cutoff: datetime | None = None,
        progress: Progress | None = None,
    ) -> TrainResult:
        """Evaluate a registered version of model ``name`` on its test rows and run its gates.

        What :meth:`train` does after the fit, for a version trained elsewhere (imported
        from MLflow) or judged again on newer data (``cutoff``: "now" for the frame). The
        version's metrics and gate verdicts are replaced (the old ones stay in the audit
        log), so a version that passes can be promoted without ``force``.
        """
        from fourloops.adaptation.training import judge_version

        model = self.model(name)
        number = self.registry.get_version(name, version).version
        return judge_version(
            model,
            number,
            root=self.root,
            views=self.feature_views,
            join=self._join,
            registry=self.registry,
            artifacts=self.artifacts,
            seed=seed,
            cutoff=cutoff,
            progress=progress,
            clock=self.clock,
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
        split = TimeSplit(**lineage["split"]) if lineage.get("split") else None  # older: the model's
        rerun = self.train(
            name,
            params=recorded.params,
            seed=int(lineage.get("seed", 0)),
            cutoff=cutoff,
            start=start,
            split=split,
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

    def version(self, name: str, version: int | str) -> ModelVersion:
        """One registered version, by number or alias (``"champion"``)."""
        return self.registry.get_version(name, version)

    def compare(self, name: str, a: int | str, b: int | str) -> dict[str, Any]:
        """Two versions side by side: test metrics, gate verdicts, data, parameters and code.

        Metrics are each version's own test-set numbers (a version trained later
        was judged on later rows); the gate ``no_regression`` of the newer one
        holds the paired comparison on the same rows.
        """
        left, right = self.registry.get_version(name, a), self.registry.get_version(name, b)
        out: dict[str, Any] = {"model": name, "versions": [left.version, right.version], "metrics": {}}
        lt, rt = left.metrics.get("test") or {}, right.metrics.get("test") or {}
        for metric in sorted(set(lt) | set(rt)):
            x, y = lt.get(metric), rt.get(metric)
            if isinstance(x, int | float) or isinstance(y, int | float):
                diff = y - x if isinstance(x, int | float) and isinstance(y, int | float) else None
                out["metrics"][metric] = {"a": x, "b": y, "b_minus_a": diff}
        out["gates"] = {
            "a": [v.to_dict() for v in left.gates.verdicts],
            "b": [v.to_dict() for v in right.gates.verdicts],
        }
        for key in ("status", "stage", "format", "params"):
            out[key] = {"a": _plain(getattr(left, key)), "b": _plain(getattr(right, key))}
        for key, path in (
            ("data", ("data", "fingerprint")),
            ("cutoff", ("cutoff",)),
            ("code", ("code", "commit")),
        ):
            out[key] = {"a": _dig(left.lineage, path), "b": _dig(right.lineage, path)}
        return out

    def archive(self, name: str, version: int, *, reason: str = "", actor: str | None = None) -> ModelVersion:
        """Retire a version (stage ``archived``, audited); one that serves traffic is refused."""
        from fourloops.definitions.lifecycle import Stage
        from fourloops.errors import RegistryError

        spec = self.registry.routing(name)
        if version in spec.versions():
            raise RegistryError(
                f"version {version} of {name!r} serves traffic ({_roles(spec, version)}); "
                "take it out of routing before archiving it"
            )
        archived = self.registry.set_stage(name, version, Stage.ARCHIVED, actor=actor)
        if reason:
            self.registry.set_tags(name, version, {"archived_because": reason}, actor=actor)
        return archived

    def tag(
        self, name: str, version: int | None, tags: dict[str, Any], *, actor: str | None = None
    ) -> dict[str, Any]:
        """Merge ``tags`` into a version's (``None``: the model's); a ``None`` value removes. Audited."""
        self.registry.set_tags(name, version, tags, actor=actor)
        return (
            self.registry.model(name).tags
            if version is None
            else self.registry.get_version(name, version).tags
        )

    def registered_models(self) -> list[ModelSummary]:
        """Every model in the registry, with its version count, latest version and aliases."""
        return self.registry.models()

    def aliases(self, name: str) -> dict[str, int]:
        """The aliases of a registered model and the versions they point at."""
        return self.registry.aliases(name)

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
        task: str | None = None,
        allow_pickle: bool = False,
        actor: str | None = None,
    ) -> ModelVersion:
        """Register an existing MLflow model folder as a new version of model ``name``.

        The model is re-saved in its native format (pickles only with
        ``allow_pickle=True``, re-saved with skops) and recorded with the MLflow
        run's metadata as its lineage. When ``name`` is a model defined in the
        project, the version is then judged like a trained one (:meth:`judge`:
        metrics on the model's test rows beside the baseline and the champion, and
        its gates); otherwise it has no gate results and promoting it needs
        ``force=True``, as for any version nobody has judged.
        """
        import tempfile

        from fourloops.registry.mlflow_import import import_mlflow_model
        from fourloops.registry.records import GateReport, GateVerdict

        defined = self.models.get(name)
        task = task or (defined.task.value if defined is not None else "binary")
        if defined is not None and defined.task.value != task:
            raise RegistryError(
                f"model {name!r} is defined as {defined.task.value}, not {task}: import it with "
                f"--task {defined.task.value} or under another name"
            )
        imported = import_mlflow_model(path, allow_pickle=allow_pickle)
        if defined is not None:
            self.registry.register_model(name, task, spec=defined.to_dict(), description=defined.description)
        else:
            self.registry.register_model(name, task)
        with tempfile.TemporaryDirectory(prefix="fourloops-import-") as tmp:
            saved = imported.save(tmp)
            ref = self.artifacts.put_file(saved.path)
        created = self.registry.create_version(
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
        if name not in self.models:
            return created
        try:
            self.judge(name, created.version)
        except FourloopsError as err:
            raise RegistryError(
                f"imported {name!r} v{created.version}, but it could not be judged: {err}"
            ) from err
        return self.registry.get_version(name, created.version)


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _roles(spec: Any, version: int) -> str:
    roles = [r for r in ("champion", "canary", "shadow") if getattr(spec, r) == version]
    if spec.ab and version in spec.ab:
        roles.append("an A/B arm")
    return ", ".join(roles)
