"""What a server serves right now: the routing table of one model and its loaded predictors.

:func:`read_serving_state` reads the aliases (champion, canary, shadow), the
canary share or an A/B split (model tags, set through the admin API) and the
champion's history (for the previous-version fallback) from the registry, and
loads any version not loaded yet, *before* anything switches. The result is
immutable and replaced whole, so a request sees the old state or the new one,
never half of each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fourloops.errors import ConfigError, NotFoundError
from fourloops.inference.routing import RoutingTable
from fourloops.registry.aliases import replay
from fourloops.registry.loading import load_version
from fourloops.registry.models import ModelRegistry
from fourloops.storage.artifacts import ArtifactStore

__all__ = ["AB_SPLIT_TAG", "CANARY_SHARE_TAG", "ServingState", "ab_split", "read_serving_state"]

#: Model-tag name of the canary's traffic share (set by the admin routes).
CANARY_SHARE_TAG = "canary_share"
#: Model-tag name of an A/B split, ``{"<version>": share, ...}`` summing to 1. While it is
#: set it decides which version answers, in place of the champion/canary split.
AB_SPLIT_TAG = "ab_split"


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
    aliases = registry.aliases(name)
    champion = aliases.get("champion")
    if champion is None:
        raise NotFoundError(f"model {name!r} has no champion; promote a version first")
    canary, shadow = aliases.get("canary"), aliases.get("shadow")
    tags = registry.model(name).tags
    share = float(tags.get(CANARY_SHARE_TAG, 0.0)) if canary else 0.0
    if canary == champion:
        canary, share = None, 0.0
    if shadow == champion:
        shadow = None
    split = tags.get(AB_SPLIT_TAG)
    if split:
        table = RoutingTable(champion, shadow=shadow, ab=ab_split(split), model=name)
    else:
        table = RoutingTable(
            champion, canary=canary, canary_share=share if canary else 0.0, shadow=shadow, model=name
        )
    stack = replay(registry.alias_history(name, "champion"))
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


def ab_split(value: object) -> dict[int, float]:
    """An A/B split from its tag form (``{"1": 0.5, "2": 0.5}``); ConfigError names what is wrong."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"an A/B split maps versions to shares, got {value!r}")
    split: dict[int, float] = {}
    for key, share in value.items():
        try:
            version = int(key)
        except (TypeError, ValueError):
            raise ConfigError(f"A/B split: {key!r} is not a version number") from None
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise ConfigError(f"A/B split: the share of version {version} must be a number, got {share!r}")
        split[version] = float(share)
    RoutingTable(min(split), ab=split)  # checks versions and shares (they must sum to 1)
    return split
