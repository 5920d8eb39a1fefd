"""The ingestion loop's operations on a project: validate, datasets, materialisation, online reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourloops.definitions import FeatureView
from fourloops.errors import NotFoundError, SchemaError
from fourloops.ingestion.features import resolve_features
from fourloops.ingestion.online import OnlineFeatures, read_online_features
from fourloops.ingestion.sources import read_entities
from fourloops.project.stores import Stores

if TYPE_CHECKING:
    from fourloops.ingestion.dataset import EntityFrame, TrainingSet
    from fourloops.ingestion.ingest import IngestReport
    from fourloops.ingestion.materialize import MaterializeResult

__all__ = ["IngestionOperations", "Progress"]

#: Told what a long operation is doing now (the CLI shows it as a status line).
Progress = Callable[[str], None]


class IngestionOperations(Stores):
    """Sources -> contracts -> offline store -> training sets and the online store."""

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
        entities: EntityFrame | None = None,
        *,
        features: Sequence[str] | str | None = None,
        timestamp: str | None = None,
        out: str | Path | None = None,
        full_names: bool = False,
        label: str | None = None,
        model: str | None = None,
    ) -> TrainingSet:
        """A point-in-time-correct training frame (see :mod:`fourloops.ingestion.dataset`).

        With ``model``, its features, its entity source (when ``entities`` is not
        given) and its timestamp column are the defaults. Views whose source has
        new files are validated first, so the join always sees every valid row
        and never an invalid one.
        """
        from fourloops.ingestion.dataset import DEFAULT_TIMESTAMP, build_training_set

        if model is not None:
            spec = self.model(model)
            features = features or spec.features
            timestamp = timestamp or spec.entities.timestamp
            if entities is None:
                entities = read_entities(spec.entities, self.root)
        if entities is None:
            raise SchemaError("give the entity rows (a frame or a file), or a model whose entities to use")
        if not features:
            raise SchemaError("give the features (e.g. weather:temp,weather:visib), or a model")
        grouped = resolve_features(features, self.feature_views)
        for view_name in grouped:
            self.validate(view_name)
        return build_training_set(
            entities,
            features=features,
            views=self.feature_views,
            offline=self.offline,
            engine=self.engine,
            timestamp=timestamp or DEFAULT_TIMESTAMP,
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
