"""Monitor scaling: ``fourloops monitor`` over an event log of 1M to 100M events, against bare DuckDB.

Issue 11 asks that monitoring a model's event log keep its peak memory flat
and its time linear as the log grows from 1M to 100M events, within 1.5x of
a bare DuckDB query computing the same histograms (the floor). One command:

1. **builds** a project once (``_monitor_scaling_child.py build``, its own
   process): one binary model, ``scoring``, with a request contract of 10
   numbers (8 floats of assorted shapes, one with 2 % nulls, and 2 integer
   counts) and 5 categories (3 to 20 values, Zipf-like shares, one with 5 %
   nulls), trained with LightGBM (60 trees) on 20,000 synthetic entity rows
   and promoted to champion; its reference profile (the version's test rows)
   gives the bins the monitor judges on;
2. **fills** a copy of that project per size with N events, written straight
   into its event tables as typed Parquet by DuckDB ``COPY`` (the layout and
   columns compaction writes: ``events/model=scoring/day=<d>/part-*.parquet``,
   zstd, files of up to ~491k rows; labels in ``labels/model=scoring/day=<d>/``, the day of their
   prediction, as compaction files them, with the prediction's UTC hour):
   30 UTC days, N/30 events a day, request ids of 32 hex digits, a label for
   80 % of the events an hour later, 0.5 % fallbacks; from day 20 on x0's mean
   moves by +0.3 sd, x5's scale by x1.2 and k1's shares by a few points, so the
   monitor has drift to find. Set-up, timed apart; cached in ``benchmarks/.data/``;
3. **measures** each size, every run in its own process (``run_measured``:
   wall and CPU from the kernel, peak RSS the child's ``VmHWM``), in the order
   A B B A (``--repeat 2``; A B A B ... for more): **monitor** is
   ``Project.monitor("scoring", window="1d", since=<day 0>, until=<day 30>)``
   with every default (what ``fourloops monitor scoring --since --until``
   runs: compaction first, the domain classifier, alerts recorded), timed
   after loading the project and its reference; **floor** is one DuckDB query
   on the same Parquet files (:func:`_monitor_scaling_child.floor_sql`): per
   day, every monitored numeric column's counts on the reference's bin edges
   (``histogram(x, edges)``), every categorical column's counts on the
   reference's categories (``histogram_exact``), the score's counts on the
   monitor's grid for labelled positives, negatives and unlabelled events, the
   events joined with their labels, on a default DuckDB connection (the same
   threads as the monitor's) with one setting, named in the results: the join
   built on the labels (``disabled_optimizers = 'build_side_probe_side'``;
   DuckDB's own choice builds it on the events and needs 19.9 GB at 100M).
   Before a ratio is printed, the floor's counts must equal the monitor's
   summaries: rows of every window and every column's histogram (and the
   score's three grids) in every window;
4. **diagnoses**, once per size (``--diagnostics``, at ``--diagnostic-sizes``; each checked equal too):
   ``monitor-no-mv``, the monitor without the domain classifier
   (``multivariate=False``); ``monitor-labels-build``, the monitor with the
   floor's setting on every engine connection (what if the engine built its
   joins on the labels); ``monitor-2gb``, the monitor with ``[engine]
   memory_limit = "2GB"`` (DuckDB spills); ``floor-no-labels``, the floor
   without the labels (what the join costs); ``floor-2gb``, the floor with a
   2 GB memory limit. And it **profiles** the monitor at one size
   (``--profile-size``) with pyinstrument;
5. **fits** time against N (least squares of time = fixed + cost per event,
   and the log-log slopes from each size to the next: above 1.1 is superlinear;
   a fixed cost lowers them, which is still linear) and compares the peak RSS
   across sizes (flat: the largest size's within 1.25x of the smallest's).

Run (from the repository root)::

    .venv/bin/python benchmarks/monitor_scaling.py                          # 1M, 10M, 100M; A B B A
    .venv/bin/python benchmarks/monitor_scaling.py --sizes 1000000,3000000,10000000,30000000
    .venv/bin/python benchmarks/monitor_scaling.py --diagnostic-sizes 1000000,10000000   # ~10 min, not 28
    .venv/bin/python benchmarks/monitor_scaling.py --quick                  # CI: 30k and 90k events, seconds

Results go to ``benchmarks/results/monitor_scaling-<date>.json`` (``--quick``
writes none unless ``--json`` is given).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _child_process import ROOT, built_once, run_script
from _results import machine, write_results

DATA = ROOT / "benchmarks" / ".data"
CHILD = ROOT / "benchmarks" / "_monitor_scaling_child.py"
#: Whose versions the results record.
PACKAGES = ("fourloops", "duckdb", "pyarrow", "polars", "numpy", "lightgbm", "pyinstrument")
#: Bump when the generated data changes: cached projects of another format are not reused.
FORMAT = 3  # 2: labels by the day of their prediction (labels/model=<m>/day=<d>/); 3: and its hour
SIZES = [1_000_000, 10_000_000, 100_000_000]
QUICK_SIZES = [30_000, 90_000]
METHODS = ("monitor", "floor")
#: What each method runs (the child's arguments); the last five are diagnostics, run once per size.
METHOD_ARGS: dict[str, list[str]] = {
    "monitor": ["monitor"],
    "floor": ["floor"],
    "monitor-no-mv": ["monitor", "--no-multivariate"],
    "monitor-labels-build": ["monitor", "--labels-build"],
    "monitor-2gb": ["monitor", "--memory-limit", "2GB"],
    "floor-no-labels": ["floor", "--no-labels"],
    "floor-2gb": ["floor", "--memory-limit", "2GB"],
}
DIAGNOSTICS = [m for m in METHOD_ARGS if m not in METHODS]
#: The targets of issue 11.
TARGET_RATIO = 1.5
FLAT_RSS = 1.25  # the largest size's peak RSS within this factor of the smallest's
#: Linear time: wall time is a fixed part plus a cost per event (an affine fit this good, R^2), and
#: no step from one size to the next grows faster than this log-log slope (nothing superlinear).
#: A fixed part makes the slope over all sizes fall below 1: that is still linear, not a failure.
LINEAR_R2 = 0.99
MAX_STEP_SLOPE = 1.1


def run_child(args: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """``_monitor_scaling_child.py ARGS`` in a fresh process; its measurements come back on its last line."""
    return run_script(CHILD, args, log, timeout)


def build_base(folder: Path, seed: int, rebuild: bool, timeout: float) -> dict[str, Any]:
    """The trained project without events, built once per seed (``--rebuild`` builds it again)."""
    base = folder / "base"

    def make() -> dict[str, Any]:
        if folder.exists():
            shutil.rmtree(folder)  # every size's project is a copy of the base: build them again too
        folder.mkdir(parents=True)
        print(f"building the project in {base} ...", flush=True)
        return run_child(["build", str(base), "--seed", str(seed)], folder / "build.log", timeout)

    return built_once(base / "build.json", make, rebuild=rebuild, what="build")


def build_size(folder: Path, size: int, seed: int, timeout: float) -> tuple[Path, dict[str, Any]]:
    """A copy of the base project with ``size`` events, filled once."""
    root = folder / f"n{size}"

    def make() -> dict[str, Any]:
        if root.exists():
            shutil.rmtree(root)
        shutil.copytree(folder / "base", root)
        print(f"filling {size:,} events in {root} ...", flush=True)
        args = ["fill", str(root), "--events", str(size), "--seed", str(seed)]
        return run_child(args, folder / f"fill-{size}.log", timeout)

    return root, built_once(root / "fill.json", make, rebuild=False, what=f"fill of {size:,} events")


def measure(root: Path, method: str, out: Path, log: Path, timeout: float) -> dict[str, Any]:
    """One measured run of ``method`` (monitor, floor, or a diagnostic variant) on project ``root``."""
    mode, *options = METHOD_ARGS[method]
    return run_child([mode, str(root), "--out", str(out), *options], log, timeout) | {"method": method}


# --------------------------------------------------------------------------- equality


def compare(monitor: dict[str, Any], floor: dict[str, Any], *, scores: bool = True) -> dict[str, Any]:
    """The floor's counts against the monitor's summaries: every window's rows, every column's histogram
    (counts, nulls; categories with unseen values) and, with ``scores``, the score's three grids."""
    mismatches: list[str] = []
    compared = 0
    for day in sorted(set(monitor) | set(floor)):
        if day not in monitor or day not in floor:
            mismatches.append(f"{day}: only in {'the monitor' if day in monitor else 'the floor'}")
            continue
        a, b = monitor[day], floor[day]
        compared += 1
        if a["rows"] != b["rows"]:
            mismatches.append(f"{day}: rows {a['rows']} vs {b['rows']}")
        for kind in ("numeric", "categorical"):
            for column in sorted(set(a[kind]) | set(b[kind])):
                compared += 1
                if a[kind].get(column) != b[kind].get(column):
                    mismatches.append(f"{day} {column}: {a[kind].get(column)} vs {b[kind].get(column)}"[:300])
        if scores:
            for part in ("positives", "negatives", "unlabelled"):
                compared += 1
                if a.get("score", {}).get(part) != b.get("score", {}).get(part):
                    mismatches.append(f"{day} score {part} differ")
    return {
        "windows": len(monitor),
        "histograms_compared": compared,
        "rows": sum(w["rows"] for w in monitor.values()),
        "mismatches": mismatches[:10],
        "equal": not mismatches,
    }


# --------------------------------------------------------------------------- summaries


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return {"status": runs[0]["status"] if runs else "skipped"}
    return {
        "status": "ok" if len(ok) == len(runs) else "partial",
        "wall": spread([r["seconds"] for r in ok]),
        "cpu": spread([r["cpu"] for r in ok]),
        "peak_rss_mb": spread([r["peak_rss_mb"] for r in ok]),
        "extra_rss_mb": spread([r["peak_rss_mb"] - r["rss_loaded_mb"] for r in ok]),
        "process_seconds": spread([r["process_seconds"] for r in ok]),
        "loadavg_1min": spread([r["loadavg_1min_before"] for r in ok]),
    }


def ratios(entry: dict[str, Any]) -> dict[str, Any]:
    """Monitor / floor at one size, once their outputs were checked equal: medians of wall time, wall
    time paired run by run (A B B A: each monitor with the floor next to it), and CPU time (the
    floor's two threads lose more wall time than the monitor's mostly single-threaded Python when
    the machine is busy)."""
    m, f = entry["methods"].get("monitor", {}), entry["methods"].get("floor", {})
    if not entry["equality"]["equal"] or "wall" not in m or "wall" not in f:
        return {}
    ok = [r for r in entry["runs"] if r["status"] == "ok"]
    monitors = [r["seconds"] for r in ok if r["method"] == "monitor"]
    floors = [r["seconds"] for r in ok if r["method"] == "floor"]
    # pairs in run order: (A, B), (B, A), ... each monitor with the floor run next to it
    return {
        "monitor_over_floor": m["wall"]["median"] / f["wall"]["median"],
        "monitor_over_floor_paired": spread([a / b for a, b in zip(monitors, floors, strict=False)]),
        "monitor_over_floor_cpu": m["cpu"]["median"] / f["cpu"]["median"],
    }


def slope(sizes: list[int], values: list[float]) -> float | None:
    """Least-squares slope of log(value) against log(size): 1.0 is linear, 0.0 flat."""
    if len(sizes) < 2:
        return None
    xs, ys = [math.log(s) for s in sizes], [math.log(v) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def linear_fit(sizes: list[int], values: list[float]) -> dict[str, float] | None:
    """``value = fixed + per_million * N / 1e6`` by least squares, with R^2."""
    if len(sizes) < 2:
        return None
    xs = [s / 1e6 for s in sizes]
    mx, my = statistics.fmean(xs), statistics.fmean(values)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, values, strict=True)) / sxx
    a = my - b * mx
    total = sum((y - my) ** 2 for y in values)
    residual = sum((y - a - b * x) ** 2 for x, y in zip(xs, values, strict=True))
    return {"fixed_seconds": a, "seconds_per_million": b, "r2": 1 - residual / total if total else 1.0}


def scaling(per_size: dict[str, Any]) -> dict[str, Any]:
    """Time against N and peak memory across sizes, per method; and the targets' verdicts."""
    out: dict[str, Any] = {}
    for method in METHOD_ARGS:
        points = [
            (int(size), r["methods"][method])
            for size, r in per_size.items()
            if r["methods"].get(method, {}).get("status") in ("ok", "partial")
        ]
        if len(points) < 2:
            continue
        sizes = [n for n, _ in points]
        walls = [s["wall"]["median"] for _, s in points]
        cpus = [s["cpu"]["median"] for _, s in points]
        rss = [s["peak_rss_mb"]["max"] for _, s in points]
        out[method] = {
            "sizes": sizes,
            "wall_median": walls,
            "cpu_median": cpus,
            "peak_rss_mb": rss,
            "time_loglog_slope": slope(sizes, walls),
            # between each size and the next: a fixed cost shows below 1 at the small end, a
            # superlinear part above 1 at the large end
            "time_step_slopes": [slope(sizes[i : i + 2], walls[i : i + 2]) for i in range(len(sizes) - 1)],
            "cpu_step_slopes": [slope(sizes[i : i + 2], cpus[i : i + 2]) for i in range(len(sizes) - 1)],
            "time_linear_fit": linear_fit(sizes, walls),
            "rss_loglog_slope": slope(sizes, rss),
            "rss_largest_over_smallest": rss[-1] / rss[0],
            "seconds_per_million": [w / (n / 1e6) for n, w in zip(sizes, walls, strict=True)],
        }
    monitor = out.get("monitor")
    if monitor:
        ratios = [r.get("monitor_over_floor") for r in per_size.values()]
        fit = monitor["time_linear_fit"]
        out["targets"] = {
            "flat_memory": monitor["rss_largest_over_smallest"] <= FLAT_RSS,
            "linear_time": fit is not None
            and fit["r2"] >= LINEAR_R2
            and fit["seconds_per_million"] > 0
            and all(step <= MAX_STEP_SLOPE for step in monitor["time_step_slopes"]),
            "within_1_5x_of_floor": all(r is not None and r <= TARGET_RATIO for r in ratios),
            "criteria": (
                f"flat: peak RSS at the largest size <= {FLAT_RSS}x the smallest's; linear: wall time = "
                f"fixed + per-event cost with R^2 >= {LINEAR_R2}, and no log-log slope above "
                f"{MAX_STEP_SLOPE} from one size to the next (a fixed part lowers the slope over all "
                f"sizes; only a step above it is superlinear); floor: median wall / floor's median wall "
                f"<= {TARGET_RATIO} at every size"
            ),
        }
    return out


# --------------------------------------------------------------------------- report


def _cell(s: dict[str, float], digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def print_summary(result: dict[str, Any]) -> None:
    print(
        "\nsize | monitor wall s median (min-max) | CPU s | peak RSS MB | floor wall s | floor peak RSS MB "
        "| monitor / floor (CPU) | equal | load"
    )
    for size, r in result["sizes"].items():
        m, f = r["methods"].get("monitor", {}), r["methods"].get("floor", {})
        if m.get("status") not in ("ok", "partial") or f.get("status") not in ("ok", "partial"):
            print(f"{int(size):,} | monitor {m.get('status')} | floor {f.get('status')}")
            continue
        ratio, cpu_ratio = r.get("monitor_over_floor"), r.get("monitor_over_floor_cpu")
        loads = [x["loadavg_1min_before"] for x in r["runs"]]
        print(
            f"{int(size):,} | {_cell(m['wall'])} | {m['cpu']['median']:.1f} | {m['peak_rss_mb']['max']:.0f} "
            f"| {_cell(f['wall'])} | {f['peak_rss_mb']['max']:.0f} "
            f"| {'-' if ratio is None else f'{ratio:.2f}x ({cpu_ratio:.2f}x)'} "
            f"| {'yes' if r['equality']['equal'] else 'NO'} "
            f"| {min(loads):.1f}-{max(loads):.1f}"
        )
    for size, r in result["sizes"].items():
        diag = {k: v for k, v in r["methods"].items() if k not in METHODS and v.get("status") == "ok"}
        if diag:
            print(
                f"  {int(size):,} diagnostics: "
                + "; ".join(
                    f"{k} {v['wall']['median']:.2f} s, peak RSS {v['peak_rss_mb']['max']:.0f} MB"
                    for k, v in diag.items()
                )
            )
        if not r["equality"]["equal"]:
            print(f"  {int(size):,} mismatches: " + "; ".join(r["equality"]["mismatches"]))
    sc = result["scaling"]
    for method, s in sc.items():
        if method == "targets":
            continue
        fit = s["time_linear_fit"]
        print(
            f"{method}: time log-log slope {s['time_loglog_slope']:.2f} (size to size "
            + ", ".join(f"{x:.2f}" for x in s["time_step_slopes"])
            + "; CPU "
            + ", ".join(f"{x:.2f}" for x in s["cpu_step_slopes"])
            + ") "
            f"({fit['fixed_seconds']:.2f} s + {fit['seconds_per_million']:.2f} s per million events, "
            f"R^2 {fit['r2']:.3f}); peak RSS log-log slope {s['rss_loglog_slope']:.2f}, largest / smallest "
            f"{s['rss_largest_over_smallest']:.2f}"
        )
    targets = sc.get("targets")
    if targets:
        print(
            "targets: "
            + ", ".join(
                f"{label} {'met' if targets[k] else 'NOT met'}"
                for k, label in (
                    ("flat_memory", "flat memory"),
                    ("linear_time", "linear time"),
                    ("within_1_5x_of_floor", f"within {TARGET_RATIO}x of the floor"),
                )
            )
            + f"  ({targets['criteria']})"
        )
    prof = result.get("profile") or {}
    if prof.get("status") == "ok":
        print(
            f"\nprofile of the monitor at {int(prof['size']):,} events "
            f"({prof['seconds']:.1f} s under pyinstrument):"
        )
        for part, seconds in sorted(prof["inclusive"].items(), key=lambda kv: -kv[1]):
            if seconds > 0:
                print(f"  {seconds:7.2f} s  {part}")
        print("  top self time:")
        for item in prof["top_self"][:8]:
            print(f"  {item['seconds']:7.2f} s  {item['frame']}")
    elif prof:
        print(f"\nprofile: {prof.get('status')}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--sizes", default=None, help="events, comma-separated (default 1M,10M,100M)")
    p.add_argument(
        "--repeat", type=int, default=None, help="runs of each method per size (default 2: A B B A)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=DATA, help="where the projects are cached")
    p.add_argument("--rebuild", action="store_true", help="build the project and every size again")
    p.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per child process")
    p.add_argument(
        "--diagnostics",
        default=",".join(DIAGNOSTICS),
        help=f"variants run once per size, comma-separated ('' for none; default {','.join(DIAGNOSTICS)})",
    )
    p.add_argument(
        "--diagnostic-sizes",
        default=None,
        help="the sizes at which the diagnostics run, comma-separated (default: every size)",
    )
    p.add_argument("--no-profile", action="store_true")
    p.add_argument(
        "--profile-size", type=int, default=None, help="default: 10M if measured, else the largest"
    )
    p.add_argument("--quick", action="store_true", help="CI: 30k and 90k events, A B, seconds")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (QUICK_SIZES if args.quick else SIZES)
    repeat = args.repeat or (1 if args.quick else 2)
    diagnostics = [d for d in args.diagnostics.split(",") if d]
    unknown = sorted(set(diagnostics) - set(DIAGNOSTICS))
    if unknown:
        raise SystemExit(f"unknown diagnostics {unknown}; choose from {', '.join(DIAGNOSTICS)}")
    diagnostic_sizes = set(sizes)
    if args.diagnostic_sizes is not None:
        diagnostic_sizes = {int(s) for s in args.diagnostic_sizes.split(",") if s}
    folder = args.data / f"monitor_scaling-f{FORMAT}-s{args.seed}"
    info = machine(PACKAGES) | {"loadavg_start": os.getloadavg()}
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "monitor_scaling",
        "date": dt.date.today().isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": info,
        "sizes_requested": sizes,
        "repeat": repeat,
        "diagnostics": diagnostics,
        "diagnostic_sizes": sorted(diagnostic_sizes),
        "build": build_base(folder, args.seed, args.rebuild, args.timeout),
        "sizes": {},
    }
    logs = folder / f"logs-{dt.datetime.now():%Y%m%d-%H%M%S}"
    logs.mkdir(parents=True)
    for size in sizes:
        root, filled = build_size(folder, size, args.seed, args.timeout)
        print(
            f"{size:,} events: {filled['event_files']} event files, {filled['label_files']} label files, "
            f"{filled['bytes'] / 1e9:.2f} GB (generated in {filled['generate_seconds']:.1f} s"
            f"{', cached' if filled.get('reused') else ''})",
            flush=True,
        )
        runs: list[dict[str, Any]] = []
        outputs: dict[str, Path] = {}
        plan = []
        for rep in range(repeat):
            # A B B A ...: each size starts with the other method in turn, so drift in load cancels out
            order = METHODS if (rep + sizes.index(size)) % 2 == 0 else METHODS[::-1]
            plan += [(method, rep) for method in order]
        if size in diagnostic_sizes:
            plan += [(method, 0) for method in diagnostics]
        for method, rep in plan:
            out = logs / f"{method}-{size}-{rep}.json"
            run = measure(root, method, out, logs / f"{method}-{size}-{rep}.log", args.timeout)
            runs.append(run | {"rep": rep})
            if run["status"] != "ok":
                print(f"  {method}: {run['status']}\n    " + run.get("error", "").replace("\n", "\n    "))
                continue
            outputs.setdefault(method, out)
            print(
                f"  {method:20s} {run['seconds']:8.2f} s  CPU {run['cpu']:7.1f} s  "
                f"peak RSS {run['peak_rss_mb']:6.0f} MB  (load {run['loadavg_1min_before']:.2f}"
                f"{'; diagnostic' if method in DIAGNOSTICS else ''})",
                flush=True,
            )
        entry: dict[str, Any] = {"fill": filled, "runs": runs}
        entry["methods"] = {
            m: summarise([r for r in runs if r["method"] == m])
            for m in dict.fromkeys(r["method"] for r in runs)
        }
        if "monitor" in outputs and "floor" in outputs:
            reference = json.loads(outputs["monitor"].read_text())
            entry["equality"] = compare(reference, json.loads(outputs["floor"].read_text()))
            for method in DIAGNOSTICS:  # floor-no-labels: the same histograms but the score's (no labels)
                if method in outputs:
                    entry[f"equality_{method}"] = compare(
                        reference, json.loads(outputs[method].read_text()), scores=method != "floor-no-labels"
                    )
        else:
            entry["equality"] = {"equal": False, "mismatches": ["a method failed"]}
        entry.update(ratios(entry))
        result["sizes"][str(size)] = entry
        print(
            f"  equal: {entry['equality']['equal']} "
            f"({entry['equality'].get('histograms_compared', 0)} histograms "
            f"in {entry['equality'].get('windows', 0)} windows)"
            + (
                f"; monitor / floor {entry['monitor_over_floor']:.2f}x"
                if "monitor_over_floor" in entry
                else ""
            ),
            flush=True,
        )
    result["scaling"] = scaling(result["sizes"])
    if not args.no_profile:
        measured = [
            s for s in sizes if result["sizes"][str(s)]["methods"].get("monitor", {}).get("status") == "ok"
        ]
        size = args.profile_size or (10_000_000 if 10_000_000 in measured else (measured or sizes)[-1])
        root, _ = build_size(folder, size, args.seed, args.timeout)
        print(f"profiling the monitor at {size:,} events ...", flush=True)
        profile_txt = logs / f"profile-{size}.txt"
        result["profile"] = run_child(
            ["profile", str(root), "--out", str(profile_txt)], logs / f"profile-{size}.log", args.timeout
        ) | {"size": size}
        if result["profile"].get("status") == "ok":
            result["profile"]["text"] = profile_txt.read_text()
    info["loadavg_end"] = os.getloadavg()
    result["total_seconds"] = time.perf_counter() - started
    print_summary(result)
    print(f"\nload average at start {info['loadavg_start']}, at end {info['loadavg_end']}; logs in {logs}")
    write_results(result, args.json, name="monitor_scaling", quick=args.quick)
    ok = all(r["equality"]["equal"] for r in result["sizes"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
