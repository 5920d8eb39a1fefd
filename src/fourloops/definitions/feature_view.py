"""Feature views: a set of features of one entity, read from one source under a contract."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from fourloops.definitions.contract import Contract
from fourloops.definitions.durations import format_duration, parse_duration
from fourloops.definitions.entity import Entity
from fourloops.definitions.fields import Field
from fourloops.definitions.hashing import content_hash
from fourloops.definitions.naming import check_name
from fourloops.definitions.source import FileSource
from fourloops.errors import DefinitionError

__all__ = ["FeatureView", "Transform"]

#: A transformation takes the validated rows of a source (a Polars DataFrame)
#: and returns them with derived feature columns added. It runs wherever feature
#: values are produced (offline store, materialisation), so training and serving
#: share one implementation.
Transform = Callable[[Any], Any]


class FeatureView:
    """Features of one entity, from one source, checked by one contract.

    Parameters
    ----------
    name:
        Unique name; features are addressed as ``"name:field"``.
    entity:
        The entity the features describe; its join keys must be source columns.
    source:
        Where rows come from (event time and optional created time).
    ttl:
        How long a value stays valid after its event time (``"3h"``). A
        point-in-time lookup at ``t`` sees a value only if its event time is in
        ``[t - ttl, t]``; an online read reports an older value as expired.
    contract:
        The rules rows must follow; its fields are the view's features.
    transform:
        Optional function (Polars DataFrame -> DataFrame) adding derived columns.
    derived:
        Field types of the columns ``transform`` adds (they are validated too).
    """

    def __init__(
        self,
        name: str,
        *,
        entity: Entity,
        source: FileSource,
        ttl: str | int | float | timedelta,
        contract: Contract,
        transform: Transform | None = None,
        derived: Mapping[str, Field] | None = None,
        online: bool = True,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.name = check_name(name, "FeatureView")
        if not isinstance(entity, Entity):
            raise DefinitionError(f"FeatureView {name!r}: entity must be an fl.Entity")
        if not isinstance(source, FileSource):
            raise DefinitionError(f"FeatureView {name!r}: source must be a source such as fl.FileSource")
        if not isinstance(contract, Contract):
            raise DefinitionError(f"FeatureView {name!r}: contract must be an fl.Contract")
        self.entity = entity
        self.source = source
        self.ttl = parse_duration(ttl, what=f"FeatureView {name!r} ttl")
        self.contract = contract
        if transform is not None and not callable(transform):
            raise DefinitionError(f"FeatureView {name!r}: transform must be callable")
        if derived and transform is None:
            raise DefinitionError(f"FeatureView {name!r}: derived fields need a transform")
        if transform is not None and not derived:
            raise DefinitionError(
                f"FeatureView {name!r}: declare the columns the transform adds with derived={{...}}"
            )
        self.transform = transform
        self.derived: dict[str, Field] = dict(derived or {})
        reserved = set(entity.join_keys) | {source.timestamp, source.created}
        for fname in list(contract.fields) + list(self.derived):
            if fname in self.derived and fname in contract.fields:
                raise DefinitionError(
                    f"FeatureView {name!r}: derived field {fname!r} is also in the contract"
                )
        for key in entity.join_keys:
            if key in self.derived:
                raise DefinitionError(f"FeatureView {name!r}: join key {key!r} cannot be derived")
        self._reserved = {r for r in reserved if r}
        self.online = online
        self.description = description
        self.tags = dict(tags or {})

    @property
    def features(self) -> dict[str, Field]:
        """Feature name -> field type (contract fields that are not keys or times, then derived)."""
        out = {n: f for n, f in self.contract.fields.items() if n not in self._reserved}
        out.update(self.derived)
        return out

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "entity": self.entity.to_dict(),
            "source": self.source.to_dict(),
            "ttl": format_duration(self.ttl),
            "contract": self.contract.to_dict(),
            "online": self.online,
        }
        if self.transform is not None:
            spec["transform"] = _callable_fingerprint(self.transform)
            spec["derived"] = {n: f.to_dict() for n, f in self.derived.items()}
        return spec

    @property
    def version(self) -> str:
        """Content hash of the view's meaning (source, contract, ttl, transformation code)."""
        return content_hash(self.to_dict())

    def __repr__(self) -> str:
        return (
            f"FeatureView({self.name!r}, entity={self.entity.name!r}, source={self.source!r}, "
            f"ttl={format_duration(self.ttl)!r}, features={list(self.features)!r})"
        )


def _callable_fingerprint(func: Callable[..., Any]) -> str:
    """Hash of a function's source code (its qualified name when the source is unavailable)."""
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError):
        text = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
