"""Event tables: compacting the event log to typed Parquet, and querying it, against reading the raw log.

One run builds a local event log of N prediction events (30 float features,
two routes, a label on every tenth event), then, on the same data:

* **raw log**, the only way before the event tables: ``LocalEventStore.scan()``
  (every segment read, framed JSON parsed by Polars) and the features' JSON
  parsed per event in Python (``json.loads``) to aggregate a feature by route;
* **compaction**: ``LocalEventStore.compact`` into typed, partitioned Parquet
  (incremental: what a cron job or the monitor pays for new events);
* **query**: the same aggregate as SQL over the event tables in DuckDB
  (``DuckDBEngine.query_events``), labels joined;
* **floor**: the same SQL over one pre-built Parquet file of the same typed
  rows (what a hand-made export would give).

It checks that the raw-log aggregate and the query agree before printing
times and ratios. Peak RSS is the process's ``ru_maxrss`` after each step.

    .venv/bin/python benchmarks/event_tables.py                 # 100k and 1M events
    .venv/bin/python benchmarks/event_tables.py --sizes 20000   # quick
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

import fourloops as fl
from fourloops.engines import DuckDBEngine
from fourloops.storage.events import Label, LocalEventStore, PredictionEvent
from fourloops.storage.events.columnar import EventSchema, EventTables

N_FEATURES = 30
GROUP = 1000
T0 = datetime(2024, 1, 1, tzinfo=UTC)
QUERY = (
    "SELECT route, count(*) AS n, avg(f0) AS f0, avg(prediction) AS p, "
    "count(label) AS labelled FROM events GROUP BY route ORDER BY route"
)


def build(root: Path, n: int, seed: int) -> LocalEventStore:
    rng = np.random.default_rng(seed)
    store = LocalEventStore(root)
    values = rng.normal(size=(n, N_FEATURES))
    for start in range(0, n, GROUP):
        group = []
        for i in range(start, min(n, start + GROUP)):
            group.append(
                PredictionEvent(
                    request_id=f"r{i}",
                    unit_id=None,
                    at=T0 + timedelta(seconds=30 * i),
                    model="bench",
                    version=1,
                    route="champion" if i % 10 else "canary",
                    features={f"f{j}": float(values[i, j]) for j in range(N_FEATURES)},
                    output=float(1 / (1 + np.exp(-values[i, 0]))),
                    propensity=0.9,
                    latency_ms=1.0,
                )
            )
        store.append(group)
    store.add_labels([Label(f"r{i}", int(values[i, 0] > 0), T0) for i in range(0, n, 10)])
    return store


def raw_aggregate(store: LocalEventStore) -> list[tuple[str, int, float, float, int]]:
    table = store.scan(model="bench").to_pylist()
    sums: dict[str, list[float]] = {}
    for e in table:
        features = json.loads(e["features"])  # per event, in Python: what the tables avoid
        s = sums.setdefault(e["route"], [0, 0.0, 0.0, 0])
        s[0] += 1
        s[1] += features["f0"]
        s[2] += json.loads(e["output"])
        s[3] += e["label"] is not None
    return [(r, int(s[0]), s[1] / s[0], s[2] / s[0], int(s[3])) for r, s in sorted(sums.items())]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    schema = {"bench": EventSchema.from_contract("bench", {f"f{j}": fl.Float() for j in range(N_FEATURES)})}
    engine = DuckDBEngine()
    header = ("events", "step", "median s", "min-max", "events/s", "peak RSS MB")
    print("{:>9s} {:28s} {:>9s} {:>15s} {:>12s} {:>11s}".format(*header))
    for n in [int(s) for s in args.sizes.split(",")]:
        work = Path(tempfile.mkdtemp(prefix="fl-evtables-"))
        try:
            t = time.perf_counter()
            store = build(work / "events", n, seed=n)
            build_s = time.perf_counter() - t
            times: dict[str, list[float]] = {
                "raw log: scan + json.loads": [],
                "compaction": [],
                "query": [],
                "floor": [],
            }
            answers = {}
            for rep in range(args.repeat):
                tables = EventTables(work / f"tables-{rep}")
                t = time.perf_counter()
                answers["raw"] = raw_aggregate(store)
                times["raw log: scan + json.loads"].append(time.perf_counter() - t)
                t = time.perf_counter()
                report = store.compact(tables, schema)
                times["compaction"].append(time.perf_counter() - t)
                assert report.events_written == n, report
                t = time.perf_counter()
                answers["query"] = engine.query_events(tables, QUERY, model="bench").to_pylist()
                times["query"].append(time.perf_counter() - t)
                flat = work / f"flat-{rep}.parquet"
                con = duckdb.connect()
                files = ", ".join(f"'{f}'" for f in tables.event_files("bench"))
                labels = ", ".join(f"'{f}'" for f in tables.label_files())
                con.execute(
                    f"COPY (SELECT e.*, l.label FROM read_parquet([{files}]) e "
                    f"LEFT JOIN read_parquet([{labels}]) l USING (request_id)) TO '{flat}'"
                )
                t = time.perf_counter()
                con.execute(QUERY.replace("FROM events", f"FROM read_parquet('{flat}')")).fetchall()
                times["floor"].append(time.perf_counter() - t)
                con.close()
            got = [(r["route"], r["n"], r["f0"], r["p"], r["labelled"]) for r in answers["query"]]
            for a, b in zip(got, answers["raw"], strict=True):
                assert a[0] == b[0] and a[1] == b[1] and a[4] == b[4], (a, b)
                assert abs(a[2] - b[2]) < 1e-9 and abs(a[3] - b[3]) < 1e-9, (a, b)
            print(f"{n:9,d} {'(building the log)':28s} {build_s:9.2f}")
            for step, ts in times.items():
                med = statistics.median(ts)
                spread = f"{min(ts):7.3f}-{max(ts):7.3f}"
                print(f"{n:9,d} {step:28s} {med:9.3f} {spread} {n / med:12,.0f} {rss_mb():11.0f}")
            raw, query = (
                statistics.median(times["raw log: scan + json.loads"]),
                statistics.median(times["query"]),
            )
            comp, floor_s = statistics.median(times["compaction"]), statistics.median(times["floor"])
            print(
                f"{n:9,d} ratios: raw log / query = {raw / query:.1f}x; raw log / (compaction + query) = "
                f"{raw / (comp + query):.1f}x; query / floor = {query / floor_s:.2f}x"
            )
            store.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
