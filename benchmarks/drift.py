"""Drift report benchmark: fourloops ``fl.monitor`` against Evidently's default data-drift preset.

One command generates the data (once, seeded, cached in ``benchmarks/.data/``),
runs every system in its own child process on the same two Parquet files
(alternating the order across repetitions), checks the per-column statistics
and verdicts against each other and against an independent computation on the
raw values, and prints wall time, CPU time, peak and extra resident memory, and
ratios. All numbers also go to ``benchmarks/results/drift-<date>.json`` (``-2``, ``-3``... for
later runs the same day).

Systems
    evidently       ``Report([DataDriftPreset()]).run(current, reference)`` on the two files
                    read with ``pd.read_parquet`` (``benchmarks/.venv-evidently``); the preset's
                    defaults choose the test per column
    fourloops       ``fl.monitor(reference_path, current_path, multivariate=False)``
    fourloops-mv    ``fl.monitor(reference_path, current_path)`` (default: with the domain
                    classifier)
    (fourloops-wjs  ``fl.monitor(..., multivariate=False, methods=["wasserstein",
                    "jensen_shannon"])``, once per size after the first fourloops run's
                    measurements, untimed: for the equality check only)

Data (seeded): 25 columns on each side. 18 numeric (normal, lognormal, integer
counts, uniform, exponential, Student t, a bimodal mixture, rounded prices, a
beta share; three with nulls), 7 categorical (3 to 50 categories, Zipf-like
shares, one with nulls). The current data shifts six numeric and two
categorical columns (one with a category the reference never had), one of them
tiny on purpose (n2, +0.03 sd: significant at these sizes, negligible); see
``COLUMNS``.

Run (from the repository root)::

    .venv/bin/python benchmarks/drift.py                          # 200k and 1M rows a side, 3 reps
    .venv/bin/python benchmarks/drift.py --sizes 200000 --repeat 5
    .venv/bin/python benchmarks/drift.py --quick                  # CI: 2k rows, 1 rep, seconds

Evidently runs in its own virtual environment (never a project dependency)::

    python3 -m venv benchmarks/.venv-evidently
    benchmarks/.venv-evidently/bin/pip install evidently 'pandas<3'

(Evidently 0.7.23 does not import with pandas 3: ``infer_dtype_from_object`` is
gone.) Without it the peer is skipped with a message; fourloops still runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _child_process import run_measured
from _results import machine as shared_machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
RESULTS = HERE / "results"
EVIDENTLY_VENV = HERE / ".venv-evidently"
EVIDENTLY_PYTHON = EVIDENTLY_VENV / "bin" / "python"
CHILD = HERE / "_drift_child.py"

SYSTEMS = ["evidently", "fourloops", "fourloops-mv"]
#: fourloops' Jensen–Shannon is in base 2, Evidently's (scipy's default) in base e:
#: d_e = sqrt(ln 2) * d_2.
JS_E_PER_2 = math.sqrt(math.log(2))
#: Categorical Jensen–Shannon on the raw categories: both count the same categories.
JS_TOLERANCE = 1e-9

Rng = np.random.Generator


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Column:
    """One generated column: how the reference draws it, how the current one differs."""

    name: str
    kind: str  # "numeric" or "categorical"
    draw: Callable[[Rng, int, bool], np.ndarray]  # (rng, rows, shifted) -> values
    nulls: float = 0.0
    shift: str = ""  # what changes in the current data ("" = nothing)


def _cats(prefix: str, k: int, a: float = 1.1) -> tuple[list[str], np.ndarray]:
    names = [f"{prefix}_{i:02d}" for i in range(k)]
    p = 1.0 / np.arange(1, k + 1) ** a
    return names, p / p.sum()


def _categorical(prefix: str, k: int, shifted_p: np.ndarray | None = None, new: float = 0.0) -> Callable:
    names, p = _cats(prefix, k)

    def draw(rng: Rng, n: int, shifted: bool) -> np.ndarray:
        if not shifted:
            return rng.choice(np.array(names, dtype=object), size=n, p=p)
        q = shifted_p if shifted_p is not None else p
        if new:
            q = np.append(q * (1 - new), new)
            return rng.choice(np.array([*names, f"{prefix}_new"], dtype=object), size=n, p=q)
        return rng.choice(np.array(names, dtype=object), size=n, p=q)

    return draw


def _k5_shifted() -> np.ndarray:
    _, p = _cats("k5", 5)
    q = p.copy()
    q[0] -= 0.08
    q[3] += 0.05
    q[4] += 0.03
    return q


def _bimodal(rng: Rng, n: int, shifted: bool) -> np.ndarray:
    w = 0.4 if shifted else 0.3
    second = rng.random(n) < w
    return np.where(second, rng.normal(4, 1, n), rng.normal(0, 1, n))


COLUMNS: list[Column] = [
    Column("n0", "numeric", lambda r, n, s: r.normal(0.25 if s else 0.0, 1.0, n), shift="mean +0.25 sd"),
    Column("n1", "numeric", lambda r, n, s: r.normal(50, 10, n), nulls=0.05),
    Column(
        "n2",
        "numeric",
        lambda r, n, s: r.normal(-3 + (0.06 if s else 0.0), 2, n),
        shift="mean +0.03 sd (tiny)",
    ),
    Column("n3", "numeric", lambda r, n, s: r.normal(0, 1.15 if s else 1.0, n), shift="sd x1.15"),
    Column("n4", "numeric", lambda r, n, s: r.normal(100, 15, n)),
    Column(
        "l0",
        "numeric",
        lambda r, n, s: r.lognormal(0.1 if s else 0.0, 0.75, n),
        shift="lognormal mu +0.1 (x1.105)",
    ),
    Column("l1", "numeric", lambda r, n, s: r.lognormal(3, 1, n), nulls=0.20),
    Column("l2", "numeric", lambda r, n, s: r.lognormal(1, 0.5, n)),
    Column("c0", "numeric", lambda r, n, s: r.poisson(33 if s else 30, n), shift="Poisson 30 -> 33"),
    Column("c1", "numeric", lambda r, n, s: r.negative_binomial(5, 0.1, n), nulls=0.03),
    Column("c2", "numeric", lambda r, n, s: r.poisson(200, n)),
    Column("c3", "numeric", lambda r, n, s: r.binomial(8, 0.3, n)),
    Column("u0", "numeric", lambda r, n, s: r.random(n)),
    Column("e0", "numeric", lambda r, n, s: r.exponential(2, n)),
    Column("t0", "numeric", lambda r, n, s: r.standard_t(3, n)),
    Column("b0", "numeric", _bimodal, shift="mixture 70/30 -> 60/40"),
    Column("p0", "numeric", lambda r, n, s: np.round(r.lognormal(3, 0.6, n), 2)),
    Column("s0", "numeric", lambda r, n, s: r.beta(2, 5, n)),
    Column("k3", "categorical", _categorical("k3", 3)),
    Column(
        "k5", "categorical", _categorical("k5", 5, _k5_shifted()), shift="shares: top -8 pt, two rare +5/+3"
    ),
    Column("k8", "categorical", _categorical("k8", 8), nulls=0.10),
    Column("k12", "categorical", _categorical("k12", 12)),
    Column("k20", "categorical", _categorical("k20", 20)),
    Column("k30", "categorical", _categorical("k30", 30, new=0.03), shift="a new category, 3 %"),
    Column("k50", "categorical", _categorical("k50", 50)),
]
INTEGER = {"c0", "c1", "c2", "c3"}


def make_side(path: Path, rows: int, seed: int, shifted: bool) -> None:
    rng = np.random.default_rng([seed, rows, int(shifted)])
    arrays: dict[str, pa.Array] = {}
    for col in COLUMNS:
        values = col.draw(rng, rows, shifted)
        mask = rng.random(rows) < col.nulls if col.nulls else None
        if col.kind == "categorical":
            arrays[col.name] = pa.array(values, type=pa.string(), mask=mask)
        elif col.name in INTEGER:
            arrays[col.name] = pa.array(values.astype(np.int64), mask=mask)
        else:
            arrays[col.name] = pa.array(values.astype(np.float64), mask=mask)
    pq.write_table(pa.table(arrays), path)


def prepare(data: Path, sizes: list[int], seed: int) -> dict[int, tuple[Path, Path]]:
    data.mkdir(parents=True, exist_ok=True)
    out = {}
    for size in sizes:
        ref = data / f"drift-ref-{size}-s{seed}.parquet"
        cur = data / f"drift-cur-{size}-s{seed}.parquet"
        for path, shifted in ((ref, False), (cur, True)):
            if not path.exists():
                started = time.perf_counter()
                make_side(path, size, seed, shifted)
                print(f"  wrote {path.name} ({time.perf_counter() - started:.1f} s)")
        out[size] = (ref, cur)
    return out


# --------------------------------------------------------------------------- independent statistics


def js_base2(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance in base 2 of two count vectors (plain formula, not fourloops')."""
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def exact(ref_path: Path, cur_path: Path) -> dict[str, dict[str, float]]:
    """On the raw values (nulls dropped): normed Wasserstein (scipy) and raw-value Jensen–Shannon."""
    from scipy import stats

    ref, cur = pq.read_table(ref_path), pq.read_table(cur_path)
    out: dict[str, dict[str, float]] = {}
    for col in COLUMNS:
        r, c = ref.column(col.name).drop_null(), cur.column(col.name).drop_null()
        entry: dict[str, float] = {}
        if col.kind == "numeric":
            rv, cv = r.to_numpy().astype(float), c.to_numpy().astype(float)
            entry["wasserstein"] = float(stats.wasserstein_distance(rv, cv) / max(float(np.std(rv)), 1e-3))
        # Jensen–Shannon on the raw values (categories, or the distinct numbers of a count column)
        if col.kind == "categorical" or col.name == "c3":
            rc = r.value_counts().to_pylist()
            cc = cur.column(col.name).drop_null().value_counts().to_pylist()
            keys = sorted({str(d["values"]) for d in rc} | {str(d["values"]) for d in cc})
            rmap = {str(d["values"]): d["counts"] for d in rc}
            cmap = {str(d["values"]): d["counts"] for d in cc}
            entry["js_raw_base2"] = js_base2(
                np.array([rmap.get(k, 0) for k in keys], float),
                np.array([cmap.get(k, 0) for k in keys], float),
            )
        out[col.name] = entry
    return out


# --------------------------------------------------------------------------- runs


def source_hash() -> str:
    """Hash of the fourloops sources the monitor uses (another engineer may change them mid-run)."""
    digest = hashlib.sha256()
    for folder in ("evaluation", "engines"):
        for path in sorted((ROOT / "src" / "fourloops" / folder).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def run_child(
    system: str, ref: Path, cur: Path, detail: Path, timeout: float, work: Path, equality: bool = False
) -> dict:
    """One system in a fresh process; its own measurements come back on the last stdout line.

    With ``equality`` (fourloops only), the child also runs fourloops with Evidently's two
    statistics after its measurements are taken (see ``_drift_child.py``).
    """
    python = str(EVIDENTLY_PYTHON) if system == "evidently" else sys.executable
    command = [
        python,
        str(CHILD),
        system,
        str(ref),
        str(cur),
        str(detail),
        *(["--equality"] if equality else []),
    ]
    return run_measured(command, work / f"{system}.log", timeout, cwd=ROOT)


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
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in ok),
        "extra_rss_mb": statistics.median(r["extra_rss_mb"] for r in ok),
        "setup_median": statistics.median(r["setup"] for r in ok),
        **(
            {
                "load_seconds_median": statistics.median(r["load_seconds"] for r in ok),
                "rss_after_load_mb_median": statistics.median(r["rss_after_load_mb"] for r in ok),
            }
            if "load_seconds" in ok[0]
            else {}
        ),
    }


# --------------------------------------------------------------------------- equality


def run_wjs(ref: Path, cur: Path) -> dict:
    """fourloops with Evidently's two statistics: ``methods=["wasserstein", "jensen_shannon"]``."""
    from _drift_child import fourloops_columns

    import fourloops as fl

    result = fl.monitor(str(ref), str(cur), multivariate=False, methods=["wasserstein", "jensen_shannon"])
    return fourloops_columns(result.to_dict())


def compare(ev: dict | None, fl_default: dict | None, fl_wjs: dict, raw: dict) -> dict:
    """Per column: Evidently's score against fourloops' same statistic and the raw-value computation."""
    rows: list[dict[str, Any]] = []
    for col in COLUMNS:
        w = fl_wjs["columns"][col.name]["methods"]
        row: dict[str, Any] = {"column": col.name, "kind": col.kind, "shift": col.shift}
        row["fl_wasserstein"] = w.get("wasserstein", {}).get("statistic")
        row["fl_js_base2"] = w.get("jensen_shannon", {}).get("statistic")
        row["raw_wasserstein"] = raw[col.name].get("wasserstein")
        row["raw_js_base2"] = raw[col.name].get("js_raw_base2")
        if row["fl_wasserstein"] is not None and row["raw_wasserstein"] is not None:
            row["fl_minus_raw_wasserstein"] = row["fl_wasserstein"] - row["raw_wasserstein"]
        if ev is not None and col.name in ev["columns"]:
            e = ev["columns"][col.name]
            row["ev_method"], row["ev_score"] = e["method"], e["score"]
            row["ev_threshold"], row["ev_drifted"] = e["threshold"], e["drifted"]
            if e["method"].startswith("Wasserstein"):
                row["compared"] = "wasserstein"
                row["ev_in_fl_units"] = e["score"]
                row["fl_same_stat"] = row["fl_wasserstein"]
                row["ev_minus_raw"] = e["score"] - (row["raw_wasserstein"] or math.nan)
            elif e["method"].startswith("Jensen"):
                row["compared"] = "jensen_shannon"
                row["ev_in_fl_units"] = e["score"] / JS_E_PER_2
                row["fl_same_stat"] = row["fl_js_base2"]
                if row["raw_js_base2"] is not None:
                    row["ev_minus_raw"] = row["ev_in_fl_units"] - row["raw_js_base2"]
            if row.get("fl_same_stat") is not None and "ev_in_fl_units" in row:
                row["abs_diff"] = abs(row["fl_same_stat"] - row["ev_in_fl_units"])
                row["same_binning"] = col.kind == "categorical"
        if fl_default is not None:
            d = fl_default["columns"][col.name]
            row["fl_method"], row["fl_drifted"] = d["method"], d["drifted"]
            row["fl_effect"], row["fl_p_adjusted"] = d["effect"], d["p_adjusted"]
            row["fl_floor"], row["fl_negligible"] = d["threshold"], d["negligible"]
        x = fl_wjs["columns"][col.name]
        row["wjs_method"], row["wjs_drifted"], row["wjs_negligible"] = (
            x["method"],
            x["drifted"],
            x["negligible"],
        )
        row["wjs_effect"], row["wjs_p_adjusted"] = x["effect"], x["p_adjusted"]
        rows.append(row)
    summary: dict[str, Any] = {"columns": rows}
    diffs = [r for r in rows if "abs_diff" in r]
    if diffs:
        cat = [r["abs_diff"] for r in diffs if r["same_binning"]]
        num = [r["abs_diff"] for r in diffs if r["compared"] == "wasserstein"]
        other = [r["abs_diff"] for r in diffs if not r["same_binning"] and r["compared"] != "wasserstein"]
        summary["max_abs_diff"] = max(r["abs_diff"] for r in diffs)
        summary["max_abs_diff_js_categorical"] = max(cat) if cat else None
        summary["max_abs_diff_wasserstein"] = max(num) if num else None
        summary["max_abs_diff_js_numeric_binned"] = max(other) if other else None
        rel = [
            r["abs_diff"] / r["ev_in_fl_units"]
            for r in diffs
            if r["compared"] == "wasserstein" and r["ev_in_fl_units"] >= 0.05
        ]
        summary["max_rel_diff_wasserstein"] = max(rel) if rel else None
        summary["js_categorical_equal"] = all(d <= JS_TOLERANCE for d in cat)
        evr = [
            abs(r["ev_minus_raw"]) for r in diffs if "ev_minus_raw" in r and not math.isnan(r["ev_minus_raw"])
        ]
        summary["max_abs_evidently_minus_raw"] = max(evr) if evr else None
    return summary


def verdict_reason(row: dict[str, Any], which: str) -> str:
    """Why fourloops' verdict (``which``: the default run ``fl`` or the W/JS run ``wjs``) differs."""
    drifted, effect = row[f"{which}_drifted"], row[f"{which}_effect"]
    p_adj = row[f"{which}_p_adjusted"]
    floor = row.get("fl_floor") if which == "fl" else (0.1 if row["wjs_method"] else None)
    method = row[f"{which}_method"]
    if row.get("ev_drifted") and not drifted:
        if p_adj is not None and p_adj <= 0.05:
            return (
                f"fourloops {method}: significant (p_adj {p_adj:.2g}) but effect {effect:.3f} below "
                f"its floor {floor}; Evidently's {row['ev_score']:.3f} >= {row['ev_threshold']}"
            )
        return f"fourloops {method}: not significant (p_adj {p_adj:.2g})"
    return (
        f"fourloops {method}: effect {effect:.3f} >= floor {floor}, p_adj {p_adj:.2g}; Evidently's "
        f"{row.get('ev_method')} {row.get('ev_score', math.nan):.3f} < threshold {row.get('ev_threshold')}"
    )


# --------------------------------------------------------------------------- report


def machine(evidently: bool) -> dict:
    info = shared_machine(("fourloops", "duckdb", "pyarrow", "numpy", "polars", "lightgbm", "scipy"))
    if evidently:
        code = (
            "import importlib.metadata as m, json, platform\n"
            "v = {}\n"
            "for n in ['evidently', 'pandas', 'numpy', 'scipy', 'pyarrow']:\n"
            "    try:\n        v[n] = m.version(n)\n"
            "    except m.PackageNotFoundError:\n        pass\n"
            "v['python'] = platform.python_version(); print(json.dumps(v))"
        )
        done = subprocess.run([str(EVIDENTLY_PYTHON), "-c", code], capture_output=True, text=True)
        info["evidently_venv"] = json.loads(done.stdout) if done.returncode == 0 else done.stderr[-300:]
    return info


def print_table(results: dict, sizes: list[int], systems: list[str]) -> None:
    head = (
        f"{'rows/side':>10} {'system':<13} {'wall s median (min-max)':>26} {'CPU s':>7} {'peak RSS MB':>11} "
        f"{'extra MB':>9} {'x fourloops wall':>16} {'x fl extra mem':>14} {'setup s':>8}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for size in sizes:
        entry = results[str(size)]["systems"]
        fl = entry.get("fourloops", {}).get("summary", {})
        for system in systems:
            s = entry.get(system, {}).get("summary", {"status": "skipped"})
            if s.get("status") not in ("ok", "partial"):
                print(f"{size:>10,} {system:<13} {s.get('status', 'skipped'):>26}")
                continue
            wall = f"{s['wall_median']:.2f} ({s['wall_min']:.2f}-{s['wall_max']:.2f})"
            ratio = f"{s['wall_median'] / fl['wall_median']:.1f}" if fl.get("wall_median") else "-"
            mem = f"{s['extra_rss_mb'] / fl['extra_rss_mb']:.1f}" if fl.get("extra_rss_mb") else "-"
            print(
                f"{size:>10,} {system:<13} {wall:>26} {s['cpu_median']:>7.2f} {s['peak_rss_mb']:>11.0f} "
                f"{s['extra_rss_mb']:>9.0f} {ratio:>16} {mem:>14} {s['setup_median']:>8.2f}"
            )
    for size in sizes:
        ev = results[str(size)]["systems"].get("evidently", {}).get("summary", {})
        if "load_seconds_median" in ev:
            print(
                f"{size:>10,} evidently: of which pd.read_parquet of both files "
                f"{ev['load_seconds_median']:.2f} s; resident after reading them "
                f"{ev['rss_after_load_mb_median']:.0f} MB"
            )
    print(
        "\nwall and CPU: the timed section in the child (read both files, compute, to a dict); 'setup s' =\n"
        "imports, timed apart. peak RSS = the child's VmHWM; extra = peak minus the resident size after\n"
        "imports. 'x fourloops' = system / fourloops (multivariate=False); > 1: fourloops is faster/smaller."
    )


def print_equality(size: int, eq: dict) -> None:
    print(
        f"\nEquality at {size:,} rows a side "
        "(fourloops methods=['wasserstein','jensen_shannon'] vs Evidently):"
    )
    head = (
        f"{'col':<5} {'Evidently test':<30} {'Ev score':>9} {'Ev in fl units':>14} {'fourloops':>10} "
        f"{'|diff|':>9} {'raw values':>10} {'Ev drift':>8} {'fl drift':>8} {'fl W/JS':>7}"
    )
    print(head + "\n" + "-" * len(head))
    for r in eq["columns"]:
        raw = r["raw_wasserstein"] if r.get("compared") == "wasserstein" else r.get("raw_js_base2")
        cells = [
            f"{r['column']:<5}",
            f"{r.get('ev_method', '-'):<30}",
            f"{r['ev_score']:>9.5f}" if "ev_score" in r else f"{'-':>9}",
            f"{r['ev_in_fl_units']:>14.5f}" if "ev_in_fl_units" in r else f"{'-':>14}",
            f"{r['fl_same_stat']:>10.5f}"
            if r.get("fl_same_stat") is not None
            else f"{r['fl_wasserstein'] or 0:>10.5f}",
            f"{r['abs_diff']:>9.2e}" if "abs_diff" in r else f"{'-':>9}",
            f"{raw:>10.5f}" if raw is not None else f"{'-':>10}",
            f"{str(r.get('ev_drifted', '-')):>8}",
            f"{str(r.get('fl_drifted', '-')):>8}",
            f"{str(r['wjs_drifted']):>7}",
        ]
        print(" ".join(cells))
    if "max_abs_diff" in eq:

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.2e}"

        print(
            f"max |diff|: categorical Jensen-Shannon {fmt(eq['max_abs_diff_js_categorical'])} (tolerance "
            f"{JS_TOLERANCE:g}: {'equal' if eq['js_categorical_equal'] else 'NOT equal'}); "
            "normed Wasserstein "
            f"{fmt(eq['max_abs_diff_wasserstein'])} (relative {fmt(eq['max_rel_diff_wasserstein'])}); "
            f"Jensen-Shannon of a count column Evidently calls categorical "
            f"{fmt(eq['max_abs_diff_js_numeric_binned'])}; Evidently vs raw values "
            f"{fmt(eq['max_abs_evidently_minus_raw'])}"
        )
    for which, label in (("fl", "fourloops default (ks/chi2)"), ("wjs", "fourloops W/JS")):
        differ = [
            r
            for r in eq["columns"]
            if "ev_drifted" in r and f"{which}_drifted" in r and r["ev_drifted"] != r[f"{which}_drifted"]
        ]
        print(f"verdicts differing, Evidently vs {label}: {len(differ)}")
        for r in differ:
            print(
                f"  {r['column']} ({r['shift'] or 'no shift'}): Evidently {r['ev_drifted']}, fourloops "
                f"{r[f'{which}_drifted']}: {verdict_reason(r, which)}"
            )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--sizes", default="200000,1000000", help="rows on each side, comma separated")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"subset of {','.join(SYSTEMS)}")
    p.add_argument("--repeat", type=int, default=None, help="repetitions per system (default 3, --quick 1)")
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds per run before it counts as timeout"
    )
    p.add_argument("--quick", action="store_true", help="2,000 rows a side, 1 repetition (CI)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=DATA, help="where the generated data is cached")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write results (default: "
        "benchmarks/results/drift-<date>.json; --quick writes none unless given)",
    )
    args = p.parse_args(argv)
    args.sizes = [2_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.systems = [s for s in args.systems.split(",") if s]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        p.error(f"unknown systems {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = list(args.systems)
    if "evidently" in systems and not EVIDENTLY_PYTHON.exists():
        print(
            f"Evidently venv not found at {EVIDENTLY_VENV}: skipping evidently.\nCreate it with:\n"
            f"  python3 -m venv {EVIDENTLY_VENV}\n  {EVIDENTLY_VENV}/bin/pip install evidently 'pandas<3'\n"
        )
        systems.remove("evidently")
    load_start = os.getloadavg()
    info = machine(evidently="evidently" in systems)
    info["loadavg_start"] = load_start
    print("machine:", json.dumps(info))
    print(
        f"data: {len(COLUMNS)} columns ({sum(c.kind == 'numeric' for c in COLUMNS)} numeric); sizes "
        f"{args.sizes} rows a side; {args.repeat} repetition(s), order alternating; "
        f"timeout {args.timeout:.0f} s"
    )
    frames = prepare(args.data, args.sizes, args.seed)
    work = args.data / "work-drift"
    results: dict[str, Any] = {}
    hashes: set[str] = set()
    for size in args.sizes:
        ref, cur = frames[size]
        entry: dict[str, Any] = {"rows_per_side": size, "systems": {s: {"runs": []} for s in systems}}
        results[str(size)] = entry
        details: dict[str, dict] = {}
        for rep in range(args.repeat):
            order = systems if rep % 2 == 0 else systems[::-1]
            for system in order:
                runs = entry["systems"][system]["runs"]
                if runs and runs[-1]["status"] == "timeout":
                    continue
                detail = work / f"{system}-{size}.json"
                equality = system == "fourloops" and system not in details
                run = run_child(system, ref, cur, detail, args.timeout, work, equality)
                if system.startswith("fourloops"):
                    run["source_sha"] = source_hash()
                    hashes.add(run["source_sha"])
                runs.append(run)
                if run["status"] == "ok":
                    print(
                        f"  [{size:,} rep {rep + 1}] {system:<13} {run['seconds']:.2f} s wall, "
                        f"{run['cpu']:.2f} s CPU, peak RSS {run['peak_rss_mb']:.0f} MB "
                        f"(load {run['loadavg_1min_before']:.2f})",
                        flush=True,
                    )
                    if system not in details:
                        details[system] = json.loads(detail.read_text())
                        if "wjs" in details[system]:
                            details["fourloops-wjs"] = details[system].pop("wjs")
                            entry["fourloops_wjs_seconds"] = run["wjs_seconds"]
                else:
                    print(f"  [{size:,} rep {rep + 1}] {system:<13} {run['status']}", flush=True)
                    if run["status"] == "error":
                        print("    " + run["error"].replace("\n", "\n    "))
        for system in systems:
            entry["systems"][system]["summary"] = summarise(entry["systems"][system]["runs"])
        # equality: fourloops with Evidently's two statistics (from the first fourloops run, after its
        # measurements; here, untimed, when fourloops did not run) and the raw values
        if "fourloops-wjs" not in details:
            started = time.perf_counter()
            details["fourloops-wjs"] = run_wjs(ref, cur)
            entry["fourloops_wjs_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        raw = exact(ref, cur)
        entry["raw_seconds"] = time.perf_counter() - started
        eq = compare(details.get("evidently"), details.get("fourloops"), details["fourloops-wjs"], raw)
        entry["equality"] = eq
        if "evidently" in details:
            entry["evidently_tests"] = {c: v["method"] for c, v in details["evidently"]["columns"].items()}
            entry["evidently_drifted_count_reported"] = details["evidently"]["drifted_count_reported"]
        if "fourloops-mv" in details:
            entry["fourloops_mv_multivariate"] = details["fourloops-mv"]["multivariate"]
            entry["fourloops_mv_drifted"] = sorted(
                c for c, v in details["fourloops-mv"]["columns"].items() if v["drifted"]
            )
        print_equality(size, eq)
        if "fourloops-mv" in details and details["fourloops-mv"]["multivariate"]:
            mv = details["fourloops-mv"]["multivariate"]
            print(
                f"fourloops-mv domain classifier: AUC {mv['statistic']:.3f}, drifted {mv['drifted']}, "
                f"top features {mv['top_features']}"
            )
    if len(hashes) > 1:
        print(f"\nWARNING: the fourloops sources changed during this run ({sorted(hashes)}); rerun.")
    print_table(results, args.sizes, systems)
    info["loadavg_end"] = os.getloadavg()
    info["git_commit_end"] = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    info["source_sha"] = sorted(hashes)
    print(f"\nload average at start {load_start}, at end {info['loadavg_end']}")
    path = args.json
    if path is None and not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"drift-{dt.date.today().isoformat()}.json"
        rerun = 2
        while path.exists():  # a second run the same day keeps the first one's numbers
            path = RESULTS / f"drift-{dt.date.today().isoformat()}-{rerun}.json"
            rerun += 1
    if path is not None:
        command = "python benchmarks/drift.py " + " ".join(sys.argv[1:] if argv is None else argv)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "command": command.strip(),
                    "machine": info,
                    "columns": {
                        c.name: {"kind": c.kind, "nulls": c.nulls, "shift": c.shift} for c in COLUMNS
                    },
                    "results": results,
                },
                indent=2,
                default=str,
            )
        )
        print(f"wrote {path}")
    failed = [
        s
        for e in results.values()
        for s, v in e["systems"].items()
        if v["summary"].get("status") not in ("ok", "partial")
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
