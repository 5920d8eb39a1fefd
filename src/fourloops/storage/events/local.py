"""The embedded event store: append-only segment files in one folder, one writer per process.

Layout of the folder::

    events-<pid>-<start ns>-<seq>.log    events written by one process (rotated by size)
    labels-<pid>-<start ns>-<seq>.log    labels written by one process
    labels.lock                          serialises label classification across processes

Every record is one framed line, ``<crc32 as 8 hex digits> <compact JSON>\\n``.
A group of events is encoded first and then written with a single ``os.write``
to a file opened ``O_APPEND``, so when :meth:`LocalEventStore.append` returns
the bytes belong to the kernel and survive the death of the process. Processes
never share a file, so a killed writer can only damage the end of its own
segment. The reader checks each line's checksum and terminator; a damaged or
torn record is skipped and counted (``corrupt_records``), never a crash.

Labels are classified under an exclusive ``flock`` on ``labels.lock`` against
every event and label seen so far, so the first label per request id wins
even with several processes labelling at once.
"""

from __future__ import annotations

import fcntl
import io
import os
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa

from fourloops.clock import require_aware
from fourloops.errors import StoreError
from fourloops.storage.events.base import (
    EventStoreBase,
    Label,
    LabelStats,
    PredictionEvent,
    check_window,
    dumps_json,
    first_labels,
    with_corrupt_count,
)
from fourloops.storage.events.columnar import CompactionReport, EventSchema, EventTables
from fourloops.storage.events.decisions import refuse_bad_decisions

__all__ = ["COMPACT_CHUNK", "DEFAULT_SEGMENT_BYTES", "LocalEventStore"]

#: Events compacted per chunk (each chunk's files are written before the manifest moves on).
COMPACT_CHUNK = 500_000

#: A process starts a new segment once its current one reaches this size.
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
_EVENTS, _LABELS, _SUFFIX = "events-", "labels-", ".log"
_LOCK_FILE = "labels.lock"
_CRC_HEX = 8  # the frame is "<8 hex> <json>\n": the JSON starts at byte 9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_FILE_MODE = 0o644

_EVENT_SCHEMA = {
    "request_id": pl.String,
    "unit_id": pl.String,
    "at_us": pl.Int64,
    "model": pl.String,
    "version": pl.Int64,
    "route": pl.String,
    "features": pl.String,
    "output": pl.String,
    "propensity": pl.Float64,
    "latency_ms": pl.Float64,
    "fallback": pl.Boolean,
    "extra": pl.String,
}
_LABEL_SCHEMA = {"request_id": pl.String, "value": pl.String, "at_us": pl.Int64}
#: What compaction reads of a label record: also the model, UTC day and hour of its prediction, where
#: known.
_LABEL_RECORD = {**_LABEL_SCHEMA, "model": pl.String, "day": pl.String, "hour": pl.Int64}


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _US


def _frame(body: bytes) -> bytes:
    return b"%08x %b\n" % (zlib.crc32(body), body)


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)  # orjson writes NaN and infinities as null


def _encode_event(e: PredictionEvent) -> bytes:
    # The hot path of every prediction. features/output/extra are stored as JSON text
    # inside the record (the PostgreSQL store keeps the same text in its columns);
    # orjson escapes quotes and newlines, so a record is always one line.
    return orjson.dumps(
        {
            "request_id": str(e.request_id),
            "unit_id": None if e.unit_id is None else str(e.unit_id),
            "at_us": _micros(e.at),
            "model": str(e.model),
            "version": int(e.version),
            "route": str(e.route),
            "features": dumps_json(e.features, what="features"),
            "output": dumps_json(e.output, what="output"),
            "propensity": _number(e.propensity),
            "latency_ms": _number(e.latency_ms),
            "fallback": bool(e.fallback),
            "extra": dumps_json(e.extra, what="extra"),
        }
    )


def _unframe(data: bytes) -> tuple[list[bytes], int]:
    """The JSON payloads of the intact records in ``data`` and how many records were damaged."""
    lines = data.split(b"\n")
    corrupt = 1 if lines.pop() else 0  # bytes after the last newline: a torn record
    payloads: list[bytes] = []
    for line in lines:
        if len(line) > _CRC_HEX + 1 and line[_CRC_HEX] == 0x20:
            body = line[_CRC_HEX + 1 :]
            try:
                if int(line[:_CRC_HEX], 16) == zlib.crc32(body):
                    payloads.append(body)
                    continue
            except ValueError:
                pass
        corrupt += 1
    return payloads, corrupt


def _frame_df(payloads: list[bytes], schema: dict[str, type[pl.DataType]], path: Path) -> pl.DataFrame:
    if not payloads:
        return pl.DataFrame(schema=schema)
    try:
        return pl.read_ndjson(io.BytesIO(b"\n".join(payloads)), schema=schema)
    except Exception as err:  # a checksummed record that is not JSON: a bug, not damage
        raise StoreError(f"event store file {path} holds unreadable records: {err}") from err


class _Tail:
    """Reads what files gained since the last look (complete records only)."""

    def __init__(self) -> None:
        self.offsets: dict[Path, int] = {}

    def new_payloads(self, paths: Sequence[Path]) -> list[bytes]:
        payloads: list[bytes] = []
        for path in paths:
            start = self.offsets.get(path, 0)
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read()
            end = data.rfind(b"\n") + 1
            good, _ = _unframe(data[:end])
            payloads.extend(good)
            self.offsets[path] = start + end
        return payloads


class _Writer:
    """This process's current append-only file of one kind, rotated by size."""

    def __init__(self, root: Path, prefix: str, *, fsync: bool, segment_bytes: int) -> None:
        self.root, self.prefix, self.fsync, self.segment_bytes = root, prefix, fsync, segment_bytes
        self.fd: int | None = None
        self.pid = 0
        self.start_ns = 0
        self.seq = 0
        self.size = 0

    def _open(self) -> int:
        pid = os.getpid()
        if self.pid != pid:  # first use, or a forked child: never share the parent's file
            self.pid, self.start_ns, self.seq, self.fd = pid, time.time_ns(), 0, None
        self.seq += 1
        path = self.root / f"{self.prefix}{self.pid}-{self.start_ns}-{self.seq:05d}{_SUFFIX}"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(path, flags, _FILE_MODE)
        if self.fsync:  # make the new name itself survive a machine crash
            dir_fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.fd, self.size = fd, 0
        return fd

    def write(self, data: bytes) -> None:
        fd = self.fd
        if fd is None or self.pid != os.getpid() or self.size >= self.segment_bytes:
            if fd is not None and self.pid == os.getpid():
                os.close(fd)
            fd = self._open()
        view = memoryview(data)
        try:
            while view:  # one write in practice; a short write (disk full, signal) continues
                written = os.write(fd, view)
                view = view[written:]
                self.size += written
            if self.fsync:
                os.fsync(fd)
        except OSError:
            # Whatever part landed stays at the end of this segment, where the reader
            # skips it as torn; later groups go to a fresh segment.
            os.close(fd)
            self.fd = None
            raise

    def close(self) -> None:
        if self.fd is not None and self.pid == os.getpid():
            os.close(self.fd)
        self.fd = None


class LocalEventStore(EventStoreBase):
    """Event store in a local folder, safe for several processes appending at once.

    ``fsync=True`` also flushes every group to disk (one flush per :meth:`append`).

    >>> import tempfile
    >>> store = LocalEventStore(tempfile.mkdtemp())
    >>> store.append([PredictionEvent("r1", None, datetime(2024, 5, 1, tzinfo=UTC), "churn", 1,
    ...                               "champion", {"x": 1.5}, {"score": 0.7}, None, 1.2)])
    >>> store.add_labels([Label("r1", 1, datetime(2024, 5, 9, tzinfo=UTC)),
    ...                   Label("r1", 0, datetime(2024, 5, 10, tzinfo=UTC))])
    LabelStats(inserted=1, duplicates=1, unknown=0)
    >>> store.scan().select(["request_id", "output", "label"]).to_pylist()
    [{'request_id': 'r1', 'output': '{"score":0.7}', 'label': '1'}]
    >>> store.close()
    """

    def __init__(
        self, path: str | Path, *, fsync: bool = False, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> None:
        self.path = Path(path)
        self.url = f"local://{self.path.resolve()}"
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"event store {self.path}: cannot create folder: {err}") from err
        self._lock = threading.Lock()
        self._events = _Writer(self.path, _EVENTS, fsync=fsync, segment_bytes=segment_bytes)
        self._labels = _Writer(self.path, _LABELS, fsync=fsync, segment_bytes=segment_bytes)
        self._event_tail, self._label_tail = _Tail(), _Tail()
        # request id -> (model, UTC day, UTC hour) of its first event (day and hour None when its
        # events lie in different hours); one tuple object per place
        self._known: dict[str, tuple[str, str | None, int | None]] = {}
        self._places: dict[tuple[str, str | None, int | None], tuple[str, str | None, int | None]] = {}
        self._labelled: set[str] = set()
        self._closed = False
        #: Damaged records skipped by the last :meth:`scan` or :meth:`count`.
        self.corrupt_records = 0

    def __repr__(self) -> str:
        return f"LocalEventStore(path={str(self.path)!r}, fsync={self.fsync})"

    @property
    def local_appends(self) -> bool:  # type: ignore[override]
        """One ``os.write`` per group, unless every group is fsynced."""
        return not self.fsync

    # -- writing ---------------------------------------------------------------------------
    def append(self, events: Sequence[PredictionEvent]) -> None:
        """Write the group with one ``os.write`` (and one ``fsync`` if enabled)."""
        if not events:
            return
        refuse_bad_decisions(events)  # a decision's distribution must be one to evaluate it by
        data = b"".join([_frame(_encode_event(e)) for e in events])
        self._write(self._events, data)

    def _write(self, writer: _Writer, data: bytes) -> None:
        with self._lock:
            if self._closed:
                raise StoreError(f"event store {self.path} is closed")
            try:
                writer.write(data)
            except OSError as err:
                raise StoreError(f"event store {self.path}: write failed: {err}") from err

    def add_labels(self, labels: Sequence[Label]) -> LabelStats:
        """Record labels; the first label per request id wins, across processes."""
        firsts, duplicates = first_labels(labels)
        inserted = unknown = 0
        records: list[bytes] = []
        with self._label_lock():
            self._refresh_index()
            for label in firsts:
                if label.request_id in self._labelled:
                    duplicates += 1
                    continue
                self._labelled.add(label.request_id)
                place = self._known.get(label.request_id)
                if place is not None:
                    inserted += 1
                else:
                    unknown += 1
                payload = {
                    "request_id": label.request_id,
                    "value": dumps_json(label.value, what=f"label {label.request_id!r}"),
                    "at_us": _micros(label.at),
                }
                if place is not None:  # compaction files the label under its prediction's model and day
                    payload["model"], payload["day"], payload["hour"] = place
                records.append(_frame(orjson.dumps(payload)))
            if records:
                self._write(self._labels, b"".join(records))
        return LabelStats(inserted=inserted, duplicates=duplicates, unknown=unknown)

    def models_of(self, request_ids: Sequence[str]) -> dict[str, str]:
        """The model of each id's (first) event; ids with no event are left out."""
        with self._label_lock():
            self._refresh_index()
            known = self._known
            return {rid: known[rid][0] for rid in request_ids if rid in known}

    @contextmanager
    def _label_lock(self) -> Iterator[None]:
        try:
            fd = os.open(self.path / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
        except OSError as err:
            raise StoreError(f"event store {self.path}: cannot open the label lock: {err}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _refresh_index(self) -> None:
        events = self._event_tail.new_payloads(self._files(_EVENTS))
        if events:
            frame = _frame_df(
                events, {"request_id": pl.String, "model": pl.String, "at_us": pl.Int64}, self.path
            )
            at = pl.from_epoch(frame["at_us"], time_unit="us")
            day, hour = at.dt.date().cast(pl.String), at.dt.hour()
            known, places = self._known, self._places
            for rid, model, d, h in zip(frame["request_id"].to_list(), frame["model"].to_list(),
                                        day.to_list(), hour.to_list(), strict=True):  # fmt: skip
                if rid not in known:
                    place: tuple[str, str | None, int | None] = (model, d, h)
                    known[rid] = places.setdefault(place, place)
                elif known[rid][1:] != (d, h) and known[rid][1] is not None:
                    # Events of one request id in different hours (a retry stamped a moment later,
                    # maybe logged first by another process): compaction keeps the earliest, which
                    # need not be the first logged, so the label is filed under its model, any day.
                    place = (known[rid][0], None, None)
                    known[rid] = places.setdefault(place, place)
        labels = self._label_tail.new_payloads(self._files(_LABELS))
        if labels:
            ids = _frame_df(labels, {"request_id": pl.String}, self.path)["request_id"]
            self._labelled.update(ids.to_list())

    # -- reading ---------------------------------------------------------------------------
    def _files(self, prefix: str) -> list[Path]:
        return sorted(self.path.glob(f"{prefix}*{_SUFFIX}"))

    def _read(self, prefix: str, schema: dict[str, type[pl.DataType]]) -> tuple[pl.DataFrame, int]:
        frames: list[pl.DataFrame] = []
        corrupt = 0
        for path in self._files(prefix):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # removed by retention between listing and reading
            except OSError as err:
                raise StoreError(f"event store file {path}: {err}") from err
            payloads, bad = _unframe(data)
            corrupt += bad
            frames.append(_frame_df(payloads, schema, path))
        if not frames:
            return pl.DataFrame(schema=schema), corrupt
        return pl.concat(frames, how="vertical"), corrupt

    def scan(
        self, *, model: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pa.Table:
        """All events matching the filters, oldest first, joined with their first label."""
        since, until = check_window(since, until)
        events, bad_events = self._read(_EVENTS, _EVENT_SCHEMA)
        labels, bad_labels = self._read(_LABELS, _LABEL_SCHEMA)
        if model is not None:
            events = events.filter(pl.col("model") == model)
        if since is not None:
            events = events.filter(pl.col("at_us") >= _micros(since))
        if until is not None:
            events = events.filter(pl.col("at_us") < _micros(until))
        labels = labels.unique(subset="request_id", keep="first", maintain_order=True).rename(
            {"value": "label", "at_us": "label_at_us"}
        )
        joined = (
            events.join(labels, on="request_id", how="left")
            .with_columns(
                pl.from_epoch("at_us", time_unit="us").dt.replace_time_zone("UTC").alias("at"),
                pl.from_epoch("label_at_us", time_unit="us").dt.replace_time_zone("UTC").alias("label_at"),
            )
            .sort(["at", "request_id"], maintain_order=True)
        )
        self.corrupt_records = bad_events + bad_labels
        table = joined.to_arrow().select(
            [
                "request_id", "unit_id", "at", "model", "version", "route", "features", "output",
                "propensity", "latency_ms", "fallback", "extra", "label", "label_at",
            ]
        )  # fmt: skip
        return with_corrupt_count(table, self.corrupt_records)

    def request_ids(self, since: datetime) -> list[str]:
        """Request ids of the events predicted at or after ``since``, oldest first (two columns read)."""
        since = require_aware(since, "since")
        events, _ = self._read(_EVENTS, {"request_id": pl.String, "at_us": pl.Int64})
        recent = events.filter(pl.col("at_us") >= _micros(since)).sort("at_us", maintain_order=True)
        return recent["request_id"].to_list()

    def count(self) -> int:
        """Number of intact events in the folder."""
        total = corrupt = 0
        for path in self._files(_EVENTS):
            try:
                payloads, bad = _unframe(path.read_bytes())
            except FileNotFoundError:
                continue
            except OSError as err:
                raise StoreError(f"event store file {path}: {err}") from err
            total += len(payloads)
            corrupt += bad
        self.corrupt_records = corrupt
        return total

    # -- compaction ------------------------------------------------------------------------
    def compact(
        self, tables: EventTables, schemas: Mapping[str, EventSchema], *, chunk_events: int = COMPACT_CHUNK
    ) -> CompactionReport:
        """Append what was logged since the last compaction to ``tables`` as typed Parquet.

        Reads each segment from where the previous compaction stopped up to its
        last complete record (segments being written are fine: only whole
        records are taken), in chunks of about ``chunk_events`` events; the
        manifest moves after each chunk's files are written.
        """
        from fourloops.storage.events.local_compaction import compact_segments

        return compact_segments(self, tables, schemas, chunk_events=chunk_events)

    def ping(self) -> None:
        """The folder exists and this process may write to it, and the store is open."""
        if self._closed:
            raise StoreError(f"event store {self.path} is closed")
        if not self.path.is_dir():
            raise StoreError(f"event store {self.path}: the folder is gone")
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise StoreError(f"event store {self.path}: the folder is not writable")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._events.close()
            self._labels.close()
