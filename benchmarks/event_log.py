"""Prediction event log: cost of a durable append, per event, by group size.

Appends events (30 numeric features each, as the serving benchmark's model
takes) in groups of 1, 16 and 64 to

* a bare ``os.write`` of pre-encoded bytes to an O_APPEND file (the floor);
* the local event store, fsync off (durable against process death) and on
  (durable against machine crash, one fsync per group);
* the PostgreSQL event store, ``synchronous_commit`` off and on,

and prints events/s and microseconds per event. Each configuration runs until
``--events`` events or ``--seconds`` seconds, whichever comes first (fsync and
per-event commits would otherwise take minutes).

Run from the repository root::

    .venv/bin/python benchmarks/event_log.py [--events 200000] [--seconds 8] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fourloops.storage.events import LocalEventStore, PostgresEventStore, PredictionEvent

GROUPS = (1, 16, 64)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def make_events(n: int) -> list[PredictionEvent]:
    features = {f"f{i}": i * 0.37 for i in range(30)}
    return [
        PredictionEvent(
            f"req-{i:08d}", f"unit-{i % 1000}", T0 + timedelta(milliseconds=i), "flights", 3, "champion",
            features, {"score": 0.731, "class": 1}, 0.95, 0.42,
        )
        for i in range(n)
    ]  # fmt: skip


def run(append: Callable[[Sequence[PredictionEvent]], None], events: list[PredictionEvent], group: int,
        seconds: float) -> tuple[int, float]:  # fmt: skip
    """Events appended and elapsed seconds."""
    start = time.perf_counter()
    done = 0
    while done < len(events):
        append(events[done : done + group])
        done += group
        if done % 1024 < group and time.perf_counter() - start > seconds:
            break
    return done, time.perf_counter() - start


def floor_writer(fd: int, blob: bytes) -> Callable[[Sequence[PredictionEvent]], None]:
    """An append that writes the same pre-encoded bytes whatever the events (no encoding cost)."""

    def append(events: Sequence[PredictionEvent]) -> None:
        os.write(fd, blob)

    return append


def report(name: str, group: int, done: int, elapsed: float) -> None:
    rate = done / elapsed
    print(f"{name:<28} {group:>5} {done:>9} {rate:>12,.0f} {1e6 / rate:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--postgres", default=os.environ.get("FOURLOOPS_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    args = parser.parse_args()
    events = make_events(args.events)
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# up to {args.events} events or {args.seconds} s per row; 30 features per event")
    print(f"{'store':<28} {'group':>5} {'events':>9} {'events/s':>12} {'us/event':>10}")

    with tempfile.TemporaryDirectory() as tmp:
        line = b"x" * 1023 + b"\n"  # about the size of one encoded event
        for group in GROUPS:
            fd = os.open(Path(tmp) / f"floor-{group}", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            blob = line * group
            done, elapsed = run(floor_writer(fd, blob), events, group, args.seconds)
            os.close(fd)
            report("os.write floor", group, done, elapsed)
        for fsync in (False, True):
            for group in GROUPS:
                store = LocalEventStore(Path(tmp) / f"local-{fsync}-{group}", fsync=fsync)
                done, elapsed = run(store.append, events, group, args.seconds)
                store.close()
                report(f"local fsync={'on' if fsync else 'off'}", group, done, elapsed)

    try:
        import psycopg
    except ImportError:
        print("# psycopg not installed: PostgreSQL skipped")
        return
    libpq = urlunsplit(urlsplit(args.postgres)._replace(scheme="postgresql"))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as err:
        print(f"# PostgreSQL unreachable at {args.postgres}: {err}")
        return
    try:
        url = f"{args.postgres}?options=-csearch_path%3D{schema}"
        for fsync in (False, True):
            for group in GROUPS:
                pg = PostgresEventStore(url, fsync=fsync)
                done, elapsed = run(pg.append, events, group, args.seconds)
                pg.close()
                report(f"postgres sync_commit={'on' if fsync else 'off'}", group, done, elapsed)
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
