"""Serving benchmark: one LightGBM model behind fourloops, BentoML, ``mlflow models serve`` and plain FastAPI.

One command trains a LightGBM binary classifier once (30 numeric features
f0..f29, 200 trees, fixed seed) through a throwaway fourloops project (synthetic
``data/events.parquet``, ``project.train`` then ``project.promote(force=True)``),
copies the registered LightGBM text model to ``benchmarks/.data/`` and serves
that same file with every system:

    fourloops  ``fourloops serve --project DIR --port P`` (project venv), all its
               defaults: contract validation, routing, metrics and the durable
               event log ON. Body ``{"inputs": {...}}``.
    bentoml    ``bentoml serve _serving_bentoml_service:BenchService`` (venv
               ``benchmarks/.venv-bentoml``: ``pip install bentoml lightgbm pandas``),
               ``@bentoml.service(workers=1)``, defaults otherwise. Flat body.
    mlflow     ``mlflow models serve -m DIR --env-manager local -w 1`` of a model
               saved with ``mlflow.lightgbm.save_model`` (venv ``benchmarks/.venv-mlflow``).
               Body ``{"dataframe_split": {...}}``.
    fourloops-fsync  the same fourloops server with ``storage.events_fsync = true``:
               every group of events is fsynced before its responses are released
               (survives a machine crash, not only the process being killed).
    fastapi    ``uvicorn _serving_fastapi_app:app`` (venv ``benchmarks/.venv-fastapi``:
               ``pip install fastapi uvicorn uvloop httptools lightgbm``; uvicorn picks
               uvloop + httptools, its fastest documented settings): one route, a
               pydantic model of 30 floats, no safety features; a plain ``def``
               endpoint (FastAPI runs it in its thread pool).
    fastapi-async  the same app with an ``async def`` endpoint (the model is called
               on the event loop, no thread hop): what a performance-minded user writes.

Each server is one worker process (tree) pinned to core 1 (``taskset -c 1``); the
load generator, ``wrk`` (Debian package) with a Lua script cycling 1000 distinct
single-row bodies, is pinned to core 0. Per server start: startup to first
prediction, an equality check of 100 predictions against the parent's
``Booster.predict`` (rtol 1e-9, before any timing), a warm-up, then each
concurrency level for ``--seconds``. Servers run one at a time, in rounds whose
order alternates (A B C D / D C B A). Reported: medians over rounds of
requests/s, p50 and p99 (wrk records every latency), the min-max spread, errors,
peak RSS of the server process tree, and ratios fourloops / peer. Each run also
records the load average and the server's CPU time and run-queue wait per
request (``/proc/<pid>/task/*/schedstat``): on a shared machine a server can
lose throughput waiting for the CPU rather than using more of it.
``--baseline DIR`` serves fourloops from another source tree (``DIR/fourloops``)
as the system ``fourloops-baseline``, for a before/after in the same run.
``--paired N`` adds N trials per level (``--paired-concurrency``, c=1 by
default) with every server up at once, each trial one short run per system in
alternating order; the per-trial ratio fourloops / peer is steadier than a
ratio of medians over rounds when the machine's load drifts. The floor is the bare in-process
``Booster.predict`` of one row. JSON goes to
``benchmarks/results/serving-<date>[-quick].json`` (or ``--out``).

    .venv/bin/python benchmarks/serving.py              # 15 s per level, c=1,8,64, 3 rounds
    .venv/bin/python benchmarks/serving.py --quick      # 3 s, c=1,8, 1 round
    .venv/bin/python benchmarks/serving.py --systems fourloops,fastapi-async --paired 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
RESULTS = HERE / "results"
MODEL_FILE = DATA / "serving-model.txt"
PROJECT_PYTHON = Path(sys.executable)
VENVS = {
    "bentoml": HERE / ".venv-bentoml",
    "mlflow": HERE / ".venv-mlflow",
    "fastapi": HERE / ".venv-fastapi",
}
N_FEATURES = 30
N_TREES = 200
SEED = 0
N_BODIES = 1000
SERVER_CORE = "1"
LOAD_CORE = "0"

DEFINITIONS = f"""
import lightgbm
import fourloops as fl

bench = fl.Model(
    "bench", task="binary",
    entities=fl.FileSource("data/events.parquet", timestamp="ts"),
    request=fl.Contract({{f"f{{i}}": fl.Float() for i in range({N_FEATURES})}}),
    label=fl.Label("y"),
    trainer=lightgbm.LGBMClassifier(n_estimators={N_TREES}, num_leaves=31, learning_rate=0.05,
                                    deterministic=True, force_row_wise=True, n_jobs=1,
                                    random_state={SEED}, verbose=-1),
    fallback=fl.Fallback(constant=0.5),
)
"""

WRK_LUA = r"""
local reqs = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    reqs[#reqs + 1] = wrk.format("POST", args[2], {["Content-Type"] = "application/json"}, line)
  end
  i = math.random(#reqs)
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"p999_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""

MLFLOW_SAVE = """
import sys, lightgbm as lgb, mlflow.lightgbm
mlflow.lightgbm.save_model(lgb.Booster(model_file=sys.argv[1]), sys.argv[2])
"""


# ---------------------------------------------------------------- data and model
def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    w = rng.normal(size=N_FEATURES) / np.sqrt(N_FEATURES)
    logit = x @ w + 0.5 * np.sin(2 * x[:, 0]) + 0.3 * x[:, 1] * x[:, 2]
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    return x, y.astype(np.int64)


def build_project(root: Path) -> Path:
    """A throwaway fourloops project with model ``bench`` trained (seeded) and promoted."""
    import polars as pl

    from fourloops.project import Project
    from fourloops.storage.artifacts import ArtifactRef

    (root / "data").mkdir(parents=True)
    (root / "fourloops.toml").write_text('[project]\nname = "bench"\n')
    (root / "definitions.py").write_text(DEFINITIONS)
    x, y = synthetic(20_000, SEED)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {"ts": [t0 + timedelta(minutes=i) for i in range(len(y))]}
        | {f"f{i}": x[:, i] for i in range(N_FEATURES)}
        | {"y": y},
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    frame.write_parquet(root / "data/events.parquet")
    with Project.load(root, env={}) as project:
        project.train("bench", seed=SEED)
        project.promote("bench", 1, force=True, reason="serving benchmark")
        version = project.registry.get_version("bench", 1)
        path = project.artifacts.open(ArtifactRef.from_dict(version.artifact))
    src = path / "model.txt" if path.is_dir() else path
    DATA.mkdir(exist_ok=True)
    shutil.copyfile(src, MODEL_FILE)
    return root


FLOOR_CODE = """
import json, statistics, sys, time
import lightgbm as lgb, numpy as np
booster = lgb.Booster(model_file=sys.argv[1])
x = np.load(sys.argv[2])
out = {}
for label, kw in (("num_threads=1", {"num_threads": 1}), ("default threads", {})):
    for row in x[:50]:
        booster.predict(row.reshape(1, -1), **kw)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for row in x:
            booster.predict(row.reshape(1, -1), **kw)
        times.append((time.perf_counter() - t) / len(x) * 1e6)
    out[label] = round(statistics.median(times), 1)
print(json.dumps(out))
"""


def floor(x: np.ndarray, work: Path) -> dict:
    """Bare in-process ``Booster.predict`` of one row (µs), one thread and LightGBM's default.

    Measured in a child pinned to the servers' core, so OpenMP sees the same one CPU.
    """
    np.save(work / "floor.npy", x)
    done = subprocess.run(
        [
            "taskset",
            "-c",
            SERVER_CORE,
            str(PROJECT_PYTHON),
            "-c",
            FLOOR_CODE,
            str(MODEL_FILE),
            str(work / "floor.npy"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- systems
#: fourloops variants: the same server with other settings (environment overrides).
VARIANTS = {
    "fourloops-fsync": {"FOURLOOPS_STORAGE_EVENTS_FSYNC": "true"},
    "fastapi-async": {"BENCH_ASYNC": "1"},
}
#: The system each variant is a setting of.
VARIANT_OF = {
    "fourloops-fsync": "fourloops",
    "fourloops-baseline": "fourloops",
    "fastapi-async": "fastapi",
}


def kind(system: str) -> str:
    """The system a variant is a setting of (``fourloops-fsync`` -> ``fourloops``)."""
    return VARIANT_OF.get(system, system)


def bodies(system: str, x: np.ndarray, names: list[str]) -> list[str]:
    system = kind(system)
    rows = [{n: float(v) for n, v in zip(names, row, strict=True)} for row in x]
    if system == "fourloops":
        return [json.dumps({"inputs": r}) for r in rows]
    if system == "mlflow":
        return [json.dumps({"dataframe_split": {"columns": names, "data": [list(r.values())]}}) for r in rows]
    return [json.dumps(r) for r in rows]


PATHS = {
    "fourloops": "/v1/models/bench/predict",
    "fourloops-fsync": "/v1/models/bench/predict",
    "fourloops-baseline": "/v1/models/bench/predict",
    "bentoml": "/predict",
    "mlflow": "/invocations",
    "fastapi": "/predict",
    "fastapi-async": "/predict",
}


def prediction(system: str, payload) -> float:
    system = kind(system)
    if system == "fourloops":
        return float(payload["prediction"])
    if system == "mlflow":
        return float(payload["predictions"][0])
    if system == "fastapi":
        return float(payload["prediction"])
    return float(payload)


def available(system: str) -> str | None:
    """None if the system can run, else the reason it is skipped."""
    system = kind(system)
    if system == "fourloops":
        return None
    python = VENVS[system] / "bin" / "python"
    if not python.exists():
        return f"no venv at {VENVS[system]}"
    module = {"bentoml": "bentoml", "mlflow": "mlflow", "fastapi": "fastapi"}[system]
    done = subprocess.run([str(python), "-c", f"import {module}, lightgbm"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"import failed: {done.stderr.strip()[-200:]}"


def command(system: str, port: int, work: Path, extra: dict | None = None) -> tuple[list[str], Path, dict]:
    env = dict(os.environ, BENCH_MODEL=str(MODEL_FILE), PYTHONUNBUFFERED="1", **VARIANTS.get(system, {}))
    env |= extra or {}
    system = kind(system)
    if system in VENVS:  # peers spawn their own tools (mlflow execs ``uvicorn``): their venv first on PATH
        env["PATH"] = f"{VENVS[system] / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if system == "fourloops":
        return (
            [
                str(PROJECT_PYTHON),
                "-m",
                "fourloops.cli",
                "serve",
                "--project",
                str(work / "project"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            work,
            env,
        )
    if system == "fastapi":
        return (
            [
                str(VENVS["fastapi"] / "bin" / "uvicorn"),
                "_serving_fastapi_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            HERE,
            env,
        )
    if system == "bentoml":
        env |= {"BENTOML_HOME": str(work / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
        return (
            [
                str(VENVS["bentoml"] / "bin" / "bentoml"),
                "serve",
                "_serving_bentoml_service:BenchService",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            HERE,
            env,
        )
    if system == "mlflow":
        env |= {"MLFLOW_TRACKING_URI": f"file://{work / 'mlruns'}"}
        return (
            [
                str(VENVS["mlflow"] / "bin" / "mlflow"),
                "models",
                "serve",
                "-m",
                str(work / "mlflow-model"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "--env-manager",
                "local",
                "-w",
                "1",
            ],
            work,
            env,
        )
    raise ValueError(system)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += tree(int(child))
    except OSError:
        pass
    return out


def tree_rss_mb(pid: int) -> dict:
    """Peak (VmHWM) and current (VmRSS) resident memory summed over the process tree."""
    hwm = rss = 0
    for p in tree(pid):
        try:
            for ln in Path(f"/proc/{p}/status").read_text().splitlines():
                if ln.startswith("VmHWM:"):
                    hwm += int(ln.split()[1])
                elif ln.startswith("VmRSS:"):
                    rss += int(ln.split()[1])
        except OSError:
            pass
    return {"peak_mb": round(hwm / 1024, 1), "now_mb": round(rss / 1024, 1), "processes": len(tree(pid))}


def sched(pid: int) -> dict[str, tuple[int, int]]:
    """Per thread of the tree: nanoseconds on a CPU and nanoseconds runnable but waiting for one.

    From ``/proc/<pid>/task/<tid>/schedstat``: on a shared machine the second
    tells a server that waited for the CPU from one that needed more of it.
    """
    out = {}
    for p in tree(pid):
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                on_cpu, waiting, _ = (task / "schedstat").read_text().split()
                out[f"{p}/{task.name}"] = (int(on_cpu), int(waiting))
        except OSError:
            pass
    return out


def sched_delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> tuple[float, float]:
    """Seconds on a CPU and waiting for one between two :func:`sched` samples.

    A thread that ended in between is left out (its last slice is lost), one
    that started counts from zero.
    """
    cpu = wait = 0
    for tid, (on_cpu, waiting) in after.items():
        was_cpu, was_waiting = before.get(tid, (0, 0))
        cpu += on_cpu - was_cpu
        wait += waiting - was_waiting
    return cpu / 1e9, wait / 1e9


class Server:
    def __init__(self, system: str, work: Path, log: Path, env: dict | None = None) -> None:
        self.system = system
        self.port = free_port()
        cmd, cwd, env = command(system, self.port, work, env)
        self.log = open(log, "ab")  # noqa: SIM115
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *cmd],
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}{PATHS[system]}"

    def first_prediction(self, body: str, timeout: float = 180) -> float:
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.system} exited with {self.proc.returncode}")
                try:
                    r = http.post(self.url, content=body, headers={"content-type": "application/json"})
                    if r.status_code == 200:
                        return time.perf_counter() - self.t0
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
        raise RuntimeError(f"{self.system} gave no prediction within {timeout} s")

    def predictions(self, rows: list[str]) -> list[float]:
        import httpx

        with httpx.Client(timeout=10) as http:
            out = []
            for body in rows:
                r = http.post(self.url, content=body, headers={"content-type": "application/json"})
                r.raise_for_status()
                out.append(prediction(self.system, r.json()))
            return out

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self.log.close()


def wrk(
    url: str, body_file: Path, lua: Path, path: str, concurrency: int, seconds: float, pid: int | None = None
) -> dict:
    """One wrk run; with the server's ``pid``, also its CPU and run-queue wait per request."""
    cmd = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url.rsplit(path, 1)[0] + path,
        "--",
        str(body_file),
        path,
    ]
    load1 = os.getloadavg()[0]
    before = sched(pid) if pid is not None else None
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    after = sched(pid) if pid is not None else None
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout[-300:]} {done.stderr[-300:]}")
    r = json.loads(line.removeprefix("WRKJSON "))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    ok = r["requests"] - r["status"]
    server = {}
    if before is not None and after is not None and r["requests"]:
        cpu, wait = sched_delta(before, after)
        server = {
            "server_cpu_us": round(cpu / r["requests"] * 1e6, 1),
            "server_runq_us": round(wait / r["requests"] * 1e6, 1),
        }
    return {
        "rps": round(ok / (r["duration_us"] / 1e6), 1),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "p999_ms": r["p999_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "requests": r["requests"],
        "errors": errors,
        "errors_detail": {k: r[k] for k in ("connect", "read", "write", "status", "timeout")},
        "load1": round(load1, 2),
        **server,
    }


def server_env(system: str, args: argparse.Namespace) -> dict:
    """``fourloops-baseline`` imports fourloops from the ``--baseline`` source tree instead of this one."""
    if system != "fourloops-baseline":
        return {}
    return {"PYTHONPATH": str(Path(args.baseline).resolve())}


def src_digest(src: Path) -> str:
    """A short hash of a fourloops source tree (its ``fourloops/**/*.py``)."""
    digest = hashlib.sha256()
    for path in sorted((src / "fourloops").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def run_line(r: dict) -> str:
    """One run, printed: throughput, latency, errors, and the server's CPU and wait per request."""
    line = (
        f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}"
    )
    if "server_cpu_us" in r:
        line += f"  cpu {r['server_cpu_us']:6.1f} µs/req  run-queue {r['server_runq_us']:6.1f} µs/req"
    return line + f"  load {r['load1']:.1f}"


def paired_trials(
    systems: list[str],
    work: Path,
    lua: Path,
    body_files: dict[str, Path],
    body_lists: dict[str, list[str]],
    reference: np.ndarray,
    args: argparse.Namespace,
) -> dict:
    """Every system up at once (idle but for its turn); per level, short runs system after system.

    The load of a shared machine drifts over minutes: runs seconds apart see
    about the same, so the ratio within each trial is steadier than a ratio of
    medians over rounds minutes apart. Each level is a block of trials of its
    own, after a warm-up at that level.
    """
    seconds = args.paired_seconds
    servers: dict[str, Server] = {}
    levels: dict[str, dict] = {}
    try:
        for s in systems:
            servers[s] = server = Server(s, work, work / f"server-{s}-paired.log", server_env(s, args))
            server.first_prediction(body_lists[s][0])
            got = np.array(server.predictions(body_lists[s][:100]))
            if not np.allclose(got, reference, rtol=1e-9, atol=0):
                raise RuntimeError(f"{s} predictions differ from Booster.predict")
        for c in args.paired_concurrency:
            for s, server in servers.items():
                wrk(server.url, body_files[s], lua, PATHS[s], c, args.warmup)
            trials: list[dict[str, dict]] = []
            for i in range(args.paired):
                trial = {}
                for s in systems if i % 2 == 0 else systems[::-1]:
                    server = servers[s]
                    trial[s] = wrk(server.url, body_files[s], lua, PATHS[s], c, seconds, server.proc.pid)
                    print(f"trial {i + 1} {s:9s} c={c:<3d} {run_line(trial[s])}", flush=True)
                trials.append(trial)
            ratios = {}
            if "fourloops" in systems:
                for peer in systems:
                    if peer != "fourloops":
                        ratios[peer] = [round(t["fourloops"]["rps"] / t[peer]["rps"], 3) for t in trials]
            levels[str(c)] = {"trials": trials, "ratios": ratios}
    finally:
        for server in servers.values():
            server.stop()
    return {"seconds": seconds, "systems": systems, "levels": levels}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def print_paired(paired: dict) -> None:
    for c, level in paired["levels"].items():
        trials = level["trials"]
        print(
            f"\npaired trials: {len(trials)} x {paired['seconds']} s at c={c}, servers up together, "
            "order alternating; median [min-max]"
        )
        for s in paired["systems"]:
            runs = [t[s] for t in trials]
            line = f"  {s:18s} req/s {spread([r['rps'] for r in runs])}"
            if all("server_cpu_us" in r for r in runs):
                line += (
                    f"   cpu µs/req {spread([r['server_cpu_us'] for r in runs])}"
                    f"   run-queue µs/req {spread([r['server_runq_us'] for r in runs])}"
                    f"   load {spread([r['load1'] for r in runs])}"
                )
            print(line)
        for peer, ratios in level["ratios"].items():
            print(f"  fourloops / {peer:18s} throughput {spread(ratios)}x (per trial)")


# ---------------------------------------------------------------- machine
def version_of(system: str, packages: list[str]) -> dict:
    system = kind(system)
    python = PROJECT_PYTHON if system == "fourloops" else VENVS[system] / "bin" / "python"
    code = (
        "import importlib.metadata as m, json, platform\n"
        f"v = {{}}\nfor n in {packages!r}:\n"
        "    try: v[n] = m.version(n)\n    except Exception: v[n] = None\n"
        "v['python'] = platform.python_version(); print(json.dumps(v))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-200:]}


def machine(systems: list[str]) -> dict:
    mem_kb = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))
    info = {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024**2, 1),
        "cpu": next(
            (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"
        ),
        "platform": platform.platform(),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0][:60],
        "git_commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }
    info["fourloops_src_sha256"] = src_digest(ROOT / "src")
    common = ["lightgbm", "numpy", "uvicorn", "starlette", "pydantic", "uvloop", "httptools"]
    extra = {
        "fourloops": ["fourloops", "fastapi"],
        "bentoml": ["bentoml"],
        "mlflow": ["mlflow", "fastapi", "gunicorn"],
        "fastapi": ["fastapi"],
    }
    info["versions"] = {s: version_of(s, extra[kind(s)] + common) for s in systems}
    return info


# ---------------------------------------------------------------- report
def summarise(runs: list[dict]) -> dict:
    out = {}
    for key in ("rps", "p50_ms", "p99_ms", "server_cpu_us", "server_runq_us"):
        values = [r[key] for r in runs if key in r]
        if values:
            out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    out["errors"] = sum(r["errors"] for r in runs)
    out["requests"] = sum(r["requests"] for r in runs)
    return out


def print_report(result: dict) -> None:
    m = result["machine"]
    print(f"\nmachine: nproc={m['nproc']}, {m['memory_gib']} GiB, {m['cpu']}, {m['platform']}, {m['wrk']}")
    for s, v in m["versions"].items():
        print(f"  {s:9s} " + ", ".join(f"{k} {x}" for k, x in v.items() if x))
    print(f"floor: Booster.predict of one row in process: {result['floor_us']} µs")
    for s, reason in result["skipped"].items():
        print(f"SKIPPED {s}: {reason}")
    summ = result["summary"]
    systems = [s for s in result["systems"] if s in summ]
    print(
        f"\nrounds={result['args']['rounds']}, {result['args']['seconds']} s per level; "
        "median over rounds [min-max]; latency in ms"
    )
    print(
        f"{'system':18s} {'conc':>4s} {'req/s':>22s} {'p50':>20s} {'p99':>22s} {'errors':>7s} "
        f"{'cpu µs/req':>11s} {'run-queue':>10s}"
    )
    for c in result["args"]["concurrency"]:
        for s in systems:
            st = summ[s].get(str(c))
            if st is None:
                continue
            r, p50, p99 = st["rps"], st["p50_ms"], st["p99_ms"]
            print(
                f"{s:18s} {c:4d} {r['median']:8.0f} [{r['min']:5.0f}-{r['max']:5.0f}] "
                f"{p50['median']:7.2f} [{p50['min']:.2f}-{p50['max']:.2f}] "
                f"{p99['median']:7.2f} [{p99['min']:.2f}-{p99['max']:.2f}] {st['errors']:7d} "
                f"{st.get('server_cpu_us', {}).get('median', math.nan):11.1f} "
                f"{st.get('server_runq_us', {}).get('median', math.nan):10.1f}"
            )
    print("\nstartup to first prediction (s, median [min-max]) and peak RSS of the server tree (MB):")
    for s in systems:
        st = result["startup_s"][s]
        print(
            f"  {s:18s} {statistics.median(st):6.2f} [{min(st):.2f}-{max(st):.2f}]   "
            f"{max(x['peak_mb'] for x in result['rss'][s]):7.1f} MB"
        )
    if "fourloops" in summ:
        print(
            "\nratios fourloops / peer (throughput: >1 means fourloops faster; p99: <1 means fourloops lower)"
        )
        for c in result["args"]["concurrency"]:
            fl = summ["fourloops"].get(str(c))
            for s in systems:
                if s == "fourloops" or fl is None or str(c) not in summ[s]:
                    continue
                pe = summ[s][str(c)]
                print(
                    f"  c={c:<3d} vs {s:8s} throughput {fl['rps']['median'] / pe['rps']['median']:6.2f}x   "
                    f"p50 {fl['p50_ms']['median'] / pe['p50_ms']['median']:5.2f}x   "
                    f"p99 {fl['p99_ms']['median'] / pe['p99_ms']['median']:5.2f}x"
                )


# ---------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="3 s per level, concurrency 1 and 8, one round")
    p.add_argument("--seconds", type=float, default=None, help="seconds per concurrency level (default 15)")
    p.add_argument("--rounds", type=int, default=None, help="rounds over all systems (default 3)")
    p.add_argument("--concurrency", default=None, help="comma-separated levels (default 1,8,64)")
    p.add_argument("--systems", default="fourloops,fastapi,fastapi-async,bentoml,mlflow,fourloops-fsync")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds at concurrency 8 (default 3)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (server logs, project)")
    p.add_argument(
        "--out", default=None, help="results JSON (default benchmarks/results/serving-<date>.json)"
    )
    p.add_argument(
        "--paired",
        type=int,
        default=0,
        help="after the rounds, this many trials with every server up, one short run each in turn",
    )
    p.add_argument("--paired-seconds", type=float, default=5.0, help="seconds per run of a trial (default 5)")
    p.add_argument(
        "--paired-concurrency", default="1", help="comma-separated levels of the trials (default 1)"
    )
    p.add_argument(
        "--baseline",
        default=None,
        help="a fourloops source folder (holding fourloops/, e.g. from `git archive <commit> src`) "
        "served as system fourloops-baseline, for a before/after in one run",
    )
    a = p.parse_args()
    a.seconds = a.seconds or (3.0 if a.quick else 15.0)
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.concurrency = [int(c) for c in (a.concurrency or ("1,8" if a.quick else "1,8,64")).split(",")]
    a.warmup = a.warmup if a.warmup is not None else (1.0 if a.quick else 3.0)
    a.paired_concurrency = [int(c) for c in a.paired_concurrency.split(",")]
    return a


def main() -> None:
    import lightgbm as lgb

    args = parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    systems = args.systems.split(",")
    work = Path(tempfile.mkdtemp(prefix="fl-serving-"))
    print(f"work dir {work}")
    t = time.perf_counter()
    build_project(work / "project")
    print(
        f"trained and promoted 'bench' v1 through fourloops in {time.perf_counter() - t:.1f} s; "
        f"model copied to {MODEL_FILE}"
    )
    booster = lgb.Booster(model_file=str(MODEL_FILE))
    names = booster.feature_name()
    assert booster.num_trees() == N_TREES and len(names) == N_FEATURES, (booster.num_trees(), names)
    x, _ = synthetic(N_BODIES, SEED + 1)
    reference = booster.predict(x[:100])
    floor_us = floor(x, work)
    print(f"floor: {floor_us} µs per single-row Booster.predict")

    skipped = {}
    for s in list(systems):
        reason = available(s)
        if s == "fourloops-baseline" and not (args.baseline and (Path(args.baseline) / "fourloops").is_dir()):
            reason = "--baseline names no folder holding fourloops/"
        if reason:
            skipped[s] = reason
            systems.remove(s)
            print(f"skip {s}: {reason}")
    if "mlflow" in systems:
        done = subprocess.run(
            [
                str(VENVS["mlflow"] / "bin" / "python"),
                "-c",
                MLFLOW_SAVE,
                str(MODEL_FILE),
                str(work / "mlflow-model"),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            skipped["mlflow"] = f"save_model failed: {done.stderr[-300:]}"
            systems.remove("mlflow")

    lua = work / "bench.lua"
    lua.write_text(WRK_LUA)
    body_files, body_lists = {}, {}
    for s in systems:
        body_lists[s] = bodies(s, x, names)
        body_files[s] = work / f"bodies-{s}.txt"
        body_files[s].write_text("\n".join(body_lists[s]) + "\n")

    runs: dict[str, dict[str, list[dict]]] = {s: {str(c): [] for c in args.concurrency} for s in systems}
    startup: dict[str, list[float]] = {s: [] for s in systems}
    rss: dict[str, list[dict]] = {s: [] for s in systems}
    checks: dict[str, dict] = {}
    for rnd in range(args.rounds):
        order = systems if rnd % 2 == 0 else systems[::-1]
        for s in list(order):
            if s in skipped:
                continue
            server = Server(s, work, work / f"server-{s}.log", server_env(s, args))
            try:
                startup[s].append(server.first_prediction(body_lists[s][0]))
                got = np.array(server.predictions(body_lists[s][:100]))
                ok = bool(np.allclose(got, reference, rtol=1e-9, atol=0))
                checks[s] = {"equal_rtol_1e-9": ok, "max_abs_diff": float(np.max(np.abs(got - reference)))}
                if not ok:
                    raise RuntimeError(f"{s} predictions differ from Booster.predict: {checks[s]}")
                wrk(server.url, body_files[s], lua, PATHS[s], 8, args.warmup)
                for c in args.concurrency:
                    r = wrk(server.url, body_files[s], lua, PATHS[s], c, args.seconds, server.proc.pid)
                    runs[s][str(c)].append(r)
                    print(f"round {rnd + 1} {s:9s} c={c:<3d} {run_line(r)}", flush=True)
                rss[s].append(tree_rss_mb(server.proc.pid))
            except Exception as e:  # noqa: BLE001 - a peer that fails is reported, the others still run
                skipped[s] = f"round {rnd + 1}: {e}"
                print(f"skip {s}: {e} (log: {work / f'server-{s}.log'})")
            finally:
                server.stop()

    paired = None
    if args.paired:
        alive = [s for s in systems if s not in skipped]
        paired = paired_trials(alive, work, lua, body_files, body_lists, reference, args)

    summary = {s: {c: summarise(rs) for c, rs in runs[s].items() if rs} for s in systems if s not in skipped}
    result = {
        "benchmark": "serving",
        "date": date.today().isoformat(),
        "command": " ".join([".venv/bin/python", "benchmarks/serving.py", *sys.argv[1:]]),
        "args": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "warmup_s": args.warmup,
            "quick": args.quick,
        },
        "model": {
            "features": N_FEATURES,
            "trees": N_TREES,
            "seed": SEED,
            "file": str(MODEL_FILE.relative_to(ROOT)),
            "sha256": hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest()[:16],
        },
        "systems": systems,
        "skipped": skipped,
        "machine": machine([s for s in systems if s not in skipped] or ["fourloops"]),
        "baseline": (
            {"src": str(Path(args.baseline).resolve()), "src_sha256": src_digest(Path(args.baseline))}
            if "fourloops-baseline" in systems and "fourloops-baseline" not in skipped
            else None
        ),
        "floor_us": floor_us,
        "checks": checks,
        "startup_s": startup,
        "rss": rss,
        "summary": summary,
        "runs": runs,
        "paired": paired,
    }
    print_report(result)
    if paired is not None:
        print_paired(paired)
    RESULTS.mkdir(exist_ok=True)
    default = RESULTS / f"serving-{result['date']}{'-quick' if args.quick else ''}.json"
    out = Path(args.out).resolve() if args.out else default
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
