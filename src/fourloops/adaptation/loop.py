"""What the adaptation loop works with, and the journal of its decisions.

:class:`Loop` gathers the pieces the controller and the rollouts need: the
registry (routing, aliases, versions), the controller's state (lease,
rollouts), the audit journal, the event log as SQL, the alerts the monitor
kept, the project's clock, the model definitions and a way to train. The
project builds it (:meth:`fourloops.Project.loop`); the loop never imports
the server: servers follow what it writes into the registry.

Every decision, the decision to do nothing included, is a :class:`Decision`
written to the audit journal (action ``controller:<kind>``) with its reason
and evidence, so "why did this happen" is one query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from fourloops.clock import Clock
from fourloops.definitions import Model
from fourloops.registry.models import ModelRegistry
from fourloops.storage.alert_log import AlertLog
from fourloops.storage.controller_state import Leases, RolloutLog
from fourloops.storage.metadata import MetadataStore

__all__ = ["ACTOR", "Decision", "Loop"]

#: Who the controller's journal entries and registry changes are by.
ACTOR = "fourloops-controller"


@dataclass(frozen=True)
class Decision:
    """One decision of the loop: what, on which model and version, when, why, and the numbers."""

    kind: str
    model: str
    version: int | None
    at: datetime
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The shape of ``simulate``'s ``actions``."""
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "reason": self.reason,
            "evidence": self.evidence,
        }


@dataclass
class Loop:
    """The adaptation loop's view of a project (see the module docstring)."""

    registry: ModelRegistry
    rollouts: RolloutLog
    leases: Leases
    metadata: MetadataStore
    alerts: AlertLog
    models: Mapping[str, Model]
    query: Callable[[str, str], pa.Table]
    train: Callable[[str], Any]
    clock: Clock
    #: A binary version's calibration curve, ``(model, version) -> P(y = 1)`` at evenly spaced
    #: scores from 0 to 1 (``None``: none can be fitted); what estimated rollout checks use.
    calibration: Callable[[str, int], Sequence[float] | None] | None = None

    def journal(
        self,
        kind: str,
        model: str,
        version: int | None,
        reason: str,
        evidence: Mapping[str, Any] | None = None,
        *,
        actor: str = ACTOR,
    ) -> Decision:
        """Record a decision in the audit journal and return it."""
        decision = Decision(kind, model, version, self.clock(), reason, dict(evidence or {}))
        self.metadata.audit(
            f"controller:{kind}",
            f"model:{model}",
            {"version": version, "reason": reason, "evidence": _jsonable(decision.evidence)},
            actor=actor,
        )
        return decision


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
