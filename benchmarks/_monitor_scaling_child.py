"""The monitor scaling benchmark's work, a step per process (run by ``benchmarks/monitor_scaling.py``).

Not meant to be run by hand, but it can be::

    python benchmarks/_monitor_scaling_child.py build BASE [--seed S]
    python benchmarks/_monitor_scaling_child.py fill ROOT --events N [--seed S]
    python benchmarks/_monitor_scaling_child.py monitor ROOT --out SUMMARIES.json [--no-multivariate]
    python benchmarks/_monitor_scaling_child.py floor ROOT --plan PLAN.json --out COUNTS.json
    python benchmarks/_monitor_scaling_child.py profile ROOT --out PROFILE.txt

``build`` writes a project of one binary model (:data:`MODEL`; a request
contract of :data:`NUMERIC` numbers and :data:`CATEGORICAL` categories),
trains it (LightGBM) on :data:`TRAIN_ROWS` synthetic entity rows, promotes it
to champion, and writes the summary plan the monitor will use (the
reference's bin edges and categories, the operations columns) to
``plan.json``, for the floor.

``fill`` writes N events of that model straight into the project's event
tables as DuckDB ``COPY``, one day at a time (typed Parquet, the layout and
columns compaction writes: ``events/model=<m>/day=<d>/part-*.parquet``, zstd,
files of about 500k rows; labels in ``labels/model=<m>/day=<d>/part-*.parquet``, the day of
their prediction, with its UTC hour in ``prediction_hour``). The
rows come from :func:`rows_sql`, a seeded, thread-independent generator (each
value a function of the row number and the seed, through DuckDB's ``hash``):
the training rows come from it too, so the events follow the distribution the
model was trained on, except for the drift of :data:`DRIFT_FROM_DAY` on.

``monitor`` times ``Project.monitor(MODEL, window="1d", since=..., until=...)``
over the whole period (after loading the project and importing the monitor's
modules) and writes the summaries it computed (caught on their way out of
:meth:`DuckDBScan.summarize`) for the equality check. ``floor`` times the same
histograms as one bare DuckDB query on the same files (:func:`floor_sql`) and
writes its counts in the same form. ``profile`` runs the monitor under
pyinstrument.

The last line on stdout is a JSON object with the measurements.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _child_process import child_arguments, measuring, peak_rss_mb, report
from _profiling import inclusive, top_frames

MODEL = "scoring"
#: The period the events cover: :data:`DAYS` UTC days from :data:`START`.
START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 30
#: From this day on, x0's mean moves by +0.3 sd, x5's scale by x1.2 and k1's shares by a few points.
DRIFT_FROM_DAY = 20
#: Entity rows to train on, spread over :data:`TRAIN_DAYS` days before :data:`START`.
TRAIN_ROWS = 20_000
TRAIN_DAYS = 60
LABELLED = 0.8
LABEL_DELAY = timedelta(hours=1)
FALLBACK = 0.005
#: Rows per Parquet row group and row groups per file: files of ~491k rows, about what one
#: compaction chunk (500k events) writes.
ROW_GROUP = 122_880
GROUPS_PER_FILE = 4
STATE = "bench-state.json"
#: The ``extra`` JSON of an event a fallback answered.
FALLBACK_EXTRA = '{"fallback":true,"fallback_reason":"model_error"}'
PLAN = "plan.json"
DAY_US = 86_400_000_000
#: The bucket of a reference's rare categories (fourloops.engines.summaries.OTHER).
OTHER = "__other__"

#: The request contract's numbers: (name, field type, SQL of the value before drift, with drift).
#: ``u(k)`` is a uniform in [0, 1) and ``z(k)`` a standard normal, both of the row and the seed.
NUMERIC: list[tuple[str, str, str, str]] = [
    ("x0", "Float", "z(1)", "z(1) + 0.3"),
    ("x1", "Float", "CASE WHEN u(2) < 0.02 THEN NULL ELSE 50 + 10 * z(3) END", ""),
    ("x2", "Float", "exp(0.75 * z(4))", ""),
    ("x3", "Float", "exp(3 + z(5))", ""),
    ("x4", "Float", "u(6)", ""),
    ("x5", "Float", "-2 * ln(1 - u(7))", "-2.4 * ln(1 - u(7))"),
    ("x6", "Float", "100 + 15 * z(8)", ""),
    ("x7", "Float", "u(9) * u(9)", ""),
    ("n0", "Int", "CAST(floor(-5 * ln(1 - u(10))) AS BIGINT)", ""),
    ("n1", "Int", "CAST(floor(8 * u(11)) AS BIGINT)", ""),
]
#: The request contract's categories: (name, number of categories, Zipf exponent, share of nulls).
CATEGORICAL: list[tuple[str, int, float, float]] = [
    ("k0", 3, 1.0, 0.0),
    ("k1", 5, 1.1, 0.0),
    ("k2", 8, 1.1, 0.05),
    ("k3", 12, 1.2, 0.0),
    ("k4", 20, 1.0, 0.0),
]
#: k1 from :data:`DRIFT_FROM_DAY` on: the top category loses 8 points to the two rarest (+5, +3).
K1_DRIFT = (-0.08, 0.0, 0.0, 0.05, 0.03)
#: The label's log-odds (before noise), from the features.
LOGIT = (
    "-0.4 + 0.9 * x0 + 0.03 * (coalesce(x1, 50) - 50) - 0.35 * x5 + 0.8 * (x4 - 0.5) "
    "+ 0.4 * (k0 = 'k0_00')::INT - 0.3 * (k1 = 'k1_01')::INT + 0.05 * n1"
)


def _shares(k: int, a: float) -> list[float]:
    p = [1.0 / (i + 1) ** a for i in range(k)]
    total = sum(p)
    return [x / total for x in p]


def categories(name: str, k: int) -> list[str]:
    return [f"{name}_{i:02d}" for i in range(k)]


def _pick(name: str, shares: list[float], u: str) -> str:
    """SQL choosing one of ``name``'s categories with ``shares`` by the uniform ``u``."""
    cuts, total = [], 0.0
    for cat, share in zip(categories(name, len(shares)), shares, strict=True):
        total += share
        cuts.append((cat, total))
    whens = " ".join(f"WHEN {u} < {cut!r} THEN '{cat}'" for cat, cut in cuts[:-1])
    return f"CASE {whens} ELSE '{cuts[-1][0]}' END"


def rows_sql(seed: int, first: int, stop: int, start_us: int, span_us: int, drifted: bool) -> str:
    """Rows ``first..stop`` (row numbers ``i``): ``at`` spread evenly over ``span_us`` from ``start_us``,
    the contract's fields, ``logit``, ``u_label`` and the event columns' raw draws.

    Every value is a function of ``(i, seed)`` only (DuckDB's ``hash``): the same rows whatever the
    threads, and training rows (another seed) from the same distributions.
    """

    def u(k: int) -> str:
        return f"((hash(i, {k}, {seed}) >> 11)::DOUBLE / 9007199254740992.0)"

    def z(k: int) -> str:  # Box-Muller
        return f"(sqrt(-2 * ln(1 - {u(k)})) * cos(2 * pi() * {u(k + 100)}))"

    def fill(text: str) -> str:
        for k in range(40, -1, -1):  # longest first: z(10) before z(1)
            text = text.replace(f"z({k})", z(k)).replace(f"u({k})", u(k))
        return text

    n = stop - first
    fields = []
    for name, _, plain, shifted in NUMERIC:
        fields.append(f"{fill(shifted if drifted and shifted else plain)} AS {name}")
    for j, (name, k, a, nulls) in enumerate(CATEGORICAL):
        shares = _shares(k, a)
        if drifted and name == "k1":
            shares = [s + d for s, d in zip(shares, K1_DRIFT, strict=True)]
        pick = _pick(name, shares, u(20 + j))
        fields.append(
            f"CASE WHEN {u(30 + j)} < {nulls!r} THEN NULL ELSE {pick} END AS {name}"
            if nulls
            else f"{pick} AS {name}"
        )
    at = f"make_timestamptz(CAST({start_us} + ((i - {first}) + {u(0)}) * {span_us / n!r} AS BIGINT))"
    return (
        f'SELECT *, {LOGIT} AS logit FROM (SELECT i, {at} AS "at", {", ".join(fields)}, '
        f"{u(36)} AS u_label, {u(37)} AS u_labelled, {u(38)} AS u_fallback, {z(39)} AS z_noise, "
        f"{z(12)} AS z_latency, hash(i, 13, {seed}) % 1000000 AS unit "
        f"FROM range({first}, {stop}) t(i))"
    )


def _request_id(seed: int) -> str:
    """SQL of row ``i``'s request id: 32 hex digits, like the ``uuid4().hex`` a server gives a request."""
    return "lower(" + " || ".join(f"lpad(to_hex(hash(i, {k}, {seed})), 16, '0')" for k in (60, 61)) + ")"


# --------------------------------------------------------------------------- build


def definitions() -> str:
    fields = [
        f'"{name}": fl.{kind}({"nullable=True" if "NULL" in plain else ""})'
        for name, kind, plain, _ in NUMERIC
    ]
    for name, k, _, nulls in CATEGORICAL:
        fields.append(f'"{name}": fl.Category({categories(name, k)!r}{", nullable=True" if nulls else ""})')
    return (
        "import lightgbm\nimport fourloops as fl\n\n"
        f"{MODEL} = fl.Model(\n"
        f'    "{MODEL}",\n'
        '    task="binary",\n'
        '    entities=fl.FileSource("data/train.parquet", timestamp="at"),\n'
        "    request=fl.Contract({\n        " + ",\n        ".join(fields) + ",\n    }),\n"
        f'    label=fl.Label("y", delay="{int(LABEL_DELAY.total_seconds())}s"),\n'
        "    trainer=lightgbm.LGBMClassifier(n_estimators=60, num_leaves=15, deterministic=True,\n"
        "                                    force_row_wise=True, n_jobs=1, verbose=-1),\n"
        "    fallback=fl.Fallback(constant=0.5),\n"
        ")\n"
    )


def write_project(root: Path, seed: int) -> None:
    """fourloops.toml, definitions.py and the training rows (from :func:`rows_sql`, another seed)."""
    import duckdb

    (root / "data").mkdir(parents=True)
    (root / "fourloops.toml").write_text('[project]\nname = "monitor-scaling-bench"\n')
    (root / "definitions.py").write_text(definitions())
    start = START - timedelta(days=TRAIN_DAYS)
    start_us = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    rows = rows_sql(seed + 1_000_003, 0, TRAIN_ROWS, start_us, TRAIN_DAYS * DAY_US, drifted=False)
    names = [n for n, *_ in NUMERIC] + [n for n, *_ in CATEGORICAL]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f'COPY (SELECT "at", {", ".join(names)}, CAST(u_label < 1 / (1 + exp(-logit)) AS BIGINT) AS y '
        f"FROM ({rows}) ORDER BY i) TO '{root / 'data' / 'train.parquet'}' (FORMAT parquet)"
    )
    con.close()


def build(root: Path, seed: int) -> dict[str, Any]:
    from fourloops.clock import ManualClock
    from fourloops.evaluation.operations import operations_columns
    from fourloops.evaluation.reference import LABEL
    from fourloops.project import Project

    t0 = time.perf_counter()
    write_project(root, seed)
    with Project.load(root, env={}, clock=ManualClock(START)) as project:
        t1 = time.perf_counter()
        result = project.train(MODEL, seed=seed)
        project.promote(MODEL, result.version, force=True, reason="benchmark")
        t2 = time.perf_counter()
        reference = project.reference(MODEL)
        plan = reference.profile.plan(None, label=LABEL)
        types = {n: "DOUBLE" for n in ("latency_ms",)} | {"fallback": "BOOLEAN"}
        numeric, categorical = operations_columns(types)
        score = plan.score
        assert score is not None and score.task == "binary", score
        out = {
            "numeric": {c: list(e) for c, e in {**plan.numeric, **numeric}.items()},
            "categorical": {c: list(v) for c, v in {**plan.categorical, **categorical}.items()},
            "pooled": {c: sorted(v) for c, v in plan.pooled.items()},
            "score": {"column": score.score, "label": score.label, "grid": score.grid},
            "segments": list(plan.segments),
            "version": result.version,
            "reference_rows": reference.profile.rows,
        }
    (root / PLAN).write_text(json.dumps(out, indent=1))
    return {
        "project_seconds": t1 - t0,
        "train_seconds": t2 - t1,
        "version": result.version,
        "reference_rows": out["reference_rows"],
        "monitored_numeric": sorted(out["numeric"]),
        "monitored_categorical": sorted(out["categorical"]),
        "peak_rss_mb": peak_rss_mb(),
    }


def _event_tables_root(root: Path) -> Path:
    from fourloops.config import load_config

    config = load_config(root, env={})
    return Path(config.path(config.storage.event_tables))


def fill(root: Path, total: int, seed: int) -> dict[str, Any]:
    """``total`` events (and their labels) as typed Parquet in the project's event tables, a day a time.

    The columns and types of a compacted event of this model (``EventSchema.empty``), in the layout
    ``EventTables`` reads; checked with ``EventTables.event_files`` and ``label_files`` afterwards.
    """
    import duckdb

    from fourloops.storage.events.columnar import EventTables

    tables_root = _event_tables_root(root)
    if tables_root.exists():
        shutil.rmtree(tables_root)
    state = json.loads((root / PLAN).read_text())
    version = int(state["version"])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    names = [n for n, *_ in NUMERIC] + [n for n, *_ in CATEGORICAL]
    options = (
        f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP}, "
        f"ROW_GROUPS_PER_FILE {GROUPS_PER_FILE}, FILENAME_PATTERN 'part-{{i}}'"
    )
    part = 0
    t0 = time.perf_counter()
    for d in range(DAYS):
        first, stop = d * total // DAYS, (d + 1) * total // DAYS
        day = START + timedelta(days=d)
        start_us = (day - epoch) // timedelta(microseconds=1)
        rows = rows_sql(seed, first, stop, start_us, DAY_US, drifted=d >= DRIFT_FROM_DAY)
        con.execute(f"CREATE OR REPLACE TEMP VIEW g AS {rows}")
        request_id = _request_id(seed)
        event_dir = tables_root / "events" / f"model={MODEL}" / f"day={day.date().isoformat()}"
        label_dir = tables_root / "labels" / f"model={MODEL}" / f"day={day.date().isoformat()}"
        event_dir.mkdir(parents=True)
        label_dir.mkdir(parents=True)
        fallback = f"u_fallback < {FALLBACK!r}"
        con.execute(
            "COPY (SELECT "
            f"{request_id} AS request_id, 'u' || CAST(unit AS VARCHAR) AS unit_id, \"at\", "
            f"CAST({version} AS BIGINT) AS version, 'champion' AS route, CAST(NULL AS DOUBLE) AS propensity, "
            "exp(ln(5) + 0.4 * z_latency) AS latency_ms, "
            f"{fallback} AS fallback, "
            f"CASE WHEN {fallback} THEN '{FALLBACK_EXTRA}' ELSE '{{}}' END AS extra, "
            f"CASE WHEN {fallback} THEN 0.5 ELSE 1 / (1 + exp(-(logit + 0.3 * z_noise))) END AS prediction, "
            f"CASE WHEN {fallback} THEN 'model_error' END AS fallback_reason, "
            "CAST(NULL AS BIGINT) AS routed_version, false AS cached, CAST(NULL AS VARCHAR) AS shadow_of, "
            f"{', '.join(names)}, CAST(NULL AS VARCHAR) AS unparsed "
            f"FROM g ORDER BY i) TO '{event_dir}' ({options})"
        )
        con.execute(
            "COPY (SELECT "
            f"{request_id} AS request_id, "
            "CASE WHEN u_label < 1 / (1 + exp(-logit)) THEN '1' ELSE '0' END AS label, "
            "CAST(u_label < 1 / (1 + exp(-logit)) AS DOUBLE) AS label_number, "
            "CAST(NULL AS VARCHAR) AS label_text, "
            f'"at" + INTERVAL {int(LABEL_DELAY.total_seconds())} SECOND AS label_at, '
            'CAST(hour("at") AS TINYINT) AS prediction_hour '
            f"FROM g WHERE u_labelled < {LABELLED!r} ORDER BY i) TO '{label_dir}' ({options})"
        )
        # the names compaction gives its parts: part-<n>-<id>.parquet
        for folder in (event_dir, label_dir):
            for f in sorted(folder.glob("part-*.parquet"), key=lambda p: int(p.stem.split("-")[1])):
                part += 1
                f.rename(folder / f"part-{part:08d}-{d:04d}{int(f.stem.split('-')[1]):04d}.parquet")
    generate = time.perf_counter() - t0
    con.close()
    tables = EventTables(tables_root)
    events, labels = tables.event_files(MODEL), tables.label_files(MODEL)
    import pyarrow.parquet as pq

    rows_written = sum(pq.ParquetFile(f).metadata.num_rows for f in events)
    labels_written = sum(pq.ParquetFile(f).metadata.num_rows for f in labels)
    assert rows_written == total, (rows_written, total)
    return {
        "events_written": rows_written,
        "labels_written": labels_written,
        "generate_seconds": generate,
        "event_files": len(events),
        "label_files": len(labels),
        "bytes": sum(f.stat().st_size for f in [*events, *labels]),
        "peak_rss_mb": peak_rss_mb(),
    }


# --------------------------------------------------------------------------- the monitor


def source_hash() -> str:
    """Hash of the fourloops sources a monitor run uses (others may change them while a run goes on)."""
    import hashlib

    src = Path(__file__).resolve().parents[1] / "src" / "fourloops"
    digest = hashlib.sha256()
    for folder in ("evaluation", "engines", "project", "storage"):
        for path in sorted((src / folder).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


#: The floor's one setting beyond DuckDB's defaults: build the join's hash table on the labels (the
#: side it needs: request id and label), not on the events; DuckDB picks the side by its estimates,
#: which count the events after the filter on version, route and time (20 % of them) and so build
#: on every event's columns (at 100M events: 19.9 GB at the peak and 1.6x the CPU time).
LABELS_BUILD = "SET disabled_optimizers = 'build_side_probe_side'"


def _load(root: Path, memory_limit: str | None = None) -> Any:
    from fourloops.clock import ManualClock
    from fourloops.project import Project

    env = {"FOURLOOPS_ENGINE_MEMORY_LIMIT": memory_limit} if memory_limit else {}
    # every window mature: now is a day after the period's end (labels arrive within the hour)
    return Project.load(root, env=env, clock=ManualClock(START + timedelta(days=DAYS + 1)))


def _labels_build() -> None:
    """What if the engine built its joins on the labels (:data:`LABELS_BUILD` on every connection)."""
    from fourloops.engines.duckdb import DuckDBEngine

    original = DuckDBEngine.connect

    def connect(self: Any) -> Any:
        con = original(self)
        con.execute(LABELS_BUILD)
        return con

    setattr(DuckDBEngine, "connect", connect)  # noqa: B010 - a method replaced on the class


def _imports() -> None:
    """What the monitor imports on its first call, imported before the clock starts."""
    import fourloops.engines.duckdb  # noqa: F401
    import fourloops.evaluation.alerts  # noqa: F401
    import fourloops.evaluation.monitor  # noqa: F401
    import fourloops.evaluation.multivariate  # noqa: F401
    import fourloops.evaluation.reference  # noqa: F401


def summaries_dict(summaries: Any, origin: datetime) -> dict[str, Any]:
    """The overall group of every window, as JSON: rows, each column's counts, the score grid's counts."""
    out: dict[str, Any] = {}
    for (w, seg, _), info in summaries.groups.items():
        if seg is not None:
            continue
        day = (origin + timedelta(days=int(w))).date().isoformat()
        key = (w, None, None)
        out[day] = {
            "rows": int(info.rows),
            "numeric": {
                c: {"counts": [int(x) for x in s[key].counts], "nulls": int(s[key].nulls)}
                for c, s in summaries.numeric.items()
            },
            "categorical": {
                c: {
                    "counts": [int(x) for x in s[key].counts],
                    "unseen": int(s[key].unseen),
                    "nulls": int(s[key].nulls),
                }
                for c, s in summaries.categorical.items()
            },
        }
        score = summaries.scores.get(key)
        if score is not None:
            out[day]["score"] = {
                part: _sparse(getattr(score, part)) for part in ("positives", "negatives", "unlabelled")
            }
    return out


def _sparse(counts: Any) -> dict[str, int]:
    return {str(i): int(n) for i, n in enumerate(counts) if n}


def _caught() -> list[Any]:
    """Keep every ``Summaries`` the monitor's scans return (a reference kept: no copy, no extra work)."""
    from fourloops.engines.duckdb_scan import DuckDBScan

    caught: list[Any] = []
    original = DuckDBScan.summarize

    def summarize(self: Any, plan: Any, *, where: str | None = None) -> Any:
        out = original(self, plan, where=where)
        caught.append(out)
        return out

    setattr(DuckDBScan, "summarize", summarize)  # noqa: B010 - a method replaced on the class
    return caught


def _settings(con: Any) -> dict[str, Any]:
    """The DuckDB settings a measured run had: threads and memory limit."""
    query = "SELECT current_setting('threads'), current_setting('memory_limit')"
    threads, limit = con.execute(query).fetchone()
    return {"duckdb_threads": int(threads), "duckdb_memory_limit": str(limit)}


def _monitor(project: Any, multivariate: bool) -> Any:
    return project.monitor(
        MODEL, window="1d", since=START, until=START + timedelta(days=DAYS), multivariate=multivariate
    )


def monitor(
    root: Path, out: Path, multivariate: bool, memory_limit: str | None = None, labels_build: bool = False
) -> dict[str, Any]:
    """``Project.monitor`` timed; with ``memory_limit``, the project's ``[engine] memory_limit``; with
    ``labels_build``, every engine connection with :data:`LABELS_BUILD` (what-ifs, not the defaults)."""
    _imports()
    if labels_build:
        _labels_build()
    caught = _caught()
    project = _load(root, memory_limit)
    with project:
        project.reference(MODEL)  # the stored profile, read once before the clock starts as well
        con = project.engine.connect()  # a connection as the monitor's scan gets one
        settings = _settings(con)
        con.close()
        with measuring() as measured:
            result = _monitor(project, multivariate)
    assert len(caught) == 1, len(caught)
    windows = [w for w in result.windows]
    out.write_text(json.dumps(summaries_dict(caught[0], START)))
    drifted = sorted({c for w in windows for c in w.drifted()})
    return {
        **measured,
        **settings,
        "windows": len(windows),
        "window_status": sorted({str(w.status) for w in windows}),
        "drifted_columns": drifted,
        "drifted_windows": sum(1 for w in windows if w.drifted()),
        "alerts": [f"{a.kind}:{a.column}" for a in result.alerts],
        "multivariate": multivariate,
        "labels_build": labels_build,
        "src_hash": source_hash(),
    }


# --------------------------------------------------------------------------- the floor


def _listed(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def floor_sql(events: list[Path], labels: list[Path] | None, plan: dict[str, Any], version: int) -> str:
    """The monitor's histograms as one query: per day, every numeric column's counts on its edges
    (``histogram(x, edges)``: bin ``i`` holds ``edges[i-1] < x <= edges[i]``, the last one
    everything above), every categorical column's counts on the reference's categories
    (``histogram_exact``: any other value in one bucket, keyed ``''``), and the score's counts on
    the monitor's grid for positives, negatives and unlabelled events, over the events joined with
    their labels.

    Not ``histogram(c)`` without bounds: DuckDB rewrites it into a ``GROUP BY`` of its own and then
    materialises every row of the join for the other aggregates (20 GB at 100M events).
    With ``labels=None`` (a diagnostic, not the floor), the events alone: every score unlabelled.
    """
    since, until = START.isoformat(), (START + timedelta(days=DAYS)).isoformat()
    origin = (START - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    grid = int(plan["score"]["grid"])
    score = plan["score"]["column"]
    label = plan["score"]["label"] if labels is not None else "CAST(NULL AS DOUBLE)"
    aggs = ["count(*) AS rows"]
    for i, (column, edges) in enumerate(plan["numeric"].items()):
        value = f'CAST("{column}" AS DOUBLE)'
        aggs.append(f"histogram({value}, {[float(e) for e in edges]!r}) AS n{i}")
        aggs.append(f"count(*) - count({value}) AS nn{i}")
    for i, (column, known) in enumerate(plan["categorical"].items()):
        value = f'CAST("{column}" AS VARCHAR)'
        values = [v for v in [*known, *plan["pooled"].get(column, [])] if v != OTHER]
        aggs.append(f"histogram_exact({value}, {values!r}) AS c{i}")
        aggs.append(f"count(*) - count({value}) AS cn{i}")
    cell = f"greatest(least(CAST(floor({score} * {grid}) AS BIGINT), {grid - 1}), 0)"
    for part, condition in (
        ("positives", f"{label} >= 0.5"),
        ("negatives", f"{label} < 0.5"),
        ("unlabelled", f"{label} IS NULL"),
    ):
        aggs.append(
            f"histogram({cell}, range({grid - 1})) FILTER (WHERE isfinite({score}) AND {condition}) AS {part}"
        )
    source = f"read_parquet({_listed(events)})"
    if labels is not None:
        source += f" LEFT JOIN read_parquet({_listed(labels)}) USING (request_id)"
    return (
        f'SELECT CAST((epoch_us("at") - {origin}) // {DAY_US} AS BIGINT) AS w, {", ".join(aggs)} '
        f"FROM {source} WHERE version = {version} AND route = 'champion' "
        f"AND \"at\" >= TIMESTAMPTZ '{since}' AND \"at\" < TIMESTAMPTZ '{until}' "
        "GROUP BY w ORDER BY w"
    )


def floor_counts(rows: list[tuple[Any, ...]], columns: list[str], plan: dict[str, Any]) -> dict[str, Any]:
    """The floor's result in :func:`summaries_dict`'s form (categories folded as the monitor folds them)."""
    out: dict[str, Any] = {}
    numeric, categorical = list(plan["numeric"]), list(plan["categorical"])
    for row in rows:
        r = dict(zip(columns, row, strict=True))
        day = (START + timedelta(days=int(r["w"]))).date().isoformat()
        entry: dict[str, Any] = {"rows": int(r["rows"]), "numeric": {}, "categorical": {}}
        for i, column in enumerate(numeric):
            hist = r[f"n{i}"] or {}
            edges = plan["numeric"][column]
            counts = [int(hist.get(float(e), 0)) for e in edges] + [int(hist.get(math.inf, 0))]
            entry["numeric"][column] = {"counts": counts, "nulls": int(r[f"nn{i}"])}
        for i, column in enumerate(categorical):
            entry["categorical"][column] = fold_categories(
                r[f"c{i}"] or {}, plan["categorical"][column], plan["pooled"].get(column, [])
            ) | {"nulls": int(r[f"cn{i}"])}
        # cells 0 .. grid-2 by their bound, the last (grid-1) in the bucket above every bound
        last = int(plan["score"]["grid"]) - 1
        entry["score"] = {
            part: {str(min(int(k), last)): int(v) for k, v in sorted((r[part] or {}).items()) if v}
            for part in ("positives", "negatives", "unlabelled")
        }
        out[day] = entry
    return out


def fold_categories(counted: dict[str, int], known: list[str], pooled: list[str]) -> dict[str, Any]:
    """Counts per value on the reference's categories: pooled values count as :data:`OTHER`, any other
    value (``histogram_exact``'s ``''`` bucket) as unseen."""
    index = {c: i for i, c in enumerate(known)}
    other = index.get(OTHER)
    counts = [0] * len(known)
    unseen = 0
    for value, n in counted.items():
        code = index.get(value, other if value in pooled else None)
        if code is None:
            unseen += int(n)
        else:
            counts[code] += int(n)
    return {"counts": counts, "unseen": unseen}


def floor(root: Path, out: Path, with_labels: bool, memory_limit: str | None = None) -> dict[str, Any]:
    """:func:`floor_sql` timed on a default DuckDB connection with :data:`LABELS_BUILD` (and, a what-if,
    a ``memory_limit``, spilling under the project's ``.fourloops/tmp-floor``)."""
    import duckdb

    plan = json.loads((root / PLAN).read_text())
    tables_root = _events_root_from_state(root)
    events = sorted((tables_root / "events" / f"model={MODEL}").glob("day=*/part-*.parquet"))
    from fourloops.storage.events.columnar import EventTables

    labels = EventTables(tables_root).label_files(MODEL)  # every layout: by day, by model, the top folder
    with measuring() as measured:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(LABELS_BUILD)
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET temp_directory = '{root / '.fourloops' / 'tmp-floor'}'")
        settings = _settings(con)
        cursor = con.execute(floor_sql(events, labels if with_labels else None, plan, int(plan["version"])))
        rows = cursor.fetchall()
        columns = [d[0] for d in cursor.description]
        con.close()
    out.write_text(json.dumps(floor_counts(rows, columns, plan)))
    return {
        **measured,
        **settings,
        "windows": len(rows),
        "labels_joined": with_labels,
        "settings": [LABELS_BUILD],
    }


def _events_root_from_state(root: Path) -> Path:
    """The event tables folder, from the fill's state file (the floor imports no fourloops)."""
    state = json.loads((root / STATE).read_text())
    return Path(state["event_tables"])


# --------------------------------------------------------------------------- profile


def profile(root: Path, out: Path, multivariate: bool) -> dict[str, Any]:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {"status": "skipped: pyinstrument is not installed in this venv"}
    _imports()
    project = _load(root)
    with project:
        project.reference(MODEL)
        profiler = Profiler(interval=0.005)
        profiler.start()
        t0 = time.perf_counter()
        _monitor(project, multivariate)
        seconds = time.perf_counter() - t0
        profiler.stop()
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return {
        "status": "ok",
        "seconds": seconds,
        "profile": str(out),
        "inclusive": inclusive(profiler, PARTS),
        "top_self": top_frames(profiler),
        "peak_rss_mb": peak_rss_mb(),
        "src_hash": source_hash(),
    }


#: The monitor's parts worth naming, by function name: time including what they call.
PARTS = {
    "compact_events (nothing to compact)": ("compact_events",),
    "time_range (first and last event)": ("time_range",),
    "_aggregate (rows, distinct numbers, defaults: one GROUPING SETS query)": ("_aggregate",),
    "_count_categorical (one GROUPING SETS query, every categorical column)": ("_count_categorical",),
    "_batches (stream the numeric columns and score to Arrow)": ("_batches",),
    "_Groups (window codes per batch)": ("_Groups.__init__",),
    "_bin_numeric (NumPy binning)": ("_bin_numeric",),
    "_bin_scores (NumPy score grid)": ("_bin_scores",),
    "DuckDBScan.sample (the domain classifier's reference sample)": ("DuckDBScan.sample",),
    "DuckDBScan.sample_windows (the classifier's samples, every window)": ("DuckDBScan.sample_windows",),
    "DomainClassifier.test (the domain classifier: a model per window)": ("DomainClassifier.test",),
    "assess (tests, metrics per window)": ("assess",),
    "detect (alerts)": ("detect",),
    "alert_log.record": ("AlertLog.record",),
    "query_events ('also in the log' query)": ("query_events",),
}


def main() -> None:
    p = child_arguments(__doc__, ["build", "fill", "monitor", "floor", "profile"], events=1_000_000)
    p.add_argument("--no-multivariate", action="store_true")
    p.add_argument("--no-labels", action="store_true", help="floor: the events alone (a diagnostic)")
    p.add_argument("--memory-limit", default=None, help="DuckDB memory_limit (a diagnostic)")
    p.add_argument("--labels-build", action="store_true", help="monitor: joins built on the labels")
    args = p.parse_args()
    if args.mode == "build":
        result = build(args.root, args.seed)
    elif args.mode == "fill":
        result = fill(args.root, args.events, args.seed)
        result["event_tables"] = str(_event_tables_root(args.root))
        (args.root / STATE).write_text(json.dumps({**result, "events": args.events, "seed": args.seed}))
    elif args.mode == "monitor":
        result = monitor(
            args.root, args.out, not args.no_multivariate, args.memory_limit, labels_build=args.labels_build
        )
    elif args.mode == "floor":
        result = floor(args.root, args.out, not args.no_labels, args.memory_limit)
    else:
        result = profile(args.root, args.out, not args.no_multivariate)
    report(result)


if __name__ == "__main__":
    main()
