"""Entities: the things features describe, identified by join keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fourloops.definitions.hashing import content_hash
from fourloops.definitions.naming import check_name
from fourloops.errors import DefinitionError

__all__ = ["Entity"]


class Entity:
    """Something a feature describes: an airport, a customer, a device.

    >>> Entity("airport", join_keys=["origin"])
    Entity('airport', join_keys=['origin'])
    """

    def __init__(self, name: str, *, join_keys: Sequence[str], description: str = "") -> None:
        self.name = check_name(name, "Entity")
        if isinstance(join_keys, str) or not join_keys:
            raise DefinitionError(f"Entity {name!r}: join_keys must be a non-empty list of columns")
        self.join_keys = [check_name(k, f"Entity {name!r} join key") for k in join_keys]
        self.description = description

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "join_keys": list(self.join_keys)}

    @property
    def version(self) -> str:
        return content_hash(self.to_dict())

    def __repr__(self) -> str:
        return f"Entity({self.name!r}, join_keys={self.join_keys!r})"
