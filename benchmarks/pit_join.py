"""Point-in-time join benchmark: fourloops against Feast and a bare DuckDB ASOF floor.

One command generates the data (once, cached in ``benchmarks/.data/``), computes
an independent reference answer, runs every method in its own child process
(alternating the order across repetitions), checks each output row by row
against the reference and against fourloops, and prints wall time, CPU time,
peak resident memory and ratios. All numbers also go to
``benchmarks/results/pit_join-<date>.json``.

Methods
    fourloops      ``DuckDBEngine.point_in_time_join(..., out=...)`` (project venv)
    duckdb-asof    one bare ``ASOF LEFT JOIN`` + ``ORDER BY`` entity row: the floor.
                   It ignores the created time and the ttl, so it is not expected
                   to match the reference.
    feast-file     Feast ``get_historical_features`` with the default ``file``
                   offline store, then ``.to_df()`` (``benchmarks/.venv-feast``)
    feast-duckdb   the same with Feast's ``duckdb`` offline store

Data (seeded)
    features: 100k entities x 20 event times, 10 float features, a ``created``
    column (ingested 0-2 h after the event, 2 % of rows backfilled up to 3 days
    late), about 1 % of rows tied with another row of the same entity on the
    event time but with a later created time and other values. Entity frames:
    random ids (about 1 % without any feature row), random times over the data
    range plus 2 days before and 12 days after, and 0.3 % rows placed exactly on
    a feature row's event time, created time, or event time + ttl. Timestamps are
    UTC-aware, microsecond precision. ttl = 7 days.

Run (from the repository root)::

    .venv/bin/python benchmarks/pit_join.py                       # 100k and 1M entity rows
    .venv/bin/python benchmarks/pit_join.py --sizes 100000,1000000,5000000
    .venv/bin/python benchmarks/pit_join.py --quick               # CI: seconds
    .venv/bin/python benchmarks/pit_join.py --methods fourloops,duckdb-asof --sizes 5000000

Feast runs in its own virtual environment (never a project dependency)::

    python3 -m venv benchmarks/.venv-feast
    benchmarks/.venv-feast/bin/pip install 'feast[duckdb]'

Without it the Feast methods are skipped with a message.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _child_process import run_measured

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
RESULTS = HERE / "results"
FEAST_VENV = HERE / ".venv-feast"
FEAST_PYTHON = FEAST_VENV / "bin" / "python"
CHILD = HERE / "_pit_child.py"

METHODS = ["fourloops", "duckdb-asof", "feast-file", "feast-duckdb"]
FEAST_METHODS = {"feast-file", "feast-duckdb"}
FEATURES = [f"f{i}" for i in range(10)]
TTL_SECONDS = 7 * 86_400
START = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
SPAN = 60 * 86_400
TS = pa.timestamp("us", tz="UTC")


# --------------------------------------------------------------------------- data


def _ts(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype(np.int64) * 1_000_000, type=pa.int64()).cast(TS)


def make_features(path: Path, n_keys: int, per_key: int, seed: int) -> None:
    """Feature rows: ``n_keys`` entities x ``per_key`` event times, written in created order."""
    rng = np.random.default_rng(seed)
    n = n_keys * per_key
    key = np.repeat(np.arange(n_keys, dtype=np.int64), per_key)
    event = START + rng.integers(0, SPAN, size=(n_keys, per_key))
    event.sort(axis=1)
    delay = rng.integers(0, 2 * 3600, size=(n_keys, per_key))
    late = rng.random((n_keys, per_key)) < 0.02  # backfilled rows: visible much later
    delay[late] = rng.integers(2 * 3600, 3 * 86_400, size=int(late.sum()))
    # ~1 % of rows share the previous row's event time but were created later.
    tie = rng.random((n_keys, per_key)) < 0.01
    tie[:, 0] = False
    for j in range(1, per_key):
        rows = tie[:, j]
        event[rows, j] = event[rows, j - 1]
        delay[rows, j] = np.maximum(
            delay[rows, j], delay[rows, j - 1] + 1 + rng.integers(0, 3600, int(rows.sum()))
        )
    event, delay = event.ravel(), delay.ravel()
    created = event + delay
    order = np.argsort(created, kind="stable")  # an append log: rows land in created order
    columns = {
        "entity_id": pa.array(key[order]),
        "event_timestamp": _ts(event[order]),
        "created": _ts(created[order]),
    }
    for f in FEATURES:
        columns[f] = pa.array(rng.normal(size=n)[order])
    pq.write_table(pa.table(columns), path)
    print(f"  wrote {path.name}: {n:,} feature rows ({int(tie.sum()):,} tied, {int(late.sum()):,} late)")


def make_entities(path: Path, features: Path, n_keys: int, rows: int, seed: int) -> None:
    """Entity rows: random ids and times, plus rows exactly on the rule's boundaries."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, int(n_keys * 1.01), size=rows)  # ids >= n_keys have no features
    times = START - 2 * 86_400 + rng.integers(0, SPAN + 14 * 86_400, size=rows)
    feat = pq.read_table(features, columns=["entity_id", "event_timestamp", "created"])
    pick = np.flatnonzero(rng.random(rows) < 0.003)
    src = rng.integers(0, feat.num_rows, size=len(pick))
    f_id = feat.column("entity_id").to_numpy()[src]
    f_ev = feat.column("event_timestamp").cast(pa.int64()).to_numpy()[src] // 1_000_000
    f_cr = feat.column("created").cast(pa.int64()).to_numpy()[src] // 1_000_000
    kind = rng.integers(0, 3, size=len(pick))
    ids[pick] = f_id
    times[pick] = np.choose(kind, [f_ev, f_cr, f_ev + TTL_SECONDS])
    table = pa.table(
        {
            "entity_row_id": pa.array(np.arange(rows, dtype=np.int64)),
            "entity_id": pa.array(ids.astype(np.int64)),
            "event_timestamp": _ts(times),
        }
    )
    pq.write_table(table, path)
    print(f"  wrote {path.name}: {rows:,} entity rows ({len(pick):,} on boundaries)")


def reference(path: Path, features: Path, entities: Path) -> float:
    """The expected answer, by brute force in plain SQL (not the fourloops engine).

    For every entity row: all feature rows of the same entity with
    ``event_timestamp <= t`` and ``created <= t``; the best is the one with the
    greatest (event_timestamp, created, position in the file); its values are kept
    if ``event_timestamp >= t - ttl``, else null. Every entity row is kept.
    """
    started = time.perf_counter()
    con = duckdb.connect(config={"temp_directory": str(DATA / "duckdb-tmp")})
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(
        f"CASE WHEN b.event_timestamp >= e.event_timestamp - INTERVAL {TTL_SECONDS} SECOND "
        f"THEN b.{f} END AS {f}"
        for f in FEATURES
    )
    con.execute(
        f"""
        COPY (
            WITH f AS (SELECT *, file_row_number AS pos FROM read_parquet('{features}',
                file_row_number = true)),
                 e AS (SELECT * FROM read_parquet('{entities}')),
                 best AS (
                     SELECT e.entity_row_id, f.*
                     FROM e JOIN f ON f.entity_id = e.entity_id
                      AND f.event_timestamp <= e.event_timestamp
                      AND f.created <= e.event_timestamp
                     QUALIFY row_number() OVER (
                         PARTITION BY e.entity_row_id
                         ORDER BY f.event_timestamp DESC, f.created DESC, f.pos DESC) = 1
                 )
            SELECT e.entity_row_id, {cols}
            FROM e LEFT JOIN best b USING (entity_row_id)
            ORDER BY e.entity_row_id
        ) TO '{path}' (FORMAT parquet)
        """
    )
    con.close()
    return time.perf_counter() - started


def prepare(args: argparse.Namespace) -> tuple[Path, dict[int, tuple[Path, Path]]]:
    DATA.mkdir(parents=True, exist_ok=True)
    tag = f"{args.keys}x{args.per_key}-s{args.seed}"
    features = DATA / f"features-{tag}.parquet"
    if not features.exists():
        make_features(features, args.keys, args.per_key, args.seed)
    out: dict[int, tuple[Path, Path]] = {}
    for size in args.sizes:
        entities = DATA / f"entities-{tag}-{size}.parquet"
        ref = DATA / f"reference-{tag}-{size}.parquet"
        if not entities.exists():
            make_entities(entities, features, args.keys, size, args.seed + size)
        if not ref.exists():
            seconds = reference(ref, features, entities)
            print(f"  reference for {size:,} rows computed in {seconds:.1f} s (brute-force SQL)")
        out[size] = (entities, ref)
    return features, out


# --------------------------------------------------------------------------- runs


def run_child(
    method: str,
    features: Path,
    entities: Path,
    out: Path,
    timeout: float,
    feast_created_filter: bool,
) -> dict:
    """Run one method in a fresh process.

    Wall and CPU time of the join come from the child; its peak RSS is the
    child's own VmHWM (wait4's ru_maxrss would include this parent's resident
    size, inherited across fork and exec on Linux; it is kept as
    ``wait4_maxrss_mb`` and is the only figure for a run killed on timeout).
    """
    python = str(FEAST_PYTHON) if method in FEAST_METHODS else sys.executable
    workdir = DATA / "work" / method
    shutil.rmtree(workdir, ignore_errors=True)
    out.unlink(missing_ok=True)
    command = [
        python,
        str(CHILD),
        method,
        str(features),
        str(entities),
        str(out),
        str(workdir),
        *(["--created-filter"] if feast_created_filter and method in FEAST_METHODS else []),
    ]
    result = run_measured(command, DATA / "work" / f"{method}.log", timeout)
    if result["status"] != "ok":  # no report of its own: wait4's figure is the only one
        result["peak_rss_mb"] = result["wait4_maxrss_mb"]
    return result


def engine_hash() -> str:
    """Hash of the fourloops engine sources, recorded per run (they may change under a run)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((HERE.parent / "src" / "fourloops" / "engines").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def compare(con: duckdb.DuckDBPyConnection, got: Path, expected: Path) -> dict:
    """Row-by-row comparison of ``got`` with ``expected`` on ``entity_row_id``."""
    differs = " OR ".join(f"g.{f} IS DISTINCT FROM x.{f}" for f in FEATURES)
    g_null = " AND ".join(f"g.{f} IS NULL" for f in FEATURES)
    x_null = " AND ".join(f"x.{f} IS NULL" for f in FEATURES)
    rows_out, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT entity_row_id) FROM read_parquet('{got}')"
    ).fetchone()
    missing, differ, extra, lost, other = con.execute(
        f"""
        WITH g AS (SELECT * FROM read_parquet('{got}')
                   QUALIFY row_number() OVER (PARTITION BY entity_row_id) = 1)
        SELECT count(*) FILTER (WHERE g.entity_row_id IS NULL),
               count(*) FILTER (WHERE g.entity_row_id IS NOT NULL AND ({differs})),
               count(*) FILTER (WHERE g.entity_row_id IS NOT NULL AND ({x_null}) AND NOT
                   ({g_null})),
               count(*) FILTER (WHERE g.entity_row_id IS NOT NULL AND ({g_null}) AND NOT
                   ({x_null})),
               count(*) FILTER (WHERE g.entity_row_id IS NOT NULL AND NOT ({g_null}) AND NOT
                   ({x_null})
                                AND ({differs}))
        FROM read_parquet('{expected}') x LEFT JOIN g USING (entity_row_id)
        """
    ).fetchone()
    return {
        "rows_out": rows_out,
        "duplicate_rows": rows_out - distinct,
        "missing_rows": missing,
        "differing_rows": differ,
        "value_where_expected_null": extra,
        "null_where_expected_value": lost,
        "other_value": other,
        "identical": rows_out == distinct and missing == 0 and differ == 0,
    }


def diagnose(con: duckdb.DuckDBPyConnection, got: Path, ref: Path, entities: Path, features: Path) -> dict:
    """Of the returned rows whose (non-null) values differ: which feature row was picked instead.

    Feature values are distinct random floats, so ``(entity_id, f0)`` finds the
    picked row on both sides.
    """
    row = con.execute(
        f"""
        WITH f AS (SELECT entity_id, event_timestamp, created, f0 FROM read_parquet('{features}')),
             d AS (SELECT e.entity_id, g.f0 AS gf0, x.f0 AS xf0
                   FROM read_parquet('{entities}') e
                   JOIN read_parquet('{got}') g USING (entity_row_id)
                   JOIN read_parquet('{ref}') x USING (entity_row_id)
                   WHERE g.f0 IS NOT NULL AND x.f0 IS NOT NULL AND g.f0 <> x.f0)
        SELECT count(*) FILTER (WHERE gf.event_timestamp = xf.event_timestamp AND gf.created <
            xf.created),
               count(*) FILTER (WHERE gf.event_timestamp = xf.event_timestamp AND gf.created >=
                   xf.created),
               count(*) FILTER (WHERE gf.event_timestamp <> xf.event_timestamp)
        FROM d JOIN f gf ON gf.entity_id = d.entity_id AND gf.f0 = d.gf0
               JOIN f xf ON xf.entity_id = d.entity_id AND xf.f0 = d.xf0
        """
    ).fetchone()
    return {"same_event_earlier_created": row[0], "same_event_other": row[1], "other_event": row[2]}


def in_input_order(path: Path) -> bool:
    ids = pq.read_table(path, columns=["entity_row_id"]).column(0).to_numpy()
    return bool(np.array_equal(ids, np.arange(len(ids))))


def check(out: Path, ref: Path, rows_in: int, entities: Path, features: Path) -> dict:
    con = duckdb.connect()
    result = {"rows_in": rows_in, "vs_reference": compare(con, out, ref)}
    if result["vs_reference"]["other_value"]:
        result["picked_instead"] = diagnose(con, out, ref, entities, features)
    result["input_order"] = in_input_order(out)
    con.close()
    result["correct"] = result["vs_reference"]["identical"] and result["vs_reference"]["rows_out"] == rows_in
    return result


# --------------------------------------------------------------------------- report


def machine(feast: bool) -> dict:
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    info = {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kb / 1024**2, 1),
        "cpu": next(
            (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
            "?",
        ),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pa.__version__,
    }
    try:
        import importlib.metadata as md

        info["fourloops"] = md.version("fourloops")
        info["git_commit"] = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except Exception:  # noqa: BLE001 - informative only
        pass
    if feast:
        code = (
            "import importlib.metadata as m, json, platform\n"
            "v = {}\n"
            "for n in ['feast', 'duckdb', 'pandas', 'pyarrow', 'dask', 'ibis-framework']:\n"
            "    try:\n        v[n] = m.version(n)\n"
            "    except m.PackageNotFoundError:\n        pass\n"
            "v['python'] = platform.python_version(); print(json.dumps(v))"
        )
        done = subprocess.run([str(FEAST_PYTHON), "-c", code], capture_output=True, text=True)
        info["feast_venv"] = json.loads(done.stdout) if done.returncode == 0 else done.stderr[-300:]
    return info


def summarise(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return {"status": runs[0]["status"] if runs else "skipped"}
    walls = [r["seconds"] for r in ok]
    return {
        "status": "ok" if len(ok) == len(runs) else "partial",
        "n": len(ok),
        "wall_median": statistics.median(walls),
        "wall_min": min(walls),
        "wall_max": max(walls),
        "cpu_median": statistics.median(r["cpu"] for r in ok),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
        "setup_median": statistics.median(r["setup"] for r in ok),
    }


def print_table(results: dict, sizes: list[int], methods: list[str]) -> None:
    head = (
        f"{'method':<13} {'entity rows':>11} {'wall s (median, min-max)':>26} {'CPU s':>7} "
        f"{'peak RSS MB':>11} {'rows out':>9} {'correct':>8} {'diff vs ref':>11} "
        f"{'diff vs fl':>10} {'x fourloops':>11} {'setup s':>8}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for size in sizes:
        entry = results[str(size)]
        fl = entry["methods"].get("fourloops", {}).get("summary", {})
        for method in methods:
            m = entry["methods"].get(method)
            if m is None:
                continue
            s, c = m["summary"], m.get("check")
            if s.get("status") not in ("ok", "partial"):
                print(f"{method:<13} {size:>11,} {s.get('status', 'skipped'):>26}")
                continue
            wall = f"{s['wall_median']:.2f} ({s['wall_min']:.2f}-{s['wall_max']:.2f})"
            if c:
                ref = c["vs_reference"]
                correct = "yes" if c["correct"] else ("floor" if method == "duckdb-asof" else "NO")
                diff = f"{ref['differing_rows'] + ref['missing_rows']:,}"
                dfl = (
                    f"{c['vs_fourloops']['differing_rows'] + c['vs_fourloops']['missing_rows']:,}"
                    if "vs_fourloops" in c
                    else "-"
                )
                rows_out = f"{ref['rows_out']:,}"
            else:
                correct, diff, dfl, rows_out = "?", "?", "?", "?"
            ratio = f"{s['wall_median'] / fl['wall_median']:.2f}" if fl.get("wall_median") else "-"
            print(
                f"{method:<13} {size:>11,} {wall:>26} {s['cpu_median']:>7.2f} "
                f"{s['peak_rss_mb']:>11.0f} "
                f"{rows_out:>9} {correct:>8} {diff:>11} {dfl:>10} {ratio:>11} {s['setup_median']:>8.2f}"
            )
        floor = entry["methods"].get("duckdb-asof", {}).get("summary", {})
        if fl.get("wall_median") and floor.get("wall_median"):
            print(
                f"{'':13} {'':>11} fourloops / ASOF floor = "
                f"{fl['wall_median'] / floor['wall_median']:.2f}x wall, "
                f"{fl['peak_rss_mb'] / floor['peak_rss_mb']:.2f}x peak RSS"
            )
    print("\n'x fourloops' = method median wall / fourloops median wall (>1: fourloops faster).")
    print("'diff vs ref' = entity rows missing from the output or with any feature value differing from the")
    print("brute-force reference; 'correct' only if none differ and every entity row is returned once.")
    print("duckdb-asof is the floor: it ignores created time and ttl, so it differs by design.")
    print("'setup s' = untimed-in-wall set-up per run: imports, `feast apply`, and for fourloops the")
    print("ingestion-time preparation of the view (done once per version of the view's rows).")


def explain(results: dict, sizes: list[int], methods: list[str]) -> None:
    for size in sizes:
        for method in methods:
            c = results[str(size)]["methods"].get(method, {}).get("check")
            if not c or c["correct"]:
                continue
            r = c["vs_reference"]
            print(
                f"  {method} @ {size:,}: rows in {c['rows_in']:,}, out {r['rows_out']:,} "
                f"(missing {r['missing_rows']:,}, duplicated {r['duplicate_rows']:,}); of "
                f"returned rows: "
                f"{r['value_where_expected_null']:,} have values where the rule gives null (not "
                f"yet created / "
                f"expired / ...), {r['null_where_expected_value']:,} null where the rule gives "
                f"values, "
                f"{r['other_value']:,} other values"
            )
            if "picked_instead" in c:
                p = c["picked_instead"]
                print(
                    f"    other values: {p['same_event_earlier_created']:,} picked a row tied "
                    f"on event time but "
                    f"created earlier, {p['same_event_other']:,} another tied row, "
                    f"{p['other_event']:,} a row with another event time"
                )


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000", help="entity-frame sizes, comma separated")
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    p.add_argument("--repeat", type=int, default=None, help="repetitions per method (default 3, --quick 1)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run before it counts as timeout")
    p.add_argument("--quick", action="store_true", help="10k entities x 5 times, 20k entity rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-feast-created-filter",
        dest="feast_created_filter",
        action="store_false",
        help="run Feast without filter_by_created_timestamp=True (its default: created time "
        "only breaks ties, so values can be seen before they were created)",
    )
    p.add_argument("--json", type=Path, default=None, help="where to write results")
    args = p.parse_args()
    if args.quick:
        args.keys, args.per_key, args.sizes = 10_000, 5, [20_000]
        args.repeat = args.repeat or 1
    else:
        args.keys, args.per_key = 100_000, 20
        args.sizes = [int(s) for s in args.sizes.split(",")]
        args.repeat = args.repeat or 3
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        p.error(f"unknown methods {sorted(unknown)}")
    return args


def main() -> None:
    args = parse_args()
    methods = list(args.methods)
    if FEAST_METHODS & set(methods) and not FEAST_PYTHON.exists():
        print(
            f"Feast venv not found at {FEAST_VENV}: skipping "
            f"{sorted(FEAST_METHODS & set(methods))}.\n"
            f"Create it with:\n  python3 -m venv {FEAST_VENV}\n"
            f"  {FEAST_VENV}/bin/pip install 'feast[duckdb]'\n"
        )
        methods = [m for m in methods if m not in FEAST_METHODS]
    info = machine(feast=bool(FEAST_METHODS & set(methods)))
    print("machine:", json.dumps(info))
    print(
        f"data: {args.keys:,} entities x {args.per_key} event times; ttl {TTL_SECONDS // 86400} "
        f"days; "
        f"sizes {args.sizes}; {args.repeat} repetition(s), order alternating; timeout "
        f"{args.timeout:.0f} s"
    )
    if FEAST_METHODS & set(methods):
        print(
            "Feast: get_historical_features(filter_by_created_timestamp="
            f"{args.feast_created_filter}), "
            "otherwise defaults; feast-file = offline_store type 'file' (dask), feast-duckdb = "
            "type 'duckdb' (ibis)"
        )
    features, frames = prepare(args)
    results: dict = {}
    gave_up: set[str] = set()  # a method that timed out is not tried at larger sizes
    for size in args.sizes:
        entities, ref = frames[size]
        outs = {m: DATA / "work" / f"out-{m}-{size}.parquet" for m in methods}
        entry = {"entity_rows": size, "methods": {m: {"runs": []} for m in methods}}
        results[str(size)] = entry
        for rep in range(args.repeat):
            order = methods if rep % 2 == 0 else methods[::-1]
            for method in order:
                runs = entry["methods"][method]["runs"]
                if method in gave_up or (runs and runs[-1]["status"] != "ok"):
                    continue
                run = run_child(
                    method,
                    features,
                    entities,
                    outs[method],
                    args.timeout,
                    args.feast_created_filter,
                )
                if method == "fourloops":
                    run["engine_sha"] = engine_hash()
                runs.append(run)
                shown = f"{run['seconds']:.2f} s" if run["status"] == "ok" else run["status"]
                print(
                    f"  [{size:,} rep {rep + 1}] {method:<13} {shown}  (peak RSS "
                    f"{run['peak_rss_mb']:.0f} MB)",
                    flush=True,
                )
                if run["status"] == "error":
                    print("    " + run["error"].replace("\n", "\n    "))
                if run["status"] == "timeout":
                    gave_up.add(method)
                if run["status"] == "ok" and "check" not in entry["methods"][method]:
                    # correctness first: the first output of every method is checked
                    entry["methods"][method]["check"] = check(outs[method], ref, size, entities, features)
        # vs-fourloops comparisons once every method has written its output
        for method in methods:
            m = entry["methods"][method]
            if (
                "check" in m
                and method != "fourloops"
                and outs[method].exists()
                and "fourloops" in outs
                and outs["fourloops"].exists()
            ):
                con = duckdb.connect()
                m["check"]["vs_fourloops"] = compare(con, outs[method], outs["fourloops"])
                con.close()
            m["summary"] = summarise(m["runs"])
    shas = {
        r.get("engine_sha")
        for e in results.values()
        for r in e["methods"].get("fourloops", {}).get("runs", [])
    }
    if len(shas) > 1:
        print(f"\nWARNING: the fourloops engine sources changed during this run ({sorted(shas)}); rerun.")
    print_table(results, args.sizes, methods)
    explain(results, args.sizes, methods)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = (
        args.json or RESULTS / f"pit_join-{dt.date.today().isoformat()}{'-quick' if args.quick else ''}.json"
    )
    command = "python benchmarks/pit_join.py " + " ".join(sys.argv[1:])
    path.write_text(
        json.dumps(
            {
                "command": command,
                "machine": info,
                "ttl_days": TTL_SECONDS / 86400,
                "feast_filter_by_created_timestamp": args.feast_created_filter,
                "feature_rows": args.keys * args.per_key,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
