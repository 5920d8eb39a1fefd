"""What the model registry stores: versions with their status, stage and gate report; model summaries.

Plain frozen records, read by every loop (the server, training, the CLI);
:class:`~fourloops.registry.models.ModelRegistry` creates and changes them.
They are stored as JSON and serialised at the edge (``to_dict``/``from_dict``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from fourloops.clock import as_utc
from fourloops.definitions.lifecycle import Stage

__all__ = [
    "MAX_VERSION",
    "GateReport",
    "GateVerdict",
    "ModelSummary",
    "ModelVersion",
    "Stage",
    "VersionStatus",
    "is_version_number",
]

#: The highest version number a registry can hold (its columns are 32-bit integers on PostgreSQL).
MAX_VERSION = 2**31 - 1


def is_version_number(version: int) -> bool:
    """Whether ``version`` can name a version at all (1 .. :data:`MAX_VERSION`).

    Checked before any query: a larger number is an error of the database
    (PostgreSQL: integer out of range; SQLite: beyond 64 bits, an
    ``OverflowError``) instead of a version that does not exist.

    >>> is_version_number(3), is_version_number(0), is_version_number(2**31)
    (True, False, False)
    """
    return 0 < version <= MAX_VERSION


class VersionStatus(enum.StrEnum):
    """Whether a training run produced a usable version."""

    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class GateVerdict:
    """One gate's verdict on a candidate, with every number that led to it."""

    gate: str
    passed: bool
    message: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"gate": self.gate, "passed": self.passed, "message": self.message, "numbers": self.numbers}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateVerdict:
        """The verdict stored as ``data`` (``name`` is read as an old spelling of ``gate``)."""
        return cls(
            gate=str(data.get("gate", data.get("name", "?"))),
            passed=bool(data.get("passed", False)),
            message=str(data.get("message", "")),
            numbers=dict(data.get("numbers") or {}),
        )


@dataclass(frozen=True)
class GateReport:
    """Every gate's verdict on one version, and whether they all passed.

    ``passed`` is ``None`` for a version nobody judged (registered without a
    report): nothing blocks it, and nothing vouches for it either.

    >>> report = GateReport.judge([GateVerdict("beats_baseline", True), GateVerdict("latency_budget", False)])
    >>> report.passed, report.failed
    (False, ['latency_budget'])
    >>> GateReport.from_dict(report.to_dict()) == report, GateReport.from_dict({}).passed
    (True, None)
    """

    passed: bool | None = None
    verdicts: tuple[GateVerdict, ...] = ()

    @classmethod
    def judge(cls, verdicts: Sequence[GateVerdict]) -> GateReport:
        """The report of these verdicts: passed when every one passed."""
        return cls(all(v.passed for v in verdicts), tuple(verdicts))

    @property
    def failed(self) -> list[str]:
        """The gates that failed, in order."""
        return [v.gate for v in self.verdicts if not v.passed]

    @property
    def blocks(self) -> bool:
        """Whether this report keeps the version from traffic unless forced (a gate failed)."""
        return self.passed is False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``{}`` for a version nobody judged)."""
        if self.passed is None and not self.verdicts:
            return {}
        return {"passed": self.passed, "verdicts": [v.to_dict() for v in self.verdicts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GateReport:
        """The report stored as ``data``."""
        if not data:
            return cls()
        verdicts = tuple(
            GateVerdict.from_dict(v) for v in data.get("verdicts") or [] if isinstance(v, Mapping)
        )
        passed = data.get("passed")
        return cls(None if passed is None else bool(passed), verdicts)


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
    gates: GateReport = field(default_factory=GateReport)
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
            gates=GateReport.from_dict(row["gates"]),
        )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (enums as strings, ``created_at`` as ISO 8601)."""
        return {
            **asdict(self),
            "status": self.status.value,
            "stage": self.stage.value,
            "created_at": self.created_at.isoformat(),
            "gates": self.gates.to_dict(),
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
