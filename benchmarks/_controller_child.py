"""The controller benchmark's work, each step in its own process (run by ``benchmarks/controller.py``).

Not meant to be run by hand, but it can be::

    python benchmarks/_controller_child.py build ROOT --events N [--seed S]
    python benchmarks/_controller_child.py measure ROOT --reps R [--first tick|floor]
    python benchmarks/_controller_child.py profile ROOT --out PROFILE.txt

``build`` writes a project of :data:`MODELS` small binary models (a request
contract of ``region``, a category of :data:`SEGMENTS` values, and ``x``, a
number; ``segments=["region"]``; a rollout policy of one canary stage and three
checks), trains two versions of each, promotes v1, starts a canary rollout
of v2 for each (``Project.rollout``), then fills the event tables with N
events (:func:`fill`) and runs ``Project.compact_events()`` once.

``measure`` loads the project on a :class:`~fourloops.clock.ManualClock` and
times ``Project.tick()`` (every tick after the lease of the previous one
expired, by a holder of its own) and the floor (:func:`floor`) alternately,
``R`` times each, after one cold tick (the first in the process: imports,
first connections) that is reported apart. It checks that the floor's sums
give the tick's numbers (rows and difference of every check, overall and per
segment) and that every rollout is still running.

``profile`` runs one tick (after a cold one) under pyinstrument.

The last line on stdout is a JSON object with the measurements.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from _child_process import child_arguments, peak_rss_mb, report
from _profiling import inclusive, top_frames

MODELS = 10
SEGMENTS = 10
#: Events per chunk written: what one compaction chunk of the local store holds (``COMPACT_CHUNK``).
CHUNK = 500_000
#: The canary stage starts here; the events span one day of champion-only history before it and
#: three days of canary after it.
CANARY_START = datetime(2024, 3, 1, tzinfo=UTC)
HISTORY = timedelta(days=1)
WINDOW = timedelta(days=3)
CANARY_SHARE = 0.1
LABELLED = 0.8
FALLBACK = 0.005
LEASE = timedelta(seconds=60)
#: The checks of every model's policy: (outcome, needs a label, lower is better).
CHECKS = (("error", True), ("log_loss", True), ("fallback", False))
STATE = "bench-state.json"

DEFINITIONS = f"""
import lightgbm
import fourloops as fl

REGIONS = [f"r{{i}}" for i in range({SEGMENTS})]
POLICY = fl.Rollout(
    stages=[fl.Canary({CANARY_SHARE}, min_requests=10**12, max_duration=None), fl.Full()],
    checks=[
        fl.Check("error", margin=0.02),
        fl.Check("log_loss", margin=0.05),
        fl.Check("fallback", margin=0.01, critical=True),
    ],
)
for _i in range({MODELS}):
    _name = f"m{{_i:02d}}"
    globals()[_name] = fl.Model(
        _name,
        task="binary",
        entities=fl.FileSource("data/train.parquet", timestamp="at"),
        request=fl.Contract({{"region": fl.Category(REGIONS), "x": fl.Float()}}),
        label=fl.Label("y"),
        trainer=lightgbm.LGBMClassifier(n_estimators=10, num_leaves=7, deterministic=True,
                                        force_row_wise=True, n_jobs=1, verbose=-1),
        segments=["region"],
        fallback=fl.Fallback(constant=0.5),
        rollout=POLICY,
    )
"""


def _segment_logits() -> np.ndarray:
    return np.linspace(-1.0, 1.0, SEGMENTS)


def _segment_shares() -> np.ndarray:
    p: np.ndarray = 1.0 / np.arange(1, SEGMENTS + 1) ** 0.8  # some segments busier than others
    shares: np.ndarray = p / p.sum()
    return shares


# --------------------------------------------------------------------------- build


def write_project(root: Path, seed: int) -> None:
    """The project's files: fourloops.toml, definitions.py, and 4,000 training rows."""
    import polars as pl

    rng = np.random.default_rng([seed, 1])
    (root / "data").mkdir(parents=True)
    (root / "fourloops.toml").write_text('[project]\nname = "controller-bench"\n')
    (root / "definitions.py").write_text(DEFINITIONS)
    n = 4000
    seg = rng.choice(SEGMENTS, n, p=_segment_shares())
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(1.2 * x + _segment_logits()[seg])))
    start = CANARY_START - timedelta(days=60)
    pl.DataFrame(
        {
            "at": [start + timedelta(minutes=int(m)) for m in np.sort(rng.integers(0, 50 * 24 * 60, n))],
            "region": [f"r{k}" for k in seg],
            "x": x,
            "y": (rng.random(n) < p).astype(np.int64),
        },
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    ).write_parquet(root / "data" / "train.parquet")


def chunk_frames(start: int, stop: int, total: int, seed: int) -> tuple[Any, Any]:
    """Events ``start..stop`` of ``total`` (in time order) as raw event and label frames.

    Every model gets a tenth of the events; before :data:`CANARY_START` only the champion (v1)
    answers, after it the canary (v2) answers :data:`CANARY_SHARE` of them. Both versions'
    predictions come from the same process (the canary is as good as the champion), so the checks
    never fail; a label arrives an hour later for :data:`LABELLED` of the events.
    """
    import polars as pl

    rng = np.random.default_rng([seed, start])
    n = stop - start
    first = CANARY_START - HISTORY
    span_us = (HISTORY + WINDOW) // timedelta(microseconds=1)
    index = np.arange(start, stop)
    at_us = ((index + rng.random(n)) * (span_us / total)).astype(np.int64)
    epoch_us = (first - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    at = pl.from_epoch(pl.Series("at", at_us + epoch_us), time_unit="us").dt.replace_time_zone("UTC")
    model = rng.integers(0, MODELS, n)
    after = at_us >= (HISTORY // timedelta(microseconds=1))
    canary = after & (rng.random(n) < CANARY_SHARE)
    seg = rng.choice(SEGMENTS, n, p=_segment_shares())
    x = rng.normal(size=n)
    logit = 1.2 * x + _segment_logits()[seg]
    truth = 1 / (1 + np.exp(-logit))
    prediction = 1 / (1 + np.exp(-(logit + rng.normal(scale=0.3, size=n))))
    fallback = rng.random(n) < FALLBACK
    prediction = np.where(fallback, 0.5, prediction)
    labelled = rng.random(n) < LABELLED
    y = (rng.random(n) < truth).astype(np.int64)
    frame = pl.DataFrame(
        {
            "i": index,
            "model": model,
            "canary": canary,
            "seg": seg,
            "x": x,
            "prediction": prediction,
            "latency_ms": rng.lognormal(0.5, 0.4, n),
            "fallback": fallback,
            "unit": rng.integers(0, 1_000_000, n),
        }
    ).with_columns(at)
    request_id = pl.concat_str([pl.lit("r"), pl.col("i").cast(pl.String).str.zfill(10)])
    events = frame.select(
        request_id.alias("request_id"),
        pl.concat_str([pl.lit("u"), pl.col("unit").cast(pl.String)]).alias("unit_id"),
        pl.col("at"),
        pl.concat_str([pl.lit("m"), pl.col("model").cast(pl.String).str.zfill(2)]).alias("model"),
        pl.when(pl.col("canary")).then(2).otherwise(1).cast(pl.Int64).alias("version"),
        pl.when(pl.col("canary")).then(pl.lit("canary")).otherwise(pl.lit("champion")).alias("route"),
        pl.concat_str(
            [
                pl.lit('{"region":"r'),
                pl.col("seg").cast(pl.String),
                pl.lit('","x":'),
                pl.col("x").cast(pl.String),
                pl.lit("}"),
            ]  # fmt: skip
        ).alias("features"),
        pl.col("prediction").cast(pl.String).alias("output"),
        pl.lit(None, dtype=pl.Float64).alias("propensity"),
        pl.col("latency_ms"),
        pl.col("fallback"),
        pl.when(pl.col("fallback"))
        .then(
            pl.concat_str(
                [
                    pl.lit('{"fallback":true,"fallback_reason":"model_error","routed_version":'),
                    pl.when(pl.col("canary")).then(pl.lit("2")).otherwise(pl.lit("1")),
                    pl.lit("}"),
                ]
            )
        )
        .otherwise(pl.lit("{}"))
        .alias("extra"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("position"),
    )
    labels = (
        events.select("request_id", "at", "model")
        .with_columns(pl.Series("y", y), pl.Series("labelled", labelled))
        .filter(pl.col("labelled"))
        .select(
            "request_id",
            pl.col("y").cast(pl.String).alias("value"),
            (pl.col("at") + pl.duration(hours=1)).alias("at"),
            "model",  # the store knows each label's model: the label arrives after its event
            pl.int_range(pl.len(), dtype=pl.Int64).alias("position"),
        )
    )
    return events, labels


def fill(project: Any, total: int, seed: int) -> dict[str, Any]:
    """Write ``total`` events (and their labels) to the event tables, chunk by chunk.

    Through :meth:`EventTables.append` under the compaction lock: the writer the compaction of
    the event log uses, with chunks of the size it compacts (so the same typed, partitioned
    files), without going through the JSON log first. Then ``Project.compact_events()`` once.
    """
    from fourloops.storage.events.columnar import raw_events_frame, raw_labels_frame

    tables = project.event_tables
    schemas = project.event_schemas()
    generate = write = 0.0
    events = labels = files = 0
    for start in range(0, total, CHUNK):
        t0 = time.perf_counter()
        raw_events, raw_labels = chunk_frames(start, min(total, start + CHUNK), total, seed)
        t1 = time.perf_counter()
        with tables.locked() as manifest:
            report = tables.append(
                raw_events_frame(raw_events), raw_labels_frame(raw_labels), schemas, manifest
            )
            tables.save_manifest(manifest)
        t2 = time.perf_counter()
        generate, write = generate + t1 - t0, write + t2 - t1
        events, labels, files = (
            events + report.events_written,
            labels + report.labels_written,
            files + report.files,
        )
    t0 = time.perf_counter()
    compacted = project.compact_events()
    compact = time.perf_counter() - t0
    assert events == total, (events, total)
    return {
        "generate_seconds": generate,
        "write_seconds": write,
        "compact_events_seconds": compact,
        "compact_events_report": compacted.to_dict(),
        "events_written": events,
        "labels_written": labels,
        "files": files,
        "event_files": len(tables.event_files()),
        "label_files": len(tables.label_files()),
        "bytes": sum(f.stat().st_size for f in [*tables.event_files(), *tables.label_files()]),
    }


def build(root: Path, total: int, seed: int) -> dict[str, Any]:
    from fourloops.clock import ManualClock
    from fourloops.project import Project

    t0 = time.perf_counter()
    write_project(root, seed)
    clock = ManualClock(CANARY_START)
    out: dict[str, Any] = {}
    with Project.load(root, env={}, clock=clock) as project:
        t1 = time.perf_counter()
        for name in sorted(project.models):
            for version in (1, 2):
                result = project.train(
                    name, seed=version, params=None if version == 1 else {"n_estimators": 5}
                )
                assert result.version == version, result
            project.promote(name, 1, force=True, reason="benchmark")
        t2 = time.perf_counter()
        for name in sorted(project.models):
            started = project.rollout(name, 2, reason="benchmark")
            assert started.kind == "rollout_start", started
        t3 = time.perf_counter()
        out["fill"] = fill(project, total, seed)
        t4 = time.perf_counter()
    now = CANARY_START + WINDOW + timedelta(minutes=5)
    (root / STATE).write_text(json.dumps({"now": now.isoformat(), "events": total, "seed": seed}))
    out.update(
        {
            "project_seconds": t1 - t0,
            "train_seconds": t2 - t1,
            "rollout_start_seconds": t3 - t2,
            "fill_seconds": t4 - t3,
            "peak_rss_mb": peak_rss_mb(),
        }
    )
    return out


# --------------------------------------------------------------------------- floor


def _outcome(outcome: str) -> str:
    """One request's outcome, written here on its own (the equality check compares it with the tick's)."""
    if outcome == "error":
        return (
            "CASE WHEN label_number IS NULL THEN NULL "
            "WHEN (prediction >= 0.5) = (label_number >= 0.5) THEN 0.0 ELSE 1.0 END"
        )
    if outcome == "log_loss":
        p = "least(greatest(prediction, 1e-15), 1 - 1e-15)"
        return f"-(label_number * ln({p}) + (1 - label_number) * ln(1 - {p}))"
    return "CASE WHEN fallback THEN 1.0 ELSE 0.0 END"


def _listed(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


_ARMS = "((route = 'champion' AND version = 1) OR (route = 'canary' AND version = 2))"


def _window(start: datetime, until: datetime) -> str:
    return f"\"at\" >= TIMESTAMPTZ '{start.isoformat()}' AND \"at\" < TIMESTAMPTZ '{until.isoformat()}'"


def per_check_queries(
    tables: Any,
    models: list[str],
    start: datetime,
    until: datetime,
    labels: dict[str, list[Path]] | None = None,
) -> list[tuple[str, str, str]]:
    """``(model, check, sql)``: one aggregation per check per segment column (none, ``region``) per model.

    Each reads the model's event files (joined with the label files when the outcome needs a
    label: the model's, or ``labels[model]``) and returns count, sum and sum of squares per arm
    (and region).
    """
    out = []
    for model in models:
        files = _listed(tables.event_files(model))
        label_files = _listed(tables.label_files(model) if labels is None else labels[model])
        for outcome, labelled in CHECKS:
            source = f"read_parquet({files})"
            if labelled:
                source += f" JOIN read_parquet({label_files}) USING (request_id)"
            for seg in ("'all'", "region"):
                out.append(
                    (
                        model,
                        outcome,
                        f"SELECT {seg} AS seg, route, count(x) AS n, sum(x) AS total, sum(x * x) AS squares "
                        f"FROM (SELECT route, region, {_outcome(outcome)} AS x FROM {source} "
                        f"WHERE {_ARMS} AND {_window(start, until)}) "
                        "WHERE x IS NOT NULL AND isfinite(x) GROUP BY ALL",
                    )
                )
    return out


def fused_queries(
    tables: Any,
    models: list[str],
    start: datetime,
    until: datetime,
    labels: dict[str, list[Path]] | None = None,
) -> list[tuple[str, str]]:
    """``(model, sql)``: the three checks, overall and per region, in one query per model (one scan
    of its events, joined with its label files or ``labels[model]``): what the tick does."""
    out = []
    for model in models:
        files = _listed(tables.event_files(model))
        label_files = _listed(tables.label_files(model) if labels is None else labels[model])
        sums = ", ".join(
            f"count({c}) FILTER (WHERE isfinite({c})) AS n_{c}, "
            f"sum({c}) FILTER (WHERE isfinite({c})) AS t_{c}, "
            f"sum({c} * {c}) FILTER (WHERE isfinite({c})) AS s_{c}"
            for c, _ in CHECKS
        )
        outcomes = ", ".join(f"{_outcome(c)} AS {c}" for c, _ in CHECKS)
        out.append(
            (
                model,
                f"SELECT CASE WHEN grouping(region) = 1 THEN 'all' ELSE region END AS seg, route, {sums} "
                f"FROM (SELECT route, region, {outcomes} FROM read_parquet({files}) "
                f"LEFT JOIN read_parquet({label_files}) USING (request_id) "
                f"WHERE {_ARMS} AND {_window(start, until)}) "
                "GROUP BY GROUPING SETS ((route), (route, region))",
            )
        )
    return out


def _put(
    sums: dict[str, Any], model: str, outcome: str, seg: str, route: str, values: tuple[Any, ...]
) -> None:
    key = "all" if seg == "all" else f"region={seg}"
    n, total, squares = values
    if n:
        cells = sums.setdefault(model, {}).setdefault(outcome, {}).setdefault(key, {})
        cells[route] = (int(n), float(total), float(squares))


def per_check(
    tables: Any, models: list[str], start: datetime, until: datetime
) -> tuple[float, dict[str, Any]]:
    """:func:`per_check_queries` in one DuckDB connection: (seconds, sums as :func:`floor` gives them)."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    sums: dict[str, Any] = {}
    for model, outcome, sql in per_check_queries(tables, models, start, until):
        for seg, route, *values in con.execute(sql).fetchall():
            _put(sums, model, outcome, seg, route, tuple(values))
    con.close()
    return time.perf_counter() - t0, sums


def floor(
    tables: Any,
    models: list[str],
    start: datetime,
    until: datetime,
    labels: dict[str, list[Path]] | None = None,
) -> tuple[float, dict[str, Any]]:
    """The tick's aggregations done straight in one DuckDB connection, one query a model:
    (seconds, sums)."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    sums: dict[str, Any] = {}
    for model, sql in fused_queries(tables, models, start, until, labels):
        for seg, route, *values in con.execute(sql).fetchall():
            for i, (outcome, _) in enumerate(CHECKS):
                _put(sums, model, outcome, seg, route, tuple(values[3 * i : 3 * i + 3]))
    con.close()
    return time.perf_counter() - t0, sums


def check_equal(decisions: list[Any], sums: dict[str, Any]) -> dict[str, Any]:
    """The tick's rows and differences against the floor's sums, every check, overall and per segment."""
    compared = worst = 0.0
    mismatches: list[str] = []
    for decision in decisions:
        for check in decision.evidence["checks"]:
            cells = sums[decision.model][check["outcome"]]
            items = [("all", check), *check.get("segments", {}).items()]
            for key, got in items:
                arms = cells.get(key, {})
                champion = arms.get("champion", (0, 0.0, 0.0))
                canary = arms.get("canary", (0, 0.0, 0.0))
                rows = got["rows"]
                if (rows["champion"], rows["canary"]) != (champion[0], canary[0]):
                    mismatches.append(
                        f"{decision.model} {check['outcome']} {key}: rows {rows} "
                        f"vs {champion[0]}, {canary[0]}"
                    )
                    continue
                if got["difference"] is None:
                    continue
                # lower is better for all three outcomes: difference = champion mean - canary mean
                expected = champion[1] / champion[0] - canary[1] / canary[0]
                error = abs(got["difference"] - expected)
                worst = max(worst, error)
                compared += 1
                if error > 1e-9 * max(1.0, abs(expected)):
                    mismatches.append(
                        f"{decision.model} {check['outcome']} {key}: {got['difference']} vs {expected}"
                    )
    return {
        "compared": int(compared),
        "max_abs_diff": worst,
        "mismatches": mismatches[:10],
        "equal": not mismatches,
    }


# --------------------------------------------------------------------------- ticks


def _load(root: Path) -> tuple[Any, Any, dict[str, Any]]:
    from fourloops.clock import ManualClock
    from fourloops.project import Project

    state = json.loads((root / STATE).read_text())
    clock = ManualClock(datetime.fromisoformat(state["now"]))
    return Project.load(root, env={}, clock=clock), clock, state


def _tick(project: Any, clock: Any) -> tuple[float, Any]:
    """One tick, after the previous holder's lease expired, by a holder of its own."""
    clock.advance(LEASE + timedelta(seconds=1))
    holder = f"bench-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    report = project.tick(holder=holder, lease=LEASE)
    seconds = time.perf_counter() - t0
    kinds = [d.kind for d in report.decisions]
    assert report.acquired and kinds == ["wait"] * MODELS, (report.acquired, kinds, report.decisions[:1])
    return seconds, report


def _save(root: Path, state: dict[str, Any], clock: Any) -> None:
    (root / STATE).write_text(json.dumps({**state, "now": clock().isoformat()}))


def measure(root: Path, reps: int, first: str) -> dict[str, Any]:
    import os

    project, clock, state = _load(root)
    models = sorted(project.models)
    loads: list[float] = [os.getloadavg()[0]]
    with project:
        try:
            result = _measure(project, clock, models, reps, first, loads)
        finally:  # the leases and journal entries of this process's ticks stay: later ticks start later
            _save(root, state, clock)
    return {**result, "loadavg_1min": loads, "peak_rss_mb": peak_rss_mb()}


def _measure(
    project: Any, clock: Any, models: list[str], reps: int, first: str, loads: list[float]
) -> dict[str, Any]:
    import os

    from fourloops.storage.controller_state import RolloutStatus

    tables = project.event_tables
    cold, report = _tick(project, clock)
    ticks: list[float] = []
    floors: list[float] = []
    equality: dict[str, Any] | None = None
    order = ["tick", "floor"] if first == "tick" else ["floor", "tick"]
    for rep in range(reps):
        for what in order if rep % 2 == 0 else order[::-1]:
            loads.append(os.getloadavg()[0])
            if what == "tick":
                seconds, report = _tick(project, clock)
                ticks.append(seconds)
            else:
                start = CANARY_START
                seconds, sums = floor(tables, models, start, clock())
                floors.append(seconds)
                if equality is None:
                    equality = check_equal(report.decisions, sums)
    open_rollouts = sum(
        1
        for name in models
        if (r := project.rollout_log.current(name)) is not None and r.status == RolloutStatus.RUNNING
    )
    verdicts: dict[str, int] = {}
    for decision in report.decisions:
        for check in decision.evidence["checks"]:
            verdicts[check["verdict"]] = verdicts.get(check["verdict"], 0) + 1
            for seg in check.get("segments", {}).values():
                verdicts["segment " + seg["verdict"]] = verdicts.get("segment " + seg["verdict"], 0) + 1
    return {
        "cold_tick_seconds": cold,
        "tick_seconds": ticks,
        "floor_seconds": floors,
        "queries_per_tick": len(models),
        "equality": equality,
        "running_rollouts_after": open_rollouts,
        "verdicts_last_tick": verdicts,
    }


def _kind(sql: str) -> str:
    """What a query of the tick measures, from its text: the stage's checks, or something else."""
    return "stage checks (all, overall and by region)" if "GROUPING SETS" in sql else "other"


def profile(root: Path, out: Path) -> dict[str, Any]:
    """One tick under pyinstrument; one more with every query timed; the per-query fixed costs."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {"status": "skipped: pyinstrument is not installed in this venv"}
    from fourloops.engines.duckdb_events import register_events

    project, clock, state = _load(root)
    engine = project.engine
    with project:
        try:
            _tick(project, clock)  # cold: imports, first connections
            profiler = Profiler(interval=0.001)
            profiler.start()
            seconds, _ = _tick(project, clock)
            profiler.stop()
            # the same tick with each query of the engine timed (by check, overall / by segment)
            original = engine.query_events
            queries: dict[str, list[float]] = {}

            def timed(tables: Any, query: str, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return original(tables, query, **kwargs)
                finally:
                    queries.setdefault(_kind(query), []).append(time.perf_counter() - t0)

            engine.query_events = timed
            try:
                timed_tick, _ = _tick(project, clock)
            finally:
                del engine.query_events
        finally:
            _save(root, state, clock)
        # the fixed cost of every query: a fresh in-memory database, the views, closing it
        opened: list[float] = []
        registered: list[float] = []
        closed: list[float] = []
        for _ in range(20):
            t0 = time.perf_counter()
            con = engine.connect()
            t1 = time.perf_counter()
            register_events(con, project.event_tables, model="m00")
            t2 = time.perf_counter()
            con.close()
            opened.append(t1 - t0)
            registered.append(t2 - t1)
            closed.append(time.perf_counter() - t2)
        diagnostics = _diagnostics(project, clock)
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return {
        "status": "ok",
        "diagnostics": diagnostics,
        "tick_seconds": seconds,
        "profile": str(out),
        "top_self": top_frames(profiler),
        "inclusive": inclusive(profiler, PARTS),
        "timed_tick_seconds": timed_tick,
        "queries": {k: {"n": len(v), "seconds": sum(v)} for k, v in sorted(queries.items())},
        "per_query_fixed_ms": {
            "connect": 1000 * statistics.median(opened),
            "register_events": 1000 * statistics.median(registered),
            "close": 1000 * statistics.median(closed),
        },
    }


def same_sums(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same cells with the same count and (to 1e-9, relative) the same sums."""
    cells = [(m, o, k) for m in a for o in a[m] for k in a[m][o]]
    if sorted(cells) != sorted((m, o, k) for m in b for o in b[m] for k in b[m][o]):
        return False
    for m, o, k in cells:
        x, y = a[m][o][k], b[m][o][k]
        if x.keys() != y.keys():
            return False
        for route in x:
            if x[route][0] != y[route][0]:
                return False
            if any(
                abs(p - q) > 1e-9 * max(1.0, abs(p)) for p, q in zip(x[route][1:], y[route][1:], strict=True)
            ):
                return False
    return True


def _diagnostics(project: Any, clock: Any) -> dict[str, Any]:
    """What the floor would cost joining every model's labels (the label layout before labels were
    partitioned by model), and with one query per check.

    Run twice each, in the order A B C C B A; each variant's sums must equal the floor's.
    """
    tables = project.event_tables
    models = sorted(project.models)
    every = {model: tables.label_files() for model in models}
    now = clock()
    runs: dict[str, list[float]] = {"floor": [], "floor, every model's labels": [], "one query a check": []}
    reference: dict[str, Any] | None = None
    equal = True
    for name in [*runs, *reversed(runs)]:
        if name == "one query a check":
            seconds, sums = per_check(tables, models, CANARY_START, now)
        else:
            labels = every if name == "floor, every model's labels" else None
            seconds, sums = floor(tables, models, CANARY_START, now, labels)
        runs[name].append(seconds)
        reference = reference or sums
        equal = equal and same_sums(reference, sums)
    queries = {"floor": len(models), "one query a check": 2 * len(CHECKS) * len(models)}
    return {"seconds": runs, "equal": equal, "queries": queries}


#: The tick's parts worth naming, by function: time including what they call.
PARTS = {
    "query execution in DuckDB (DuckDBPyConnection.sql + to_arrow_table)": ("duckdb/",),
    "DuckDBEngine.connect (a fresh in-memory database per query)": ("DuckDBEngine.connect",),
    "register_events (list the files, create the views)": ("register_events",),
    "metadata store (SQLAlchemy: rollouts, registry, journal, lease)": ("sqlalchemy/",),
    "sequential test and decisions (rollout._judge)": ("_judge",),
}


def main() -> None:
    p = child_arguments(__doc__, ["build", "measure", "profile"], events=10_000_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--first", choices=["tick", "floor"], default="tick")
    args = p.parse_args()
    if args.mode == "build":
        result = build(args.root, args.events, args.seed)
    elif args.mode == "measure":
        result = measure(args.root, args.reps, args.first)
    else:
        result = profile(args.root, args.out or args.root / "profile.txt")
    report(result)


if __name__ == "__main__":
    main()
