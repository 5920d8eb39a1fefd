"""The routing records: how one model's traffic is split, a change of it, an entry of its journal.

Plain frozen records with their checks; :mod:`fourloops.registry.routing`
reads and changes them in the registry, under the model's write lock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fourloops.definitions.lifecycle import Stage
from fourloops.errors import ConfigError

__all__ = [
    "SHARE_SUM_TOLERANCE",
    "UNIT_ID",
    "RoutingChange",
    "RoutingEvent",
    "RoutingSpec",
    "check_share",
    "check_split",
    "check_version",
]

#: The default sticky key: the request's ``unit_id`` (its request id when it has none).
UNIT_ID = "unit_id"
#: Tolerance on A/B shares summing to one.
SHARE_SUM_TOLERANCE = 1e-9


def check_version(value: object, what: str) -> int:
    """``value`` if it is a version number, else :class:`ConfigError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"routing {what} must be a version number (int), got {value!r}")
    return value


def check_share(value: object, what: str) -> float:
    """``value`` as a float if it is a share in [0, 1], else :class:`ConfigError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"routing {what} must be a share in [0, 1], got {value!r}")
    return float(value)


def check_split(split: object) -> dict[int, float]:
    """An A/B split ``{version: share}`` whose shares sum to 1; :class:`ConfigError` otherwise.

    >>> check_split({2: 0.5, 1: 0.5})
    {1: 0.5, 2: 0.5}
    """
    if not isinstance(split, Mapping) or not split:
        raise ConfigError(f"routing ab must map versions to shares, got {split!r}")
    checked = {
        check_version(version, "ab version"): check_share(share, f"ab share of version {version}")
        for version, share in split.items()
    }
    total = math.fsum(checked.values())
    if abs(total - 1.0) > SHARE_SUM_TOLERANCE:
        raise ConfigError(f"routing ab shares must sum to 1, got {total:g} ({dict(split)!r})")
    return dict(sorted(checked.items()))


@dataclass(frozen=True)
class RoutingSpec:
    """How one model's traffic is routed now (see the module docstring); immutable.

    ``stage`` is where a rollout stands (``none`` when none is in progress,
    ``shadow``, ``canary``, ``production`` once the candidate took over).
    """

    model: str
    champion: int | None = None
    canary: int | None = None
    canary_share: float = 0.0
    shadow: int | None = None
    ab: dict[int, float] | None = None
    stage: Stage = Stage.NONE
    sticky_key: str = UNIT_ID
    revision: int = 0
    updated_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for what in ("champion", "canary", "shadow"):
            value = getattr(self, what)
            if value is not None:
                check_version(value, what)
        object.__setattr__(self, "canary_share", check_share(self.canary_share, "canary_share"))
        if self.canary is None and self.canary_share > 0.0:
            raise ConfigError(f"routing canary_share is {self.canary_share} but no canary version is set")
        if self.ab is not None:
            object.__setattr__(self, "ab", check_split(self.ab))
        try:
            object.__setattr__(self, "stage", Stage(self.stage))
        except ValueError:
            raise ConfigError(f"routing stage {self.stage!r} is not a stage") from None
        if not isinstance(self.sticky_key, str) or not self.sticky_key:
            raise ConfigError(f"routing sticky_key must be a field name, got {self.sticky_key!r}")

    def versions(self) -> set[int]:
        """Every version this routing sends requests to or scores in shadow."""
        found = {v for v in (self.champion, self.canary, self.shadow) if v is not None}
        return found | set(self.ab or {})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (A/B versions as string keys)."""
        return {
            "model": self.model,
            "champion": self.champion,
            "canary": self.canary,
            "canary_share": self.canary_share,
            "shadow": self.shadow,
            "ab": None if self.ab is None else {str(v): s for v, s in self.ab.items()},
            "stage": self.stage.value,
            "sticky_key": self.sticky_key,
            "revision": self.revision,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingSpec:
        """The spec of a :meth:`to_dict` mapping (ConfigError names what is wrong)."""
        try:
            ab = data.get("ab")
            updated = data.get("updated_at")
            return cls(
                model=str(data["model"]),
                champion=data.get("champion"),
                canary=data.get("canary"),
                canary_share=data.get("canary_share", 0.0),
                shadow=data.get("shadow"),
                ab=None if ab is None else {int(v): s for v, s in ab.items()},
                stage=Stage(data.get("stage", Stage.NONE)),
                sticky_key=data.get("sticky_key", UNIT_ID),
                revision=int(data.get("revision", 0)),
                updated_at=None if updated is None else datetime.fromisoformat(updated),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"invalid routing {dict(data)!r}: {err}") from err


@dataclass(frozen=True)
class RoutingChange:
    """The routing of a model before and after one change."""

    model: str
    before: RoutingSpec
    after: RoutingSpec

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"model": self.model, "before": self.before.to_dict(), "after": self.after.to_dict()}


@dataclass(frozen=True)
class RoutingEvent:
    """One entry of a model's routing journal: the routing after a change, who made it and why."""

    id: int
    model: str
    revision: int
    spec: RoutingSpec
    actor: str
    at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``at`` as ISO 8601)."""
        return {
            "id": self.id,
            "model": self.model,
            "revision": self.revision,
            "spec": self.spec.to_dict(),
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
        }
