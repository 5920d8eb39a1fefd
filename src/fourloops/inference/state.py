"""What a server serves right now: the routing table of one model and its loaded predictors.

:func:`read_serving_state` reads the model's routing from the registry (its
:class:`~fourloops.registry.routing.RoutingSpec`: champion, canary and share,
shadow, an A/B split) and the champion's history (for the previous-version
fallback), and loads any version not loaded yet, *before* anything switches.
The result is immutable and replaced whole, so a request sees the old state
or the new one, never half of each. The server only reads routing: every
change goes through the registry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fourloops.definitions.lifecycle import Alias
from fourloops.errors import NotFoundError
from fourloops.inference.routing import RoutingTable
from fourloops.registry.aliases import replay
from fourloops.registry.loading import load_version
from fourloops.registry.models import ModelRegistry
from fourloops.storage.artifacts import ArtifactStore

__all__ = ["ServingState", "read_serving_state"]


@dataclass(frozen=True)
class ServingState:
    """What the registry says right now, with the predictors loaded for it (immutable: swapped whole)."""

    table: RoutingTable
    predictors: dict[int, Any]
    previous: int | None  # the version a rollback would restore (the "previous version" fallback)
    loaded_at: float


def read_serving_state(
    name: str,
    *,
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    task: str,
    current: ServingState | None = None,
) -> ServingState | None:
    """The state the registry asks for now, or None when it is ``current`` already.

    Versions already loaded in ``current`` are reused; the others are loaded
    (and their artifacts verified) here.
    """
    spec = registry.routing(name)
    if spec.champion is None:
        raise NotFoundError(f"model {name!r} has no champion; promote a version first")
    table = RoutingTable.from_spec(spec)
    stack = replay(registry.alias_history(name, Alias.CHAMPION))
    previous = stack[-2] if len(stack) >= 2 else None
    if current is not None and current.table == table and current.previous == previous:
        return None
    predictors = {}
    for version in table.versions() | ({previous} if previous else set()):
        if current is not None and version in current.predictors:
            predictors[version] = current.predictors[version]
        else:
            predictors[version] = load_version(artifacts, registry.get_version(name, version), task=task)
    return ServingState(table, predictors, previous, time.monotonic())
