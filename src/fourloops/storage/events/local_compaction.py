"""Compacting the local event store's segments into the typed event tables.

Each segment is read from where the previous compaction stopped to its last
complete record, so a segment still being written is compacted up to what
has landed; offsets per segment are kept in the tables' manifest, which moves
only after a chunk's Parquet files are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from fourloops.storage.events.columnar import (
    RAW_EVENT_COLUMNS,
    RAW_LABEL_COLUMNS,
    CompactionReport,
    EventSchema,
    EventTables,
    raw_events_frame,
    raw_labels_frame,
)
from fourloops.storage.events.local import (
    _EVENT_SCHEMA,
    _EVENTS,
    _LABEL_RECORD,
    _LABELS,
    _frame_df,
    _unframe,
)

if TYPE_CHECKING:
    from fourloops.storage.events.local import LocalEventStore

__all__ = ["compact_segments"]

_NO_EVENTS = pl.DataFrame(schema=RAW_EVENT_COLUMNS)
_NO_LABELS = pl.DataFrame(schema=RAW_LABEL_COLUMNS)


def compact_segments(
    store: LocalEventStore, tables: EventTables, schemas: Mapping[str, EventSchema], *, chunk_events: int
) -> CompactionReport:
    """Append the store's records not compacted yet to ``tables`` (see :meth:`LocalEventStore.compact`)."""
    total = CompactionReport()
    key = str(store.path.resolve())
    with tables.locked() as manifest:
        began = int(manifest.get("parts", 0))  # the event files this compaction writes come after
        offsets: dict[str, dict[str, int]] = manifest.setdefault("local", {}).setdefault(
            key, {"events": {}, "labels": {}}
        )
        for kind in (_EVENTS, _LABELS):
            done = offsets.setdefault("events" if kind == _EVENTS else "labels", {})
            pending: list[bytes] = []
            moved: dict[str, int] = {}
            for path in store._files(kind):
                start = done.get(path.name, 0)
                try:
                    with open(path, "rb") as f:
                        f.seek(start)
                        data = f.read()
                except FileNotFoundError:
                    continue  # removed by retention since it was listed
                end = data.rfind(b"\n") + 1
                payloads, bad = _unframe(data[:end])
                total.corrupt += bad
                pending.extend(payloads)
                moved[path.name] = start + end
                if len(pending) >= chunk_events:
                    _flush(store, tables, schemas, manifest, kind, pending, total, began)
                    done.update(moved)
                    tables.save_manifest(manifest)
                    pending, moved = [], {}
            if pending or moved:
                _flush(store, tables, schemas, manifest, kind, pending, total, began)
                done.update(moved)
                tables.save_manifest(manifest)
    return total


def _flush(
    store: LocalEventStore,
    tables: EventTables,
    schemas: Mapping[str, EventSchema],
    manifest: dict[str, Any],
    kind: str,
    payloads: list[bytes],
    total: CompactionReport,
    began: int,
) -> None:
    if not payloads:
        return
    schema = _EVENT_SCHEMA if kind == _EVENTS else _LABEL_RECORD
    rows = _frame_df(payloads, schema, store.path).with_columns(
        pl.from_epoch("at_us", time_unit="us").dt.replace_time_zone("UTC").alias("at"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("position"),
    )
    if kind == _EVENTS:
        report = tables.append(raw_events_frame(rows), _NO_LABELS, schemas, manifest)
    else:
        report = tables.append(
            _NO_EVENTS, raw_labels_frame(rows), schemas, manifest, placed_after=began, split_ids=total.split
        )
    total.add(report)
