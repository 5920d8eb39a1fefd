"""What the model registry stores: versions with their status and stage, and model summaries.

Plain frozen records, read by every loop (the server, training, the CLI);
:class:`~fourloops.registry.models.ModelRegistry` creates and changes them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from fourloops.clock import as_utc

__all__ = ["ModelSummary", "ModelVersion", "Stage", "VersionStatus"]


class VersionStatus(enum.StrEnum):
    """Whether a training run produced a usable version."""

    READY = "ready"
    FAILED = "failed"


class Stage(enum.StrEnum):
    """Where a version is in its lifecycle (set by the rollout controller or by hand)."""

    NONE = "none"
    STAGING = "staging"
    SHADOW = "shadow"
    CANARY = "canary"
    PRODUCTION = "production"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, as stored."""

    id: int
    model: str
    version: int
    status: VersionStatus
    stage: Stage
    created_at: datetime
    created_by: str
    artifact: dict[str, Any] | None = None
    format: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    description: str = ""
    tags: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ModelVersion:
        """The version stored in ``row`` (a database row's mapping)."""
        values = {f.name: row[f.name] for f in fields(cls)}
        values.update(
            status=VersionStatus(row["status"]),
            stage=Stage(row["stage"]),
            created_at=as_utc(row["created_at"]),
        )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (enums as strings, ``created_at`` as ISO 8601)."""
        return {
            **asdict(self),
            "status": self.status.value,
            "stage": self.stage.value,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class ModelSummary:
    """One model with its version count, latest version and aliases."""

    name: str
    task: str
    created_at: datetime
    description: str
    spec: dict[str, Any] | None
    tags: dict[str, Any]
    versions: int
    latest: int | None
    aliases: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``created_at`` as ISO 8601)."""
        return {**asdict(self), "created_at": self.created_at.isoformat()}
