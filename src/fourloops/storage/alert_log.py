"""The monitor's alerts, kept: one row per episode, and snoozes, in the metadata database.

An alert is stored by a key made of what identifies its episode: model,
route, kind, column, segment, the rule that raised it, and where the episode
began (its first window's start, or its first window's index for windows by
row count). A later monitor run that sees the same episode updates it
(``last_seen_at``, the number of windows) instead of adding one, so that
sinks are told about an alert once; so does a run that looks back over its
last few windows and finds an episode still going on (the same alert whose
stored episode reaches the run's first window: continued, not new). A snooze silences a kind of alert of a
model (for one column, or all columns) until a time.

>>> from datetime import UTC, datetime, timedelta
>>> from fourloops.storage.metadata import MetadataStore
>>> log = AlertLog(MetadataStore("sqlite://"))
>>> now = datetime(2024, 1, 1, tzinfo=UTC)
>>> alert = {"kind": "input_drift", "severity": "warning", "column": "x", "segment": None, "window": 3,
...          "start": None, "end": None, "windows": [3], "evidence": {}, "cause": "c", "action": "a"}
>>> log.record("m", 1, "champion", [alert], at=now), log.record("m", 1, "champion", [alert], at=now)
([True], [False])
>>> log.snooze("m", "input_drift", column="x", until=now + timedelta(days=1), reason="known", at=now)
>>> log.snoozed("m", at=now)
[('input_drift', 'x')]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from fourloops.storage import tables as t
from fourloops.storage.metadata import MetadataStore, default_actor

__all__ = ["AlertLog", "alert_key"]


def alert_key(model: str, route: str, alert: Mapping[str, Any]) -> str:
    """What identifies an alert's episode, hashed (see the module docstring)."""
    begins = alert.get("start") or f"window {alert.get('windows', [alert.get('window')])[0]}"
    parts = [
        model,
        route,
        alert["kind"],
        alert.get("column"),
        alert.get("segment"),
        alert.get("rule", ""),
        begins,
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _continue(
    conn: sa.Connection, model: str, route: str, alert: Mapping[str, Any], windows: int, at: datetime
) -> bool:
    """Extend the stored episode that ``alert`` continues, if there is one; whether there was.

    A monitor run that looks back over the last few windows sees an ongoing episode begin at its
    own first window: the same alert (model, route, kind, column, segment) whose stored episode
    reaches that window is the same episode, carried on, not a new one to send again.
    """
    start, end = _time(alert.get("start")), _time(alert.get("end"))
    if start is None or end is None:
        return False
    a = t.alerts
    column, segment = alert.get("column"), alert.get("segment")
    row = conn.execute(
        sa.select(a.c.id, a.c.window_end, a.c.windows)
        .where(
            a.c.model == model,
            a.c.route == route,
            a.c.kind == alert["kind"],
            a.c.column_name.is_(None) if column is None else a.c.column_name == column,
            a.c.segment.is_(None) if segment is None else a.c.segment == segment,
            a.c.window_start <= start,
            a.c.window_end >= start,
        )
        .order_by(a.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return False
    stored_end = _aware(row.window_end)
    total = int(row.windows)
    if end > stored_end:  # windows of equal length: count those past the stored end
        width = (end - start) / max(windows, 1)
        total += max(1, round((end - stored_end) / width)) if width.total_seconds() > 0 else 1
    conn.execute(
        a.update()
        .where(a.c.id == row.id)
        .values(last_seen_at=at, window_end=max(end, stored_end), windows=total)
    )
    return True


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class AlertLog:
    """Alerts and snoozes of every model, in the metadata store (see the module docstring)."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"AlertLog({self.metadata!r})"

    def record(
        self,
        model: str,
        version: int | None,
        route: str,
        alerts: Sequence[Mapping[str, Any]],
        *,
        at: datetime,
    ) -> list[bool]:
        """Store ``alerts`` (``Alert.to_dict()`` shapes); for each, whether it is new (not seen before)."""
        new = []
        a = t.alerts
        with self.metadata.transaction() as conn:
            for alert in alerts:
                key = alert_key(model, route, alert)
                windows = len(alert.get("windows") or [alert.get("window")])
                found = conn.execute(
                    sa.select(a.c.id, a.c.window_end, a.c.windows).where(a.c.key == key)
                ).first()
                if found is not None:
                    end = _time(alert.get("end"))
                    stored = None if found.window_end is None else _aware(found.window_end)
                    conn.execute(
                        a.update()
                        .where(a.c.id == found.id)
                        .values(
                            last_seen_at=at,
                            windows=max(windows, int(found.windows)),
                            window_end=end
                            if stored is None or (end is not None and end > stored)
                            else stored,
                        )
                    )
                    new.append(False)
                    continue
                if _continue(conn, model, route, alert, windows, at):
                    new.append(False)
                    continue
                conn.execute(
                    a.insert().values(
                        key=key,
                        model=model,
                        version=version,
                        route=route,
                        kind=alert["kind"],
                        severity=alert["severity"],
                        column_name=alert.get("column"),
                        segment=alert.get("segment"),
                        window_start=_time(alert.get("start")),
                        window_end=_time(alert.get("end")),
                        windows=windows,
                        evidence=json.loads(json.dumps(alert.get("evidence", {}), default=str)),
                        cause=alert["cause"],
                        action=alert["action"],
                        first_seen_at=at,
                        last_seen_at=at,
                    )
                )
                new.append(True)
        return new

    def alerts(self, model: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """Stored alerts, newest first."""
        a = t.alerts
        query = sa.select(a).order_by(a.c.id.desc()).limit(limit)
        if model is not None:
            query = query.where(a.c.model == model)
        with self.metadata.transaction() as conn:
            rows = conn.execute(query).mappings().all()
        out = []
        for r in rows:
            row = dict(r)
            row["column"] = row.pop("column_name")
            for name in ("window_start", "window_end", "first_seen_at", "last_seen_at"):
                value = row[name]
                if value is not None and value.tzinfo is None:
                    from datetime import UTC

                    row[name] = value.replace(tzinfo=UTC)
            out.append(row)
        return out

    def snooze(
        self,
        model: str,
        kind: str,
        *,
        until: datetime,
        column: str | None = None,
        reason: str = "",
        at: datetime,
        actor: str | None = None,
    ) -> None:
        """Silence ``kind`` alerts of ``model`` (for ``column``, or all) until ``until``; audited."""
        with self.metadata.transaction() as conn:
            conn.execute(
                t.alert_snoozes.insert().values(
                    model=model,
                    kind=kind,
                    column_name=column,
                    until=until,
                    reason=reason,
                    actor=actor or default_actor(),
                    at=at,
                )
            )
        self.metadata.audit(
            "snooze",
            f"model:{model}",
            {"kind": kind, "column": column, "until": until.isoformat(), "reason": reason},
            actor=actor,
        )

    def snoozed(self, model: str, *, at: datetime) -> list[tuple[str, str | None]]:
        """The ``(kind, column)`` pairs of ``model`` silenced at ``at``."""
        s = t.alert_snoozes
        with self.metadata.transaction() as conn:
            rows = conn.execute(
                sa.select(s.c.kind, s.c.column_name).where(s.c.model == model, s.c.until > at).distinct()
            ).all()
        return sorted((str(r.kind), r.column_name) for r in rows)
