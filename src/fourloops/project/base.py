"""What every part of a project stands on: its configuration, definitions and clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fourloops.clock import Clock
from fourloops.config import Config
from fourloops.definitions import FeatureView, Model
from fourloops.definitions.durations import format_duration
from fourloops.definitions.loader import Definitions
from fourloops.errors import NotFoundError

__all__ = ["ProjectBase"]


class ProjectBase:
    """A project's configuration, definitions and clock, and the basic facts read from them."""

    config: Config
    definitions: Definitions
    clock: Clock

    @property
    def root(self) -> Path:
        """The project folder."""
        return self.config.root

    @property
    def name(self) -> str:
        """The project's name (``project.name``; it namespaces shared stores such as Redis)."""
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

    def list_definitions(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``fourloops list``: the entities (keys), feature views (entity, features, ttl) and models."""
        d = self.definitions
        return {
            "entities": {n: {"join_keys": list(e.join_keys)} for n, e in sorted(d.entities.items())},
            "feature_views": {
                n: {"entity": v.entity.name, "features": list(v.features), "ttl": format_duration(v.ttl)}
                for n, v in sorted(d.feature_views.items())
            },
            "models": {
                n: {"task": m.task.value, "features": list(m.features), "primary": m.primary_metric}
                for n, m in sorted(d.models.items())
            },
        }

    def describe(self, name: str) -> list[dict[str, Any]]:
        """Every definition called ``name`` (a model, feature view, entity or source), with its spec."""
        d = self.definitions
        found = []
        for kind, table in (
            ("model", d.models),
            ("feature_view", d.feature_views),
            ("entity", d.entities),
            ("source", d.sources),
        ):
            obj = table.get(name)
            if obj is not None:
                found.append({"kind": kind, "name": name, "version": obj.version, "spec": obj.to_dict()})
        if not found:
            known = sorted({*d.models, *d.feature_views, *d.entities, *d.sources})
            raise NotFoundError(f"no definition named {name!r} (defined: {', '.join(known) or 'none'})")
        return found
