"""Reading features for serving: values, their age, and explicit missing/expired markers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fourloops.definitions import FeatureView
from fourloops.errors import SchemaError
from fourloops.storage.online import OnlineStore

__all__ = ["OnlineFeatures", "read_online_features"]


@dataclass
class OnlineFeatures:
    """Features of one entity row: values (None when not fresh) and, per view, status and age."""

    entity: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # view -> ok / missing / expired
    age_seconds: dict[str, float | None] = field(default_factory=dict)
    event_time: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_online_features(
    store: OnlineStore,
    grouped: Mapping[str, list[str]],
    views: Mapping[str, FeatureView],
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    full_names: bool = False,
) -> list[OnlineFeatures]:
    """Look up ``grouped`` features (view -> fields) for each entity row.

    A value older than its view's ttl is reported ``expired`` and returned as
    None, never as fresh; an entity never materialised is ``missing``.
    """
    results = [OnlineFeatures(entity=dict(row)) for row in entity_rows]
    for view_name, fields in grouped.items():
        view = views[view_name]
        keys = []
        for i, row in enumerate(entity_rows):
            try:
                keys.append(tuple(row[k] for k in view.entity.join_keys))
            except KeyError as err:
                raise SchemaError(
                    f"entity row {i}: missing join key {err.args[0]!r} of view {view_name!r}"
                ) from None
        found = store.read(view_name, keys, ttl=view.ttl, now=now, features=fields)
        for res, value in zip(results, found, strict=True):
            res.status[view_name] = value.status.value
            res.age_seconds[view_name] = None if value.age is None else value.age.total_seconds()
            res.event_time[view_name] = value.event_time.isoformat() if value.event_time else None
            for f in fields:
                name = f"{view_name}__{f}" if full_names else f
                res.values[name] = value.values.get(f) if value.status.value == "ok" else None
    return results
