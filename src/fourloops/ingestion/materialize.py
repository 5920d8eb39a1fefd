"""Materialisation: the latest valid value of every entity, from the offline to the online store.

A row is eligible when it was knowable at ``end`` (event time and created time
``<= end``). Incremental runs (the default) only read rows that became
knowable after the previous run's ``end`` (the view's watermark). Writes to the
online store are monotonic, so re-running an old window, or running windows
out of order, never replaces a newer value with an older one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from fourloops.definitions import FeatureView
from fourloops.ingestion.offline_store import OfflineStore
from fourloops.storage.online import OnlineStore

__all__ = ["MaterializeResult", "latest_rows", "materialize_view"]

_ORDER = "__fl_order"


@dataclass(frozen=True)
class MaterializeResult:
    view: str
    start: datetime | None
    end: datetime
    rows_read: int
    written: int
    skipped_older: int

    def to_dict(self) -> dict[str, object]:
        return {
            "view": self.view,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat(),
            "rows_read": self.rows_read,
            "written": self.written,
            "skipped_older": self.skipped_older,
        }


def latest_rows(
    view: FeatureView, parts: list[str], *, start: datetime | None, end: datetime
) -> tuple[pl.DataFrame, int]:
    """Per entity, the winning row among those knowable in ``(start, end]``; and rows read.

    The winner is the row with the greatest (event time, created time, source
    order), as in a point-in-time join at ``end``.
    """
    keys = list(view.entity.join_keys)
    ts, created = view.source.timestamp, view.source.created
    columns = [*keys, ts, *([created] if created else []), *view.features]
    if not parts:
        return pl.DataFrame(), 0
    frame = pl.scan_parquet(parts).select(columns).with_row_index(_ORDER)
    available = pl.max_horizontal(pl.col(ts), pl.col(created)) if created else pl.col(ts)
    condition = available <= end
    if start is not None:
        condition = condition & (available > start)
    eligible = frame.filter(condition)
    rows = eligible.select(pl.len()).collect().item()
    order = [ts, *([created] if created else []), _ORDER]
    latest = (
        eligible.sort(order).group_by(keys, maintain_order=False).agg(pl.all().last()).drop(_ORDER).collect()
    )
    return latest, int(rows)


def materialize_view(
    view: FeatureView,
    *,
    offline: OfflineStore,
    online: OnlineStore,
    end: datetime,
    start: datetime | None = None,
    incremental: bool = True,
) -> MaterializeResult:
    """Write the latest values knowable at ``end`` into the online store; move the watermark."""
    if start is None and incremental:
        start = online.watermark(view.name)
    if start is not None and start >= end:
        return MaterializeResult(view.name, start, end, 0, 0, 0)
    latest, rows = latest_rows(view, offline.parts(view, known_after=start), start=start, end=end)
    written = skipped = 0
    if latest.height:
        stats = online.write(
            view.name,
            latest,
            keys=list(view.entity.join_keys),
            timestamp=view.source.timestamp,
            created=view.source.created,
            features=list(view.features),
        )
        written, skipped = stats.written, stats.skipped_older
    previous = online.watermark(view.name)
    if previous is None or end > previous:
        online.set_watermark(view.name, end)
    return MaterializeResult(view.name, start, end, rows, written, skipped)
