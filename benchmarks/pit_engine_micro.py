"""Micro-benchmark: the DuckDB engine's point-in-time join against a bare DuckDB ASOF join.

Everything runs in one process; the methods alternate (the order rotates every
repetition) and the median of ``--reps`` runs is reported, with each engine
variant's ratio to the bare ASOF join.

Data (seeded, written once to a temporary folder): a view of 100k keys x 20
event times (2M rows), 10 float features and a ``created`` column (0-2 h after
the event), stored as one Parquet file as the offline store keeps it; an
entity Arrow table of ``--rows`` rows (random keys, about 1 % unknown, random
times over the data range plus 2 days before and 12 days after). ttl = 7 days.

Methods
    bare              ``SELECT e.*, f.f0..f9 FROM e ASOF LEFT JOIN f ON e.k = f.k AND
                      e.ts >= f.ts`` fetched as Arrow (unordered, no ttl, no created)
    engine            ``DuckDBEngine.point_in_time_join`` on the raw Parquet view
    engine+created    the same with the ``created`` column
    prepared          the join on the output of ``DuckDBEngine.prepare_view``
    prepared+created  the same with the ``created`` column

Preparation (part of ingestion) is timed separately.

Run (from the repository root)::

    .venv/bin/python benchmarks/pit_engine_micro.py --rows 1000000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fourloops.engines import DuckDBEngine, ViewJoin

KEYS, PER_KEY, FEATURES = 100_000, 20, 10
DAY_US = 86_400 * 10**6
UTC_US = pa.timestamp("us", tz="UTC")


def make_data(rows: int, folder: Path, seed: int = 7) -> tuple[pa.Table, str]:
    """The entity table and the path of the view's Parquet file."""
    rng = np.random.default_rng(seed)
    t0 = int(np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64))
    span = 60 * DAY_US
    n = KEYS * PER_KEY
    ts = t0 + rng.integers(0, span, n)
    columns: dict[str, object] = {
        "k": np.repeat(np.arange(KEYS, dtype=np.int64), PER_KEY),
        "ts": pa.array(ts, UTC_US),
        "created": pa.array(ts + rng.integers(0, 2 * 3600 * 10**6, n), UTC_US),
    }
    for j in range(FEATURES):
        columns[f"f{j}"] = rng.random(n)
    path = folder / "view.parquet"
    pq.write_table(pa.table(columns), path)
    entities = pa.table(
        {
            "k": rng.integers(0, int(KEYS * 1.01), rows),
            "ts": pa.array(t0 + rng.integers(-2 * DAY_US, span + 12 * DAY_US, rows), UTC_US),
            "label": rng.random(rows),
        }
    )
    return entities, str(path)


def view_join(path: str, created: bool) -> ViewJoin:
    """The benchmark view (all features, ttl 7 days)."""
    return ViewJoin(
        name="stats",
        data=path,
        join_keys=["k"],
        timestamp="ts",
        ttl=timedelta(days=7),
        features={f"f{j}": f"f{j}" for j in range(FEATURES)},
        created="created" if created else None,
    )


def bare_asof(entities: pa.Table, path: str) -> int:
    """The floor: one bare ASOF LEFT JOIN, fetched as Arrow."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("e", entities)
    feats = ", ".join(f"f.f{j}" for j in range(FEATURES))
    query = (
        f"SELECT e.*, {feats} FROM e ASOF LEFT JOIN read_parquet('{path}') f ON e.k = f.k AND e.ts >= f.ts"
    )
    rows = con.sql(query).to_arrow_table().num_rows
    con.close()
    return int(rows)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="entity rows")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    args = parser.parse_args()
    engine = DuckDBEngine(threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        entities, path = make_data(args.rows, folder)
        prep_times: dict[str, float] = {}
        prepared = {}
        for created in (False, True):
            started = time.perf_counter()
            vj = engine.prepare_view(view_join(path, created), folder / f"prep-{created}.parquet")
            prep_times["created" if created else "plain"] = time.perf_counter() - started
            prepared[created] = vj
        kept = {c: pq.ParquetFile(prepared[c].data).metadata.num_rows for c in (False, True)}

        def join(view: ViewJoin) -> Callable[[], int]:
            def run() -> int:
                table, _ = engine.point_in_time_join(entities, timestamp="ts", views=[view])
                assert table is not None
                return int(table.num_rows)

            return run

        methods: dict[str, Callable[[], int]] = {
            "bare": lambda: bare_asof(entities, path),
            "engine": join(view_join(path, False)),
            "engine+created": join(view_join(path, True)),
            "prepared": join(prepared[False]),
            "prepared+created": join(prepared[True]),
        }
        names = list(methods)
        times: dict[str, list[float]] = {name: [] for name in names}
        for rep in range(args.reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                started = time.perf_counter()
                rows = methods[name]()
                times[name].append(time.perf_counter() - started)
                assert rows == args.rows, (name, rows)
    bare = statistics.median(times["bare"])
    print(f"entity rows: {args.rows:,}  view rows: {KEYS * PER_KEY:,}  reps: {args.reps}")
    print(f"{'method':<18} {'median s':>9} {'ratio':>6}   runs")
    for name in names:
        median = statistics.median(times[name])
        runs = " ".join(f"{t:.3f}" for t in times[name])
        print(f"{name:<18} {median:>9.3f} {median / bare:>6.2f}   {runs}")
    for kind, seconds in prep_times.items():
        rows = kept[kind == "created"]
        print(f"prepare_view ({kind}): {seconds:.3f} s, {rows:,} rows kept")


if __name__ == "__main__":
    main()
