"""A brute-force point-in-time join, written from the rule alone, to check engines against.

Plain Python loops over row dictionaries; quadratic and obviously slow, but easy
to read against the rule in :mod:`fourloops.engines.base`:

for each entity row (time ``t``) and view, among view rows with equal keys,
``event <= t`` and (with a created column) ``created <= t``, take the row with
the greatest ``(event, created, position)``; null if there is none (missing) or
if its event is before ``t - ttl`` (expired).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

Row = dict[str, Any]


@dataclass
class OracleView:
    name: str
    rows: list[Row]  # in source order
    join_keys: list[str]
    entity_keys: list[str]
    timestamp: str
    created: str | None
    ttl: timedelta
    features: dict[str, str]


def best_row(view: OracleView, keys: tuple[Any, ...], t: datetime | None) -> tuple[int, Row] | None:
    """The visible row preferred by the rule, with its position, or None."""
    if t is None or any(k is None for k in keys):
        return None
    best: tuple[tuple[Any, ...], int, Row] | None = None
    for position, row in enumerate(view.rows):
        if tuple(row[k] for k in view.join_keys) != keys:
            continue
        event = row[view.timestamp]
        if event is None or event > t:
            continue
        created = None
        if view.created is not None:
            created = row[view.created]
            if created is None or created > t:
                continue
        rank = (event, created, position) if created is not None else (event, position)
        if best is None or rank > best[0]:
            best = (rank, position, row)
    return None if best is None else (best[1], best[2])


def pit_join(
    entities: list[Row], timestamp: str, views: list[OracleView]
) -> tuple[list[Row], dict[str, list[int]]]:
    """Rows of the joined result and per-view ``[found, missing, expired]`` counts."""
    counts = {v.name: [0, 0, 0] for v in views}
    result = []
    for entity in entities:
        out = dict(entity)
        t = entity[timestamp]
        for view in views:
            keys = tuple(entity[k] for k in view.entity_keys)
            match = best_row(view, keys, t)
            if match is None:
                counts[view.name][1] += 1
                values: dict[str, Any] = {}
            elif match[1][view.timestamp] < t - view.ttl:
                counts[view.name][2] += 1
                values = {}
            else:
                counts[view.name][0] += 1
                values = match[1]
            for column, name in view.features.items():
                out[name] = values.get(column)
        result.append(out)
    return result, counts
