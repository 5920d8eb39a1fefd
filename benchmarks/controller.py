"""Controller tick benchmark: ``Project.tick()`` over 10 models in a canary, against bare DuckDB aggregations.

Issue 12 asks what a tick of the adaptation controller costs over 10 models
and 10M events. One command:

1. **builds** a project (``_controller_child.py build``, its own process): 10
   small binary models (LightGBM, 10 trees; a request contract of ``region``,
   a category of 10 values, and ``x``; ``segments=["region"]``; a rollout
   policy of one 10 % canary stage and three checks: ``error``, ``log_loss``,
   ``fallback``), two trained versions of each, v1 champion, and a canary
   rollout of v2 started for each with ``Project.rollout``;
2. **fills** the event tables with N events (default 10M: a tenth per model,
   one day of champion-only history, then three days in which the canary
   answers 10 %; 80 % labelled an hour later; 0.5 % fallbacks), written in
   chunks of 500k with ``EventTables.append`` (the writer compaction uses,
   with compaction's chunk size: the same typed files, events partitioned by
   model and day, labels by model), then ``Project.compact_events()`` once. Timed apart: set-up, not the
   measurement. The canary answers as well as the champion and its stage asks
   for 10^12 requests, so every tick decides ``wait`` and the rollouts stay
   running; the project is cached in ``benchmarks/.data/`` for later runs;
3. **measures** (``_controller_child.py measure``, one process per round):
   one cold tick (the first in the process), then ``Project.tick()`` and the
   **floor** alternately (A B, B A, ...; rounds start with the other one in
   turn). Every tick comes after the previous holder's lease expired (the
   project's clock is a ``ManualClock`` moved on by the lease + 1 s) and is
   taken by a holder of its own. The tick measures each model's stage in one
   query (3 checks, overall and per region, one scan of the model's events
   with their labels). The **floor** is the same 10 aggregations as SQL
   straight on the same Parquet files in one DuckDB connection: the model's
   event files joined with its label files. Before a ratio is
   printed, the floor's sums must give the tick's numbers (rows of each arm
   and the difference of every check, overall and in every region);
4. **profiles** one tick with pyinstrument (if installed), times every query
   of another tick, times the fixed cost of a query (a fresh DuckDB database,
   the views, closing it), and times variants of the floor: joining every
   model's labels (the layout before labels were partitioned by model), and
   with one query per check and segment column (60; what a tick did before);
5. runs ``tests/adaptation/test_abort_servers.py`` (an abort reaching two
   server processes) ``--abort-runs`` times and records the time it prints.

Run (from the repository root)::

    .venv/bin/python benchmarks/controller.py                      # 10M events, 3 rounds x 2, 3 abort runs
    .venv/bin/python benchmarks/controller.py --events 1000000 --rounds 2
    .venv/bin/python benchmarks/controller.py --quick              # CI: 200k events, 1 round, seconds

Results go to ``benchmarks/results/controller-<date>.json`` (``--quick``
writes none unless ``--json`` is given).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _child_process import ROOT, built_once, run_script
from _results import machine, write_results

DATA = ROOT / "benchmarks" / ".data"
CHILD = ROOT / "benchmarks" / "_controller_child.py"
#: Whose versions the results record.
PACKAGES = ("fourloops", "duckdb", "pyarrow", "polars", "numpy", "lightgbm", "sqlalchemy", "pyinstrument")
ABORT_TEST = "tests/adaptation/test_abort_servers.py"
ABORT_LINE = re.compile(
    r"every server answered from the champion only ([0-9.]+)s after the abort \(refresh ([0-9.]+)s\)"
)
QUICK_EVENTS = 200_000


def run_child(args: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """``_controller_child.py ARGS`` in a fresh process; its measurements come back on its last line."""
    return run_script(CHILD, args, log, timeout)


def build(project: Path, events: int, seed: int, rebuild: bool, timeout: float) -> dict[str, Any]:
    """The project with its events, built once per size and seed (``--rebuild`` builds it again)."""

    def make() -> dict[str, Any]:
        if project.exists():
            shutil.rmtree(project)
        print(f"building the project and filling {events:,} events in {project} ...", flush=True)
        args = ["build", str(project), "--events", str(events), "--seed", str(seed)]
        return run_child(args, project.parent / f"{project.name}-build.log", timeout)

    return built_once(project / "build.json", make, rebuild=rebuild, what="build")


def abort_runs(runs: int, timeout: float) -> dict[str, Any]:
    """Run the two-server abort test ``runs`` times; the time it prints, each run."""
    out: list[dict[str, Any]] = []
    for _ in range(runs):
        load = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", ABORT_TEST],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
        found = ABORT_LINE.search(done.stdout)
        out.append(
            {
                "status": "ok" if done.returncode == 0 and found else "error",
                "seconds": float(found.group(1)) if found else None,
                "refresh_seconds": float(found.group(2)) if found else None,
                "test_seconds": time.perf_counter() - started,
                "loadavg_1min_before": load,
                **({} if found else {"output": done.stdout[-2000:] + done.stderr[-2000:]}),
            }
        )
        print(f"  abort test: {out[-1]['seconds']} s (load {load:.2f})", flush=True)
    times = [r["seconds"] for r in out if r["seconds"] is not None]
    summary = (
        {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}
        if times
        else {}
    )
    return {"runs": out, "summary": summary}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarise(rounds: list[dict[str, Any]], models: int) -> dict[str, Any]:
    ok = [r for r in rounds if r["status"] == "ok"]
    if not ok:
        return {"status": "failed"}
    ticks = [t for r in ok for t in r["tick_seconds"]]
    floors = [f for r in ok for f in r["floor_seconds"]]
    cold = [r["cold_tick_seconds"] for r in ok]
    # each tick against the floor measured next to it, in the same process
    paired = [t / f for r in ok for t, f in zip(r["tick_seconds"], r["floor_seconds"], strict=True)]
    loads = [x for r in ok for x in r["loadavg_1min"]]
    return {
        "status": "ok" if len(ok) == len(rounds) else "partial",
        "tick": spread(ticks),
        "tick_per_model_median": statistics.median(ticks) / models,
        "cold_tick": spread(cold),
        "floor": spread(floors),
        "tick_over_floor": statistics.median(ticks) / statistics.median(floors),
        "tick_over_floor_paired": spread(paired),
        "equal": all(r["equality"]["equal"] for r in ok),
        "compared": sum(r["equality"]["compared"] for r in ok),
        "max_abs_diff": max(r["equality"]["max_abs_diff"] for r in ok),
        "running_rollouts_after": min(r["running_rollouts_after"] for r in ok),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
        "loadavg_1min_during": spread(loads),
    }


def print_summary(result: dict[str, Any]) -> None:
    s = result["summary"]
    if s["status"] == "failed":
        print("\nevery measurement round failed")
        return
    fill = result["build"]["fill"]
    n = result["events"]

    def cell(d: dict[str, float]) -> str:
        return f"{d['median']:.2f} ({d['min']:.2f}-{d['max']:.2f})"

    print(
        f"\n{n:,} events, {result['models']} models, {result['queries_per_tick']} queries a tick; "
        f"{s['tick']['n']} ticks and {s['floor']['n']} floors, alternating"
    )
    print(f"  tick        {cell(s['tick'])} s   ({s['tick_per_model_median']:.2f} s per model)")
    print(f"  cold tick   {cell(s['cold_tick'])} s   (the first in a process)")
    print(f"  floor       {cell(s['floor'])} s")
    print(
        f"  tick / floor {s['tick_over_floor']:.2f}x (medians); paired in each process "
        f"{cell(s['tick_over_floor_paired'])}"
    )
    print(
        f"  equality: {s['compared']} comparisons, max |diff| {s['max_abs_diff']:.1e}, "
        f"{'equal' if s['equal'] else 'NOT EQUAL'}; "
        f"rollouts still running after: {s['running_rollouts_after']}"
    )
    print(
        f"  fill (set-up): {fill['generate_seconds'] + fill['write_seconds']:.1f} s "
        f"({n / (fill['generate_seconds'] + fill['write_seconds']):,.0f} events/s; generate "
        f"{fill['generate_seconds']:.1f} s, write {fill['write_seconds']:.1f} s, {fill['files']} files, "
        f"{fill['bytes'] / 1e6:.0f} MB), compact_events {fill['compact_events_seconds']:.3f} s"
        + (" [cached project]" if result["build"].get("reused") else "")
    )
    print(
        f"  peak RSS of a measuring process {s['peak_rss_mb']:.0f} MB; "
        f"load average {cell(s['loadavg_1min_during'])}"
    )
    prof = result.get("profile") or {}
    if prof.get("status") == "ok":
        print(f"\nprofile of one tick ({prof['tick_seconds']:.2f} s under pyinstrument):")
        for part, seconds in prof["inclusive"].items():
            print(f"  {seconds:7.2f} s  {part}")
        fixed = prof["per_query_fixed_ms"]
        print(
            f"  fixed cost per query: connect {fixed['connect']:.1f} ms, register_events "
            f"{fixed['register_events']:.1f} ms, close {fixed['close']:.1f} ms"
        )
        print(
            "  queries of one tick: "
            + ", ".join(f"{k} {v['seconds']:.2f} s ({v['n']})" for k, v in prof["queries"].items())
        )
        diag = prof.get("diagnostics")
        if diag:
            print(
                "  the floor's variants (run twice each, A B C C B A; the same sums: "
                f"{'yes' if diag['equal'] else 'NO'}): "
                + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in diag["seconds"].items())
            )
        print("  top self time:")
        for item in prof["top_self"][:8]:
            print(f"  {item['seconds']:7.2f} s  {item['frame']}")
    elif prof:
        print(f"\nprofile: {prof.get('status')}")
    abort = result.get("abort", {}).get("summary")
    if abort:
        print(
            f"\nabort reaching two servers (refresh 0.5 s): median {abort['median']:.2f} s "
            f"({abort['min']:.2f}-{abort['max']:.2f}, {abort['n']} runs)"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000, help="events in total, over the 10 models")
    p.add_argument(
        "--quick", action="store_true", help=f"{QUICK_EVENTS:,} events, 1 round, no abort runs (CI)"
    )
    p.add_argument("--rounds", type=int, default=None, help="measuring processes (default 3, --quick 1)")
    p.add_argument(
        "--reps", type=int, default=None, help="ticks and floors per process (default 2, --quick 1)"
    )
    p.add_argument(
        "--abort-runs", type=int, default=None, help="runs of the abort test (default 3, --quick 0)"
    )
    p.add_argument("--no-profile", action="store_true", help="skip the profiled tick")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rebuild", action="store_true", help="build the project again even if cached")
    p.add_argument("--data", type=Path, default=DATA, help="where the built project is cached")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per child process")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write results (default benchmarks/results/controller-<date>.json; --quick: none)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.events = QUICK_EVENTS
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.reps = args.reps or (1 if args.quick else 2)
    if args.abort_runs is None:
        args.abort_runs = 0 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine(PACKAGES)
    info["loadavg_start"] = os.getloadavg()
    print("machine:", json.dumps(info))
    project = args.data / f"controller-{args.events}-s{args.seed}-labels-by-model"
    logs = args.data / "work-controller"
    from _controller_child import CHECKS, MODELS

    result: dict[str, Any] = {
        "command": "python benchmarks/controller.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": info,
        "events": args.events,
        "models": MODELS,
        "checks": [c for c, _ in CHECKS],
        "queries_per_tick": MODELS,
    }
    result["build"] = build(project, args.events, args.seed, args.rebuild, args.timeout)
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        first = "tick" if r % 2 == 0 else "floor"
        run = run_child(
            ["measure", str(project), "--reps", str(args.reps), "--first", first],
            logs / f"measure-{r}.log",
            args.timeout,
        )
        rounds.append(run)
        if run["status"] == "ok":
            print(
                f"  round {r + 1} ({first} first): cold tick {run['cold_tick_seconds']:.2f} s; ticks "
                + ", ".join(f"{t:.2f}" for t in run["tick_seconds"])
                + " s; floors "
                + ", ".join(f"{f:.2f}" for f in run["floor_seconds"])
                + f" s (load {run['loadavg_1min_before']:.2f})",
                flush=True,
            )
        else:
            print(f"  round {r + 1}: {run['status']}\n    " + run.get("error", "").replace("\n", "\n    "))
    result["rounds"] = rounds
    result["summary"] = summarise(rounds, MODELS)
    if not args.no_profile:
        profile_txt = logs / "profile.txt"
        result["profile"] = run_child(
            ["profile", str(project), "--out", str(profile_txt)], logs / "profile.log", args.timeout
        )
        if result["profile"].get("status") == "ok":
            result["profile"]["text"] = profile_txt.read_text()
    if args.abort_runs:
        print(f"running {ABORT_TEST} {args.abort_runs} times ...", flush=True)
        result["abort"] = abort_runs(args.abort_runs, args.timeout)
    info["loadavg_end"] = os.getloadavg()
    print_summary(result)
    print(f"\nload average at start {info['loadavg_start']}, at end {info['loadavg_end']}")
    write_results(result, args.json, name="controller", quick=args.quick)
    ok = result["summary"]["status"] == "ok" and result["summary"]["equal"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
