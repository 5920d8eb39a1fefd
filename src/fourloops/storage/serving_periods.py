"""What servers counted per model and period, in the metadata database: answers, rejections, CPU.

The event log holds every prediction; two facts about serving it cannot hold
are kept here instead: the requests a model's contract **rejected** (they have
no prediction to log), by field and rule, and the server's **CPU time**. Each
server process adds one row per model every refresh interval (and at
shut-down) with what it counted in that period; the monitor sums the rows
whose period ends in a window. Rows from several processes (workers, hosts)
simply add up.

A process writes a row per model and minute at most; rows older than a day or
two are **rolled up** (:meth:`ServingPeriods.roll_up`, run by every
compaction) into one row per model and hour, which keeps the total of every
window whose edges fall on whole hours (every window of a day or of whole
hours) and bounds the table at 24 rows per model and day.

>>> from datetime import UTC, datetime, timedelta
>>> from fourloops.storage.metadata import MetadataStore
>>> periods = ServingPeriods(MetadataStore("sqlite://"))
>>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
>>> periods.record([ServingPeriod("m", "h:1", t0, t0 + timedelta(seconds=5), 98, {"age": {"min": 2}}, 0.4)])
>>> total = periods.totals("m", since=t0, until=t0 + timedelta(days=1))
>>> total.predictions, total.rejected, total.rejections, round(total.cpu_ms_per_1000, 1)
(98, 2, {'age': {'min': 2}}, 4081.6)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fourloops.storage import tables as t
from fourloops.storage.metadata import MetadataStore

__all__ = ["ROLLED_UP", "RollUp", "ServingPeriod", "ServingPeriods", "ServingTotals"]

#: The ``process`` of a row merged from several (processes and periods) by :meth:`ServingPeriods.roll_up`.
ROLLED_UP = "*"
_HOUR = timedelta(hours=1)


def _count(rejections: Mapping[str, Mapping[str, int]]) -> int:
    return sum(int(n) for rules in rejections.values() for n in rules.values())


@dataclass(frozen=True)
class ServingPeriod:
    """One server process's counts for one model over ``[start, end)``.

    ``rejections`` maps a field to its broken rules and how many requests broke each; a request
    that broke several rules counts once in :attr:`rejected`, which is given apart for that reason
    (by default, the requests counted in ``rejections``).
    """

    model: str
    process: str
    start: datetime
    end: datetime
    predictions: int
    rejections: Mapping[str, Mapping[str, int]]
    cpu_seconds: float
    rejected: int | None = None

    @property
    def requests_rejected(self) -> int:
        return _count(self.rejections) if self.rejected is None else self.rejected


@dataclass
class ServingTotals:
    """Sums over the periods ending in a time range."""

    periods: int = 0
    predictions: int = 0
    rejected: int = 0
    rejections: dict[str, dict[str, int]] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    def add(self, predictions: int, rejected: int, rejections: Mapping[str, Any], cpu: float) -> None:
        self.periods += 1
        self.predictions += predictions
        self.rejected += rejected
        self.cpu_seconds += cpu
        for name, rules in rejections.items():
            mine = self.rejections.setdefault(str(name), {})
            for rule, n in rules.items():
                mine[str(rule)] = mine.get(str(rule), 0) + int(n)

    @property
    def rejection_rate(self) -> float | None:
        """Share of the requests that reached the model's contract which it rejected."""
        seen = self.predictions + self.rejected
        return self.rejected / seen if seen else None

    @property
    def cpu_ms_per_1000(self) -> float | None:
        """Server CPU milliseconds per 1,000 predictions (None without predictions)."""
        return self.cpu_seconds * 1e6 / self.predictions if self.predictions else None

    def by_rule(self) -> dict[str, int]:
        """Rejected requests per rule, over every field."""
        out: dict[str, int] = {}
        for rules in self.rejections.values():
            for rule, n in rules.items():
                out[rule] = out.get(rule, 0) + n
        return out


@dataclass(frozen=True)
class RollUp:
    """What one roll-up did: the servers' rows merged (``rows_read``) and the hourly rows written."""

    rows_read: int = 0
    rows_written: int = 0


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _hour(when: datetime) -> datetime:
    """The whole hour (UTC) ``when`` falls in."""
    return _utc(when).replace(minute=0, second=0, microsecond=0)


class ServingPeriods:
    """The serving periods of every model (see the module docstring)."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"ServingPeriods({self.metadata!r})"

    def record(self, periods: Sequence[ServingPeriod]) -> None:
        """Add ``periods`` in one transaction."""
        if not periods:
            return
        rows = [
            {
                "model": p.model,
                "process": p.process,
                "period_start": p.start,
                "period_end": p.end,
                "predictions": int(p.predictions),
                "rejected": int(p.requests_rejected),
                "rejections": {
                    str(k): {str(r): int(n) for r, n in v.items()} for k, v in p.rejections.items()
                },
                "cpu_seconds": float(p.cpu_seconds),
            }
            for p in periods
        ]
        with self.metadata.transaction() as conn:
            conn.execute(t.serving_periods.insert(), rows)

    def roll_up(self, *, before: datetime) -> RollUp:
        """Merge the servers' rows of every model and whole hour before ``before`` into one row each.

        A row belongs to the hour its period ends in, as it belongs to the window its period
        ends in; the merged row ends where the hour's last row ended, so every window whose edges
        are whole hours keeps its totals. Only hours that ended by ``before`` are touched. Each
        server row is read once: it is merged into its hour's row (``process`` :data:`ROLLED_UP`),
        with the rows already merged there if any, so a roll-up reads what came since the last one,
        not the whole history (idempotent). One transaction, its rows locked where the database
        can (PostgreSQL), so that two compactions never merge the same rows twice.
        """
        cutoff = _utc(before).replace(minute=0, second=0, microsecond=0)
        s = t.serving_periods
        fresh = (
            sa.select(s)
            .where(s.c.period_end < cutoff, s.c.process != ROLLED_UP)
            .order_by(s.c.id)
            .with_for_update()
        )
        with self.metadata.transaction() as conn:
            groups: dict[tuple[str, datetime], list[Any]] = {}
            for row in conn.execute(fresh).all():
                groups.setdefault((row.model, _hour(row.period_end)), []).append(row)
            if not groups:
                return RollUp()
            read = sum(len(rows) for rows in groups.values())
            hours = [hour for _, hour in groups]
            merged_before = (
                sa.select(s)
                .where(
                    s.c.process == ROLLED_UP,
                    s.c.model.in_(sorted({model for model, _ in groups})),
                    s.c.period_end >= min(hours),
                    s.c.period_end < max(hours) + _HOUR,
                )
                .with_for_update()
            )
            for row in conn.execute(merged_before).all():
                key = (row.model, _hour(row.period_end))
                if key in groups:
                    groups[key].append(row)
            merged: list[dict[str, Any]] = []
            gone: list[int] = []
            for (model, _), rows in groups.items():
                total = ServingTotals()
                for row in rows:
                    total.add(
                        int(row.predictions), int(row.rejected), row.rejections or {}, float(row.cpu_seconds)
                    )
                merged.append(
                    {
                        "model": model,
                        "process": ROLLED_UP,
                        "period_start": min(_utc(r.period_start) for r in rows),
                        "period_end": max(_utc(r.period_end) for r in rows),
                        "predictions": total.predictions,
                        "rejected": total.rejected,
                        "rejections": total.rejections,
                        "cpu_seconds": total.cpu_seconds,
                    }
                )
                gone.extend(r.id for r in rows)
            for first in range(0, len(gone), 500):  # bounded IN lists
                conn.execute(s.delete().where(s.c.id.in_(gone[first : first + 500])))
            conn.execute(s.insert(), merged)
        return RollUp(read, len(merged))

    def totals(self, model: str, *, since: datetime, until: datetime) -> ServingTotals:
        """Sums over the model's periods that end in ``[since, until)``."""
        return self.windows(model, [(since, until)])[0]

    def windows(self, model: str, bounds: Sequence[tuple[datetime, datetime]]) -> list[ServingTotals]:
        """:meth:`totals` of each ``(start, end)`` in ``bounds``, in one read."""
        out = [ServingTotals() for _ in bounds]
        if not bounds:
            return out
        s = t.serving_periods
        low = min(b[0] for b in bounds)
        high = max(b[1] for b in bounds)
        query = sa.select(
            s.c.period_end, s.c.predictions, s.c.rejected, s.c.rejections, s.c.cpu_seconds
        ).where(s.c.model == model, s.c.period_end >= low, s.c.period_end < high)
        with self.metadata.transaction() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            end = _utc(row.period_end)
            for i, (start, stop) in enumerate(bounds):
                if start <= end < stop:
                    out[i].add(
                        int(row.predictions), int(row.rejected), row.rejections or {}, float(row.cpu_seconds)
                    )
                    break
        return out
