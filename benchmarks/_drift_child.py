"""One timed drift report, run in its own process by ``benchmarks/drift.py``.

Not meant to be run by hand, but it can be::

    python benchmarks/_drift_child.py SYSTEM REFERENCE.parquet CURRENT.parquet OUT.json [--equality]

SYSTEM is ``evidently`` (run it with ``benchmarks/.venv-evidently``) or one of
``fourloops``, ``fourloops-mv``, ``fourloops-wjs`` (the project venv). Only the
chosen system's library is imported, so the same file works in both virtual
environments.

Timed, for every system: read both Parquet files, compute the drift report,
turn it into plain Python data (``Snapshot.dict()``, ``MonitorResult.to_dict()``).

* ``evidently``: ``pd.read_parquet`` of both files, ``Dataset.from_pandas(...,
  data_definition=DataDefinition())`` (column types inferred, as in Evidently's
  quickstart), ``Report([DataDriftPreset()]).run(current, reference)``,
  ``.dict()``.
* ``fourloops``: ``fl.monitor(reference_path, current_path, multivariate=False)``.
* ``fourloops-mv``: ``fl.monitor(reference_path, current_path)`` (the default:
  with the domain classifier).
* ``fourloops-wjs``: ``fl.monitor(..., multivariate=False,
  methods=["wasserstein", "jensen_shannon"])``: Evidently's two statistics, for
  the equality check.

Imports are timed apart ("setup"). Per-column results go to OUT.json (after the
timed section); the last line printed on stdout is a JSON object with the
measurements. With ``--equality`` (after OUT.json), the ``fourloops`` run also
runs ``fourloops-wjs`` after its measurements are taken and adds its columns to
OUT.json as ``wjs``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

#: Evidently's statistics that are distances (drift when score >= threshold); the others are
#: p-values (drift when p < threshold). From Evidently's documentation of its drift methods.
EVIDENTLY_DISTANCES = {
    "Wasserstein distance (normed)",
    "Jensen-Shannon distance",
    "PSI",
    "Kullback-Leibler divergence",
    "Hellinger distance (normed)",
    "Total-Variation-Distance",
    "Energy-distance",
}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_mb() -> float:
    """Resident memory now (VmRSS)."""
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM).

    ``getrusage(RUSAGE_SELF).ru_maxrss`` is not used: on Linux it survives
    ``execve`` and so starts at the parent's resident size at ``fork`` time.
    """
    import resource

    return max(_status_kb("VmHWM"), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


# --------------------------------------------------------------------------- evidently


def setup_evidently() -> dict[str, Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    return {
        "pd": pd,
        "DataDefinition": DataDefinition,
        "Dataset": Dataset,
        "Report": Report,
        "DataDriftPreset": DataDriftPreset,
    }


def run_evidently(mods: dict[str, Any], reference: str, current: str) -> tuple[Any, dict[str, float]]:
    pd = mods["pd"]
    t0 = time.perf_counter()
    ref_df = pd.read_parquet(reference)
    cur_df = pd.read_parquet(current)
    t1 = time.perf_counter()
    loaded = rss_mb()  # the two frames alone
    ref = mods["Dataset"].from_pandas(ref_df, data_definition=mods["DataDefinition"]())
    cur = mods["Dataset"].from_pandas(cur_df, data_definition=mods["DataDefinition"]())
    report = mods["Report"]([mods["DataDriftPreset"]()])
    snapshot = report.run(cur, ref)
    out = snapshot.dict()
    t2 = time.perf_counter()
    return out, {"load_seconds": t1 - t0, "compute_seconds": t2 - t1, "rss_after_load_mb": loaded}


def evidently_columns(out: dict[str, Any]) -> dict[str, Any]:
    """Per column: the test Evidently chose, its score, threshold and verdict."""
    columns: dict[str, Any] = {}
    drifted_count = None
    for metric in out["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            method, threshold, value = config["method"], float(config["threshold"]), float(metric["value"])
            distance = method in EVIDENTLY_DISTANCES
            columns[config["column"]] = {
                "method": method,
                "score": value,
                "threshold": threshold,
                "kind": "distance" if distance else "p_value",
                "drifted": value >= threshold if distance else value < threshold,
            }
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            drifted_count = metric["value"]["count"]
    return {"columns": columns, "drifted_count_reported": drifted_count}


# --------------------------------------------------------------------------- fourloops


def setup_fourloops(system: str) -> dict[str, Any]:
    """Import what ``fl.monitor`` uses (fourloops imports its parts lazily), so that imports are setup."""
    import importlib

    import fourloops as fl

    modules = [
        "fourloops.evaluation.monitor",
        "fourloops.engines.duckdb",
        "pyarrow.dataset",
        "pyarrow.parquet",
    ]
    if system == "fourloops-mv":
        modules.append("lightgbm")  # the domain classifier
    for name in modules:
        importlib.import_module(name)
    return {"fl": fl}


def run_fourloops(
    mods: dict[str, Any], system: str, reference: str, current: str
) -> tuple[Any, dict[str, float]]:
    fl = mods["fl"]
    kwargs: dict[str, Any] = {}
    if system != "fourloops-mv":
        kwargs["multivariate"] = False
    if system == "fourloops-wjs":
        kwargs["methods"] = ["wasserstein", "jensen_shannon"]
    t0 = time.perf_counter()
    result = fl.monitor(reference, current, **kwargs)
    out = result.to_dict()
    return out, {"compute_seconds": time.perf_counter() - t0}


def fourloops_columns(out: dict[str, Any]) -> dict[str, Any]:
    window = out["windows"][0]
    columns = {}
    for name, d in window["drift"].items():
        columns[name] = {
            "method": d["method"],
            "statistic": d["statistic"],
            "p_value": d["p_value"],
            "p_adjusted": d["p_adjusted"],
            "effect": d["effect"],
            "threshold": d["threshold"],
            "drifted": d["drifted"],
            "negligible": d["negligible"],
            "kind": d["kind"],
            "note": d["note"],
            "methods": d["methods"],
        }
    return {
        "columns": columns,
        "multivariate": window.get("multivariate"),
        "rows": window["rows"],
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    system, reference, current, out_path = sys.argv[1:5]
    equality = "--equality" in sys.argv[5:]
    setup_started = time.perf_counter()
    mods = setup_evidently() if system == "evidently" else setup_fourloops(system)
    setup = time.perf_counter() - setup_started
    baseline = rss_mb()

    wall0, cpu0 = time.perf_counter(), time.process_time()
    if system == "evidently":
        out, phases = run_evidently(mods, reference, current)
    elif system in ("fourloops", "fourloops-mv", "fourloops-wjs"):
        out, phases = run_fourloops(mods, system, reference, current)
    else:
        raise SystemExit(f"unknown system {system!r}")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = peak_rss_mb()

    detail = evidently_columns(out) if system == "evidently" else fourloops_columns(out)
    if equality and system == "fourloops":
        # After the measurements: Evidently's two statistics, for the equality check (untimed).
        started = time.perf_counter()
        wjs, _ = run_fourloops(mods, "fourloops-wjs", reference, current)
        detail["wjs"] = fourloops_columns(wjs)
        phases["wjs_seconds"] = time.perf_counter() - started
    Path(out_path).write_text(json.dumps(detail, default=str))
    print(
        json.dumps(
            {
                "seconds": wall,
                "cpu": cpu,
                "setup": setup,
                "baseline_rss_mb": baseline,
                "peak_rss_mb": peak,
                "extra_rss_mb": peak - baseline,
                **phases,
            }
        )
    )


if __name__ == "__main__":
    main()
