"""Model registry benchmark: register and load a model version, MLflow against fourloops.

One command trains a LightGBM binary classifier once (30 numeric features, 200
trees, fixed seed; cached as LightGBM's text model in ``benchmarks/.data/``),
then, in child processes, registers it N times in a row in each system and
loads the latest version back in a fresh process, checks that every system's
predictions on the same 1000 rows are equal (rtol 1e-12), and prints median
times, min-max spread, peak resident memory and the ratio mlflow / fourloops.
Everything also goes to ``benchmarks/results/registry-<date>.json``.

Systems (each child process loads the model file as a ``lightgbm.Booster``)
    fourloops      register: ``save_model`` into a temp folder, ``put_file`` into a
                   ``LocalArtifactStore``, ``register_model`` (first version only),
                   ``create_version(status="ready", artifact={ref, meta}, format=...)``
                   on a SQLite ``MetadataStore``.
                   load: ``get_version`` + ``artifacts.open(ref)`` (SHA-256 and size
                   re-checked) + ``load_model(..., task="binary")`` + one ``predict``.
    mlflow         MLflow's default local set-up (no tracking URI set, so
                   ``sqlite:///mlflow.db`` and ``./mlruns`` artifacts in the working
                   directory, a temp dir). register: ``with mlflow.start_run():
                   mlflow.lightgbm.log_model(booster, name="model",
                   registered_model_name=...)`` with every other argument at its
                   default (so MLflow infers pip requirements, in a subprocess).
                   load: ``mlflow.lightgbm.load_model("models:/<name>/<N>")`` + one
                   ``predict``.
    mlflow-pinned  the same, with ``pip_requirements=["lightgbm==<version>"]``: MLflow's
                   documented way to skip requirement inference, its fastest setting.
    floor          ``booster.save_model(file)`` / ``lightgbm.Booster(model_file=...)`` +
                   ``predict``: a plain file write and read, no registry at all.

What is measured (every run in a new process; order alternates A B C / C B A)
    register   N versions in a row; the first version (which also creates the
               registered model) is reported apart from versions 2..N ("per
               version", the mean over them in one run). Store set-up (creating the
               SQLite database and its schema; ``mlflow.set_experiment`` for MLflow,
               ``MetadataStore(...)`` for fourloops) is timed apart too.
    load       cold: a new process opens the store, resolves version N, fetches and
               deserialises the model and predicts 1000 rows. Also the whole child
               process wall time (interpreter start + imports + load + predict).
    import     inside each load child: numpy + lightgbm (common to all), then the
               system's own modules (``fourloops`` registry/storage/formats, or
               ``mlflow`` + ``mlflow.lightgbm``).
    peak RSS   the child's VmHWM from /proc/self/status.

MLflow children run with ``MLFLOW_DISABLE_TELEMETRY=true`` (this machine has no
internet; telemetry is not registry work). Nothing else is changed.

Run (from the repository root, with the project venv)::

    .venv/bin/python benchmarks/registry.py                 # 5 repetitions, 10 versions
    .venv/bin/python benchmarks/registry.py --repeat 9 --versions 20
    .venv/bin/python benchmarks/registry.py --quick         # CI smoke run: seconds

MLflow runs in its own virtual environment (never a project dependency)::

    python3 -m venv benchmarks/.venv-mlflow
    benchmarks/.venv-mlflow/bin/pip install mlflow lightgbm

Without it the MLflow systems are skipped with that message. The same file is
the child (``registry.py --child ...``); a child imports only what its system
needs, so it runs under either virtual environment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
RESULTS = HERE / "results"
MLFLOW_PYTHON = HERE / ".venv-mlflow" / "bin" / "python"

SYSTEMS = ["fourloops", "mlflow", "mlflow-pinned", "floor"]
MLFLOW_SYSTEMS = {"mlflow", "mlflow-pinned"}
MODEL_NAME = "bench_lgbm"
N_FEATURES = 30
N_TREES = 200
SEED = 20240601
N_TRAIN = 20_000
N_CHECK = 1000
RTOL = 1e-12


# =========================================================================== child side
# Only the standard library at module level: the child runs in both venvs.


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _import_system(system: str) -> None:
    if system == "fourloops":
        import fourloops.registry.formats  # noqa: F401
        import fourloops.registry.models  # noqa: F401
        import fourloops.storage.artifacts  # noqa: F401
        import fourloops.storage.metadata  # noqa: F401
    elif system in MLFLOW_SYSTEMS:
        import mlflow  # noqa: F401
        import mlflow.lightgbm  # noqa: F401


def _register_fourloops(booster, work: Path, versions: int) -> tuple[float, list[float], dict]:
    from fourloops.registry.formats import save_model
    from fourloops.registry.models import ModelRegistry
    from fourloops.storage.artifacts import open_artifact_store
    from fourloops.storage.metadata import MetadataStore

    t0 = time.perf_counter()
    registry = ModelRegistry(MetadataStore(f"sqlite:///{work / 'fourloops.db'}"))
    artifacts = open_artifact_store(work / "artifacts")
    setup = time.perf_counter() - t0
    times, numbers = [], []
    for i in range(versions):
        t0 = time.perf_counter()
        if i == 0:
            registry.register_model(MODEL_NAME, "binary")
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            saved = save_model(booster, tmp)
            ref = artifacts.put_file(saved.path)
        mv = registry.create_version(
            MODEL_NAME,
            status="ready",
            artifact={**ref.to_dict(), "meta": saved.meta},
            format=saved.format,
        )
        times.append(time.perf_counter() - t0)
        numbers.append(mv.version)
    return setup, times, {"versions": numbers, "metadata": "sqlite (WAL)", "artifacts": "local"}


def _register_mlflow(booster, work: Path, versions: int, pinned: bool) -> tuple[float, list[float], dict]:
    import lightgbm as lgb
    import mlflow

    extra = {"pip_requirements": [f"lightgbm=={lgb.__version__}"]} if pinned else {}
    t0 = time.perf_counter()
    mlflow.set_experiment("registry-bench")  # creates mlflow.db and its schema
    setup = time.perf_counter() - t0
    times, numbers = [], []
    for _ in range(versions):
        t0 = time.perf_counter()
        with mlflow.start_run():
            info = mlflow.lightgbm.log_model(booster, name="model", registered_model_name=MODEL_NAME, **extra)
        times.append(time.perf_counter() - t0)
        numbers.append(int(info.registered_model_version))
    return (
        setup,
        times,
        {
            "versions": numbers,
            "tracking_uri": mlflow.get_tracking_uri(),
            "registry_uri": mlflow.get_registry_uri(),
            "artifact_location": mlflow.get_experiment_by_name("registry-bench").artifact_location,
        },
    )


def _register_floor(booster, work: Path, versions: int) -> tuple[float, list[float], dict]:
    times = []
    for i in range(versions):
        t0 = time.perf_counter()
        booster.save_model(str(work / f"v{i + 1}.txt"))
        times.append(time.perf_counter() - t0)
    return 0.0, times, {"versions": list(range(1, versions + 1))}


def _load_fourloops(work: Path, version: int, X):
    from fourloops.registry.formats import load_model
    from fourloops.registry.models import ModelRegistry
    from fourloops.storage.artifacts import ArtifactRef, open_artifact_store
    from fourloops.storage.metadata import MetadataStore

    registry = ModelRegistry(MetadataStore(f"sqlite:///{work / 'fourloops.db'}"))
    artifacts = open_artifact_store(work / "artifacts")
    mv = registry.get_version(MODEL_NAME, version)
    path = artifacts.open(ArtifactRef.from_dict(mv.artifact))
    predictor = load_model(path, mv.format, task="binary", meta=mv.artifact["meta"])
    t_loaded = time.perf_counter()
    return predictor.predict(X), t_loaded


def _load_mlflow(work: Path, version: int, X):
    import mlflow.lightgbm

    model = mlflow.lightgbm.load_model(f"models:/{MODEL_NAME}/{version}")
    t_loaded = time.perf_counter()
    return model.predict(X), t_loaded


def _load_floor(work: Path, version: int, X):
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(work / f"v{version}.txt"))
    t_loaded = time.perf_counter()
    return booster.predict(X), t_loaded


def child_main(argv: list[str]) -> None:
    """``--child SYSTEM PHASE WORKDIR MODEL.txt ROWS.npy VERSIONS``; prints one JSON line."""
    system, phase, work_s, model_file, rows_file, versions_s = argv
    work, versions = Path(work_s), int(versions_s)
    os.chdir(work)  # MLflow's defaults (mlflow.db, ./mlruns) land in the temp dir
    t0 = time.perf_counter()
    import lightgbm as lgb
    import numpy as np

    t1 = time.perf_counter()
    _import_system(system)
    t2 = time.perf_counter()
    out: dict = {"import_common_s": t1 - t0, "import_system_s": t2 - t1}

    if phase == "register":
        booster = lgb.Booster(model_file=model_file)  # the training output, not timed
        if system == "fourloops":
            setup, times, info = _register_fourloops(booster, work, versions)
        elif system in MLFLOW_SYSTEMS:
            setup, times, info = _register_mlflow(booster, work, versions, system == "mlflow-pinned")
        else:
            setup, times, info = _register_floor(booster, work, versions)
        out |= {"setup_s": setup, "version_s": times, **info}
    else:
        X = np.load(rows_file)
        t0 = time.perf_counter()
        load = {"fourloops": _load_fourloops, "floor": _load_floor}.get(system, _load_mlflow)
        preds, t_loaded = load(work, versions, X)
        t_end = time.perf_counter()
        np.save(work / f"preds-{system}.npy", np.asarray(preds, dtype=np.float64))
        out |= {"load_s": t_end - t0, "open_s": t_loaded - t0, "predict_s": t_end - t_loaded}
    out["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out))


# =========================================================================== parent side


def prepare() -> tuple[Path, Path]:
    """Train the model once (cached) and draw the 1000 check rows."""
    import lightgbm as lgb
    import numpy as np

    DATA.mkdir(parents=True, exist_ok=True)
    model = DATA / f"registry-lgbm-{N_FEATURES}f-{N_TREES}t-{SEED}.txt"
    rows = DATA / f"registry-rows-{N_CHECK}-{SEED}.npy"
    if model.exists() and rows.exists():
        return model, rows
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(N_TRAIN, N_FEATURES))
    logit = X[:, :10] @ rng.normal(size=10) + np.sin(X[:, 10] * 2) + X[:, 11] * X[:, 12]
    y = (logit + rng.logistic(size=N_TRAIN) > 0).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": 31,
        "learning_rate": 0.05,
        "seed": SEED,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=N_TREES)
    booster.save_model(str(model))
    np.save(rows, rng.normal(size=(N_CHECK, N_FEATURES)))
    return model, rows


def run_child(
    system: str, phase: str, work: Path, model: Path, rows: Path, versions: int, timeout: float
) -> dict:
    python = str(MLFLOW_PYTHON) if system in MLFLOW_SYSTEMS else sys.executable
    env = dict(os.environ, PYTHONHASHSEED="0")
    if system in MLFLOW_SYSTEMS:
        env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        env.pop("MLFLOW_TRACKING_URI", None)
        env.pop("MLFLOW_REGISTRY_URI", None)
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--child",
        system,
        phase,
        str(work),
        str(model),
        str(rows),
        str(versions),
    ]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "process_s": timeout}
    result = {"process_s": time.perf_counter() - t0, "loadavg_before": load_before}
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        return result | {"status": "error", "error": tail}
    return result | {"status": "ok"} | json.loads(done.stdout.strip().splitlines()[-1])


def mlflow_available() -> bool:
    if not MLFLOW_PYTHON.exists():
        return False
    done = subprocess.run(
        [str(MLFLOW_PYTHON), "-c", "import mlflow.lightgbm"],
        capture_output=True,
        text=True,
        env=dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true"),
    )
    return done.returncode == 0


def machine(with_mlflow: bool) -> dict:
    import importlib.metadata as md

    import lightgbm as lgb
    import numpy as np

    mem_kb = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))
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
        "lightgbm": lgb.__version__,
        "numpy": np.__version__,
        "sqlalchemy": md.version("sqlalchemy"),
        "fourloops": md.version("fourloops"),
    }
    # Other work may edit the sources during a run: record what was measured.
    digest = hashlib.sha256()
    for sub in ("registry", "storage"):
        for path in sorted((HERE.parent / "src" / "fourloops" / sub).rglob("*.py")):
            digest.update(path.read_bytes())
    info["fourloops_registry_storage_sha256"] = digest.hexdigest()[:12]
    info["git_commit"] = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if with_mlflow:
        code = (
            "import importlib.metadata as m, json, platform\n"
            "v = {n: m.version(n) for n in ['mlflow', 'lightgbm', 'numpy', 'sqlalchemy']}\n"
            "v['python'] = platform.python_version(); print(json.dumps(v))"
        )
        done = subprocess.run([str(MLFLOW_PYTHON), "-c", code], capture_output=True, text=True)
        info["mlflow_venv"] = json.loads(done.stdout) if done.returncode == 0 else done.stderr[-300:]
    return info


def check(preds: dict[str, Path], reference) -> dict:
    """Every system's predictions against the parent's booster and against fourloops."""
    import numpy as np

    out = {}
    base = np.load(preds["fourloops"]) if "fourloops" in preds else None
    for system, path in preds.items():
        got = np.load(path)
        entry = {
            "rows": int(got.shape[0]),
            "max_abs_diff_vs_reference": float(np.max(np.abs(got - reference))),
        }
        entry["equal_reference"] = bool(
            got.shape == reference.shape and np.allclose(got, reference, rtol=RTOL, atol=0)
        )
        if base is not None:
            entry["equal_fourloops"] = bool(
                got.shape == base.shape and np.allclose(got, base, rtol=RTOL, atol=0)
            )
        entry["equal"] = entry["equal_reference"] and entry.get("equal_fourloops", True)
        out[system] = entry
    return out


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(runs: list[dict]) -> dict:
    """Median and min-max over repetitions of each metric (seconds, MB)."""
    reg = [r["register"] for r in runs if r["register"]["status"] == "ok"]
    load = [r["load"] for r in runs if r.get("load", {}).get("status") == "ok"]
    s: dict = {}
    if reg:
        s["setup"] = _stats([r["setup_s"] for r in reg])
        s["first_version"] = _stats([r["version_s"][0] for r in reg])
        steady = [r["version_s"][1:] or r["version_s"] for r in reg]
        s["per_version"] = _stats([statistics.fmean(v) for v in steady])
        s["register_rss_mb"] = _stats([r["peak_rss_mb"] for r in reg])
    if load:
        for key in (
            "load_s",
            "open_s",
            "predict_s",
            "process_s",
            "import_common_s",
            "import_system_s",
            "peak_rss_mb",
        ):
            s[key] = _stats([r[key] for r in load])
    return s


def fmt(st: dict | None, scale: float = 1000.0, digits: int = 1) -> str:
    if not st:
        return "-"
    return (
        f"{st['median'] * scale:.{digits}f} ({st['min'] * scale:.{digits}f}-{st['max'] * scale:.{digits}f})"
    )


ROWS = [  # (label, summary key, scale, unit)
    ("store set-up", "setup", 1000, "ms"),
    ("register: first version", "first_version", 1000, "ms"),
    ("register: per version (2..N)", "per_version", 1000, "ms"),
    ("load: open+fetch+deserialise", "open_s", 1000, "ms"),
    ("load: predict 1000 rows", "predict_s", 1000, "ms"),
    ("load: total (cold, in process)", "load_s", 1000, "ms"),
    ("load: child process wall", "process_s", 1000, "ms"),
    ("import numpy+lightgbm", "import_common_s", 1000, "ms"),
    ("import system", "import_system_s", 1000, "ms"),
    ("peak RSS register child", "register_rss_mb", 1, "MB"),
    ("peak RSS load child", "peak_rss_mb", 1, "MB"),
]


def print_table(summaries: dict, checks: dict) -> None:
    systems = list(summaries)
    width = 24
    head = f"{'median (min-max)':<38}" + "".join(f"{s:>{width}}" for s in systems)
    ratio_cols = [s for s in systems if s in MLFLOW_SYSTEMS or s == "floor"]
    head += "".join(f"{s + '/fl':>{18}}" for s in ratio_cols)
    print("\n" + head + "\n" + "-" * len(head))
    fl = summaries.get("fourloops", {})
    for label, key, scale, unit in ROWS:
        line = f"{label + ' [' + unit + ']':<38}"
        line += "".join(
            f"{fmt(summaries[s].get(key), scale, 1 if unit == 'ms' else 0):>{width}}" for s in systems
        )
        for s in ratio_cols:
            ok = checks.get(s, {}).get("equal") and checks.get("fourloops", {}).get("equal")
            a, b = summaries[s].get(key), fl.get(key)
            cell = "-"
            if not ok:
                cell = "not equal"
            elif a and b and a["median"] > 0 and b["median"] > 0:
                cell = f"{a['median'] / b['median']:.2f}x"
            line += f"{cell:>18}"
        print(line)
    print("\n'x/fl' = that system's median / fourloops' median (>1: fourloops faster or smaller).")
    print("Where MLflow imports or initialises its store lazily (inside load_model), that time is in")
    print("'load', not 'import': the child process wall time is the fair whole for a cold load.")
    print("Predictions (1000 rows) vs the parent's booster and vs fourloops, rtol 1e-12:")
    for s, c in checks.items():
        print(f"  {s:<14} equal={c['equal']}  max |diff| vs reference={c['max_abs_diff_vs_reference']:.3g}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeat", type=int, default=None, help="repetitions (default 5; 1 with --quick)")
    p.add_argument(
        "--versions",
        type=int,
        default=None,
        help="versions registered per run (default 10; 3 with --quick)",
    )
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"any of {','.join(SYSTEMS)}")
    p.add_argument("--quick", action="store_true", help="smoke run for CI")
    p.add_argument("--timeout", type=float, default=900, help="seconds per child process")
    p.add_argument("--json", type=Path, default=None, help="where to write the results")
    p.add_argument("--keep", action="store_true", help="keep the temp stores (printed)")
    args = p.parse_args()
    args.repeat = args.repeat or (1 if args.quick else 5)
    args.versions = args.versions or (3 if args.quick else 10)
    if args.versions < 1 or args.repeat < 1:
        p.error("--repeat and --versions must be at least 1")
    return args


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    args = parse_args()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        sys.exit(f"unknown system(s) {', '.join(sorted(unknown))}; use {', '.join(SYSTEMS)}")
    if MLFLOW_SYSTEMS & set(systems) and not mlflow_available():
        print(
            f"MLflow not found in {MLFLOW_PYTHON.parent.parent}: skipping "
            f"{', '.join(s for s in systems if s in MLFLOW_SYSTEMS)}. Set it up with\n"
            "    python3 -m venv benchmarks/.venv-mlflow\n"
            "    benchmarks/.venv-mlflow/bin/pip install mlflow lightgbm"
        )
        systems = [s for s in systems if s not in MLFLOW_SYSTEMS]

    import lightgbm as lgb
    import numpy as np

    model, rows = prepare()
    reference = lgb.Booster(model_file=str(model)).predict(np.load(rows))
    info = machine(with_mlflow=bool(MLFLOW_SYSTEMS & set(systems)))
    print("machine:", json.dumps(info))
    print(
        f"model: {model.name} ({model.stat().st_size / 1e6:.2f} MB text); "
        f"{args.versions} versions per run, {args.repeat} repetition(s)"
    )

    root = Path(tempfile.mkdtemp(prefix="fourloops-registry-bench-"))
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    checks: dict = {}
    try:
        for rep in range(args.repeat):
            order = systems if rep % 2 == 0 else systems[::-1]
            works = {s: root / f"r{rep}-{s}" for s in order}
            for s in order:
                works[s].mkdir()
                r = run_child(s, "register", works[s], model, rows, args.versions, args.timeout)
                runs[s].append({"register": r})
                if r["status"] == "ok":
                    print(
                        f"rep {rep + 1} {s:<14} register: set-up {r['setup_s'] * 1e3:7.1f} ms, "
                        f"v1 {r['version_s'][0] * 1e3:8.1f} ms, "
                        f"v2..N mean {statistics.fmean(r['version_s'][1:] or r['version_s']) * 1e3:8.1f} ms"
                    )
                else:
                    print(f"rep {rep + 1} {s:<14} register: {r['status']}\n{r.get('error', '')}")
            for s in order:
                if runs[s][-1]["register"]["status"] != "ok":
                    continue
                r = run_child(s, "load", works[s], model, rows, args.versions, args.timeout)
                runs[s][-1]["load"] = r
                if r["status"] == "ok":
                    print(
                        f"rep {rep + 1} {s:<14} load:     {r['load_s'] * 1e3:7.1f} ms "
                        f"(process {r['process_s'] * 1e3:7.1f} ms)"
                    )
                else:
                    print(f"rep {rep + 1} {s:<14} load: {r['status']}\n{r.get('error', '')}")
            # Check equality on every repetition; a system that ever differs is "not equal".
            preds = {
                s: works[s] / f"preds-{s}.npy"
                for s in order
                if runs[s][-1].get("load", {}).get("status") == "ok"
            }
            for s, c in check(preds, reference).items():
                if s not in checks or not c["equal"]:
                    checks[s] = c
                if not c["equal"]:
                    print(f"rep {rep + 1} {s}: predictions differ: {c}")
    finally:
        if args.keep:
            print("stores kept in", root)
        else:
            shutil.rmtree(root, ignore_errors=True)

    summaries = {s: summarise(runs[s]) for s in systems}
    print_table(summaries, checks)

    RESULTS.mkdir(parents=True, exist_ok=True)
    today = dt.date.today().isoformat()
    path = args.json or RESULTS / f"registry-{today}{'-quick' if args.quick else ''}.json"
    command = "python benchmarks/registry.py " + " ".join(sys.argv[1:])
    path.write_text(
        json.dumps(
            {
                "benchmark": "registry",
                "date": today,
                "command": command.strip(),
                "settings": {
                    "versions": args.versions,
                    "repeat": args.repeat,
                    "systems": systems,
                    "model": {
                        "features": N_FEATURES,
                        "trees": N_TREES,
                        "seed": SEED,
                        "file": model.name,
                        "bytes": model.stat().st_size,
                    },
                    "check_rows": N_CHECK,
                    "rtol": RTOL,
                    "mlflow_env": {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
                },
                "machine": info,
                "checks": checks,
                "summary": summaries,
                "runs": runs,
            },
            indent=2,
        )
    )
    print("results:", path)


if __name__ == "__main__":
    main()
