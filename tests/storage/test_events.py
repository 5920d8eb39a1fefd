"""The prediction event store, on every backend: round trip, labels, export, durability under SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fourloops.errors import ConfigError, SchemaError, StoreError
from fourloops.storage.events import (
    SCAN_SCHEMA,
    EventStore,
    Label,
    LabelStats,
    LocalEventStore,
    PredictionEvent,
    corrupt_records,
    open_event_store,
)

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
KILL_ROUNDS = 3
KILL_AFTER_S = 0.8
CHILD_START_TIMEOUT_S = 20.0

# A writer process: appends groups forever (or ``limit`` events), and after each
# append returns writes the acknowledged ids as one line to stdout with os.write.
CHILD = r"""
import os, sys
from datetime import UTC, datetime, timedelta
from fourloops.storage.events import PredictionEvent, open_event_store

url, tag, group, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = open_event_store(url)
t0 = datetime(2024, 3, 1, tzinfo=UTC)
features = {f"f{i}": i * 0.5 for i in range(30)}
n = 0
while limit == 0 or n < limit:
    events = [
        PredictionEvent(f"{tag}-{n + i}", f"u{i}", t0 + timedelta(seconds=n + i), "m", 1, "champion",
                        features, {"score": 0.5}, 0.9, 1.0)
        for i in range(group)
    ]
    store.append(events)
    os.write(1, (" ".join(e.request_id for e in events) + "\n").encode())
    n += group
store.close()
"""


def event(
    rid: str, *, at: datetime = T0, model: str = "churn", route: str = "champion", **kw: object
) -> PredictionEvent:
    values: dict[str, object] = {
        "unit_id": f"u-{rid}",
        "version": 1,
        "features": {"x": 1.5, "city": "Oslo"},
        "output": {"score": 0.25, "class": 0},
        "propensity": 0.9,
        "latency_ms": 3.5,
        "fallback": False,
    }
    values.update(kw)
    return PredictionEvent(request_id=rid, at=at, model=model, route=route, **values)  # type: ignore[arg-type]


def as_events(table: object) -> list[PredictionEvent]:
    rows = table.to_pylist()  # type: ignore[attr-defined]
    return [
        PredictionEvent.from_dict(
            {**r, "features": json.loads(r["features"]), "output": json.loads(r["output"]),
             "extra": json.loads(r["extra"])}
        )
        for r in rows
    ]  # fmt: skip


@pytest.fixture
def store(event_store_url: str) -> object:
    s = open_event_store(event_store_url)
    yield s
    s.close()


def acked_ids(path: Path) -> set[str]:
    """Ids on complete lines of the child's acknowledgement file."""
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    return {rid for line in complete.splitlines() for rid in line.split()}


def start_writer(url: str, tag: str, ack: Path, *, group: int, limit: int = 0) -> subprocess.Popen[bytes]:
    """A writer process; its stdout (acknowledged ids) goes to ``ack``, its stderr next to it."""
    with open(ack, "wb") as out, open(ack.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, url, tag, str(group), str(limit)], stdout=out, stderr=err
        )


def stderr_of(ack: Path) -> str:
    return ack.with_suffix(".err").read_text()


# -- the record ----------------------------------------------------------------------------------
def test_event_validates_and_round_trips_through_dict() -> None:
    e = event("r1", route="ab:blue", extra={"k": [1, 2]})
    assert PredictionEvent.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    with pytest.raises(SchemaError, match="timezone-aware"):
        event("r2", at=datetime(2024, 1, 1))
    with pytest.raises(SchemaError, match="route"):
        event("r3", route="blue")
    with pytest.raises(SchemaError, match="lacks field"):
        PredictionEvent.from_dict({"request_id": "x"})
    other = datetime(2024, 3, 1, 14, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Oslo"))
    assert event("r4", at=other).at.tzinfo is UTC


def test_open_event_store_urls(tmp_path: Path) -> None:
    for url in (str(tmp_path / "a"), f"local://{tmp_path / 'b'}"):
        s = open_event_store(url)
        assert isinstance(s, LocalEventStore) and isinstance(s, EventStore)
        s.close()
    with pytest.raises(ConfigError, match="unsupported event store URL"):
        open_event_store("redis://localhost/0")
    with pytest.raises(ConfigError, match="names no folder"):
        open_event_store("local://")


# -- every backend --------------------------------------------------------------------------------
def test_round_trip(store: EventStore) -> None:
    events = [
        event("a", output=None, propensity=None, unit_id=None),
        event("b", at=T0 + timedelta(seconds=1), route="canary", version=2, fallback=True),
        event("c", at=T0 + timedelta(days=1), route="shadow", extra={"trace": "t1"}),
        event("d", at=T0 + timedelta(days=1), route="ab:green", features={"nan": float("nan"), "l": [1, 2]}),
    ]
    store.append(events[:2])
    store.append(events[2:])
    store.append([])
    table = store.scan()
    assert table.schema.equals(SCAN_SCHEMA)
    assert corrupt_records(table) == 0
    assert table.column("request_id").to_pylist() == ["a", "b", "c", "d"]
    got = as_events(table)
    assert got[:3] == events[:3]
    assert got[3].features == {"nan": None, "l": [1, 2]}
    assert table.column("label").to_pylist() == [None] * 4
    assert store.count() == 4


def test_scan_filters(store: EventStore) -> None:
    store.append(
        [event(f"r{i}", at=T0 + timedelta(hours=i), model="m1" if i % 2 else "m2") for i in range(10)]
    )
    assert store.scan(model="m1").column("request_id").to_pylist() == ["r1", "r3", "r5", "r7", "r9"]
    window = store.scan(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=5))
    assert window.column("request_id").to_pylist() == ["r2", "r3", "r4"]
    assert store.scan(model="m2", since=T0 + timedelta(hours=7)).column("request_id").to_pylist() == ["r8"]
    assert store.scan(model="nope").num_rows == 0
    with pytest.raises(SchemaError):
        store.scan(since=datetime(2024, 1, 1))


def test_labels_are_idempotent_first_wins_and_count_unknown(store: EventStore) -> None:
    store.append([event("a"), event("b"), event("c")])
    later = T0 + timedelta(days=7)
    stats = store.add_labels([Label("a", 1, later), Label("b", {"y": 0}, later), Label("a", 0, later)])
    assert stats == LabelStats(inserted=2, duplicates=1, unknown=0)
    stats = store.add_labels([Label("a", 0, later), Label("zz", 1, later), Label("zz", 0, later)])
    assert stats == LabelStats(inserted=0, duplicates=2, unknown=1)
    assert store.add_labels([]) == LabelStats()
    # the label that arrived before its event joins once the event is logged
    store.append([event("zz")])
    table = store.scan()
    labels = {r["request_id"]: r["label"] for r in table.to_pylist()}
    assert {k: None if v is None else json.loads(v) for k, v in labels.items()} == {
        "a": 1, "b": {"y": 0}, "c": None, "zz": 1,
    }  # fmt: skip
    assert table.column("label_at").to_pylist()[0] == later


def test_export_parquet(store: EventStore, tmp_path: Path) -> None:
    store.append([event("a"), event("b", model="other")])
    store.add_labels([Label("a", True, T0)])
    n = store.export(tmp_path / "out" / "events.parquet", model="churn")
    back = pq.read_table(tmp_path / "out" / "events.parquet")
    assert n == 1 and back.column("request_id").to_pylist() == ["a"]
    assert back.column("label").to_pylist() == ["true"]


def test_append_refuses_unserialisable_values_before_writing(store: EventStore) -> None:
    with pytest.raises(SchemaError, match="features"):
        store.append([event("a"), event("b", features={"x": object()})])
    assert store.count() == 0


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_event(event_store_url: str, tmp_path: Path) -> None:
    for round_ in range(KILL_ROUNDS):
        ack = tmp_path / f"ack-{round_}.txt"
        proc = start_writer(event_store_url, f"k{round_}", ack, group=32)
        deadline = time.monotonic() + CHILD_START_TIMEOUT_S
        while ack.stat().st_size == 0:
            assert proc.poll() is None, stderr_of(ack)
            assert time.monotonic() < deadline, "writer did not start"
            time.sleep(0.02)
        time.sleep(KILL_AFTER_S)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        acknowledged = acked_ids(ack)
        assert acknowledged
        reader = open_event_store(event_store_url)
        stored = set(reader.scan().column("request_id").to_pylist())
        reader.close()
        assert acknowledged <= stored, f"lost {len(acknowledged - stored)} acknowledged events"


@pytest.mark.slow
def test_concurrent_writer_processes(event_store_url: str, tmp_path: Path) -> None:
    writers, per_writer = 4, 400
    procs = [
        start_writer(event_store_url, f"w{i}", tmp_path / f"ack-{i}.txt", group=8, limit=per_writer)
        for i in range(writers)
    ]
    for i, proc in enumerate(procs):
        assert proc.wait(timeout=60) == 0, stderr_of(tmp_path / f"ack-{i}.txt")
    reader = open_event_store(event_store_url)
    table = reader.scan()
    ids = table.column("request_id").to_pylist()
    assert len(ids) == len(set(ids)) == writers * per_writer
    assert corrupt_records(table) == 0
    assert reader.count() == writers * per_writer
    reader.close()


# -- the local store's files ------------------------------------------------------------------------
def test_torn_and_damaged_records_are_skipped_and_counted(tmp_path: Path) -> None:
    store = LocalEventStore(tmp_path)
    store.append([event(f"r{i}") for i in range(5)])
    store.add_labels([Label("r0", 1, T0)])
    store.close()
    (segment,) = tmp_path.glob("events-*.log")
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # a torn last record
    table = LocalEventStore(tmp_path).scan()
    assert table.column("request_id").to_pylist() == ["r0", "r1", "r2", "r3"]
    assert corrupt_records(table) == 1
    # one flipped byte inside an earlier record: its checksum no longer matches
    lines = segment.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"r1"', b'"R1"')
    segment.write_bytes(b"\n".join(lines))
    reader = LocalEventStore(tmp_path)
    table = reader.scan()
    assert table.column("request_id").to_pylist() == ["r0", "r2", "r3"]
    assert corrupt_records(table) == 2 and reader.corrupt_records == 2
    assert reader.count() == 3
    assert table.column("label").to_pylist() == ["1", None, None]
    # a writer reopening the folder adds a fresh segment; old damage stays counted, not spread
    reader.append([event("r9")])
    assert reader.scan().num_rows == 4 and reader.corrupt_records == 2


def test_a_write_failing_midway_is_refused_and_the_store_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full in the middle of a group: the append raises (nothing is acknowledged), the torn
    part is skipped by readers, and the next group goes to a fresh segment that reads cleanly."""
    import errno

    from fourloops.storage.events import local

    store = LocalEventStore(tmp_path)
    store.append([event("ok-1")])
    real_write = os.write
    failing_fd = store._events.fd

    def disk_full(fd: int, data: bytes) -> int:
        if fd != failing_fd:
            return real_write(fd, data)
        written = real_write(fd, bytes(data[: len(data) // 2 + 1]))  # half lands, then ENOSPC
        monkeypatch.setattr(local.os, "write", enospc)
        return written

    def enospc(fd: int, data: bytes) -> int:
        if fd != failing_fd:
            return real_write(fd, data)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local.os, "write", disk_full)
    with pytest.raises(StoreError, match="write failed.*No space left"):
        store.append([event("lost-1"), event("lost-2")])
    monkeypatch.undo()
    store.append([event("ok-2")])  # a fresh segment
    assert len(list(tmp_path.glob("events-*.log"))) == 2
    reader = LocalEventStore(tmp_path)
    ids = reader.scan().column("request_id").to_pylist()
    assert {"ok-1", "ok-2"} <= set(ids) <= {"ok-1", "ok-2", "lost-1"}  # at most the part that fully landed
    assert reader.corrupt_records == 1  # the torn tail, skipped and counted
    assert reader.count() == len(ids)


def test_segments_rotate_by_size(tmp_path: Path) -> None:
    store = LocalEventStore(tmp_path, segment_bytes=1_000, fsync=True)
    for i in range(20):
        store.append([event(f"r{i:02d}"), event(f"s{i:02d}")])
    assert len(list(tmp_path.glob("events-*.log"))) > 3
    assert store.count() == 40
    assert sorted(store.scan().column("request_id").to_pylist())[:2] == ["r00", "r01"]
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.append([event("late")])


def test_forked_child_writes_its_own_segment(tmp_path: Path) -> None:
    store = LocalEventStore(tmp_path)
    store.append([event("parent")])
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            store.append([event("child")])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    store.append([event("parent2")])
    assert len(list(tmp_path.glob("events-*.log"))) == 2
    assert sorted(store.scan().column("request_id").to_pylist()) == ["child", "parent", "parent2"]
    store.close()


def test_ping_answers_while_the_store_can_take_writes_and_fails_once_it_cannot(
    event_store_url: str, tmp_path: Path
) -> None:
    store = open_event_store(event_store_url)
    store.ping()
    store.close()
    if event_store_url.startswith("local://"):
        with pytest.raises(StoreError, match="closed"):
            store.ping()
        gone = open_event_store(tmp_path / "gone")
        (tmp_path / "gone").rmdir()
        with pytest.raises(StoreError, match="folder is gone"):
            gone.ping()


def test_request_ids_lists_the_ids_predicted_since_a_time_oldest_first(store: EventStore) -> None:
    store.append([event("c", at=T0 + timedelta(minutes=2)), event("a", at=T0)])
    store.append([event("b", at=T0 + timedelta(minutes=1)), event("old", at=T0 - timedelta(days=2))])
    assert store.request_ids(T0) == ["a", "b", "c"]
    assert store.request_ids(T0 + timedelta(seconds=61)) == ["c"]
    assert store.request_ids(T0 + timedelta(days=1)) == []
    with pytest.raises(SchemaError, match="since"):
        store.request_ids(datetime(2024, 3, 1))  # noqa: DTZ001 - naive on purpose
