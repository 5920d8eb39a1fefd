"""Loading a registered version for scoring, after its artifact's hash is verified."""

from __future__ import annotations

from typing import Any

from fourloops.errors import RegistryError
from fourloops.registry.formats import Predictor, load_model
from fourloops.storage.artifacts import ArtifactRef, ArtifactStore

__all__ = ["load_version"]


def load_version(artifacts: ArtifactStore, version: Any, *, task: str) -> Predictor:
    """The predictor of a registered version (a ``ModelVersion``).

    The artifact is opened through the store, which checks its SHA-256 and
    size first: a tampered or truncated artifact raises ``ArtifactIntegrityError``.
    """
    if version.artifact is None or version.format is None:
        raise RegistryError(f"model {version.model!r} v{version.version} has no artifact ({version.status})")
    path = artifacts.open(ArtifactRef.from_dict(version.artifact))
    return load_model(path, version.format, task=task, meta=version.artifact.get("meta", {}))
