"""Loading a project's definitions from its ``definitions.py`` (or package)."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from fourloops.definitions.entity import Entity
from fourloops.definitions.feature_view import FeatureView
from fourloops.definitions.model import Model
from fourloops.definitions.source import FileSource
from fourloops.errors import DefinitionError

__all__ = ["Definitions", "load_definitions"]


@dataclass
class Definitions:
    """Every definition found in a project, by name."""

    entities: dict[str, Entity] = field(default_factory=dict)
    sources: dict[str, FileSource] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)

    def add(self, obj: object, origin: str) -> None:
        if isinstance(obj, Entity):
            self._put(self.entities, obj.name, obj, "entity", origin)
        elif isinstance(obj, FeatureView):
            self._put(self.feature_views, obj.name, obj, "feature view", origin)
            self.add(obj.entity, origin)
            self.add(obj.source, origin)
        elif isinstance(obj, Model):
            self._put(self.models, obj.name, obj, "model", origin)
        elif isinstance(obj, FileSource):
            self._put(self.sources, obj.name, obj, "source", origin)

    @staticmethod
    def _put(table: dict, name: str, obj: object, what: str, origin: str) -> None:  # type: ignore[type-arg]
        existing = table.get(name)
        if existing is None:
            table[name] = obj
        elif existing is not obj and existing.to_dict() != obj.to_dict():  # type: ignore[attr-defined]
            raise DefinitionError(f"{origin}: two different {what}s are named {name!r}")


def _import(path: Path) -> ModuleType:
    module_name = f"_fourloops_definitions_{abs(hash(str(path.resolve())))}"
    target = path / "__init__.py" if path.is_dir() else path
    spec = importlib.util.spec_from_file_location(
        module_name, target, submodule_search_locations=[str(path)] if path.is_dir() else None
    )
    if spec is None or spec.loader is None:
        raise DefinitionError(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except DefinitionError as err:
        sys.modules.pop(module_name, None)
        raise DefinitionError(f"{target}: {err}") from err
    except Exception as err:
        sys.modules.pop(module_name, None)
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.startswith(str(path))]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(target)
        raise DefinitionError(f"{where}: {type(err).__name__}: {err}") from err
    return module


def load_definitions(path: str | Path) -> Definitions:
    """Import ``path`` (a ``.py`` file or a package folder) and collect its definitions.

    Module-level objects are collected (also when reachable only through a
    feature view, like its entity and source). Errors raised while importing
    become a :class:`DefinitionError` naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        raise DefinitionError(f"{path}: definitions not found")
    module = _import(path)
    found = Definitions()
    origin = str(path)
    for name, value in vars(module).items():
        if name.startswith("__"):
            continue
        found.add(value, origin)
    return found
