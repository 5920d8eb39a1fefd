"""The benchmarks' ``--quick`` modes run with the suite, so that the scripts cannot rot.

Benchmarks are not tests: nothing here checks a time. A peer whose virtual
environment is missing (``benchmarks/.venv-evidently``) is skipped by the
script itself, with a message saying how to create it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVIDENTLY = ROOT / "benchmarks" / ".venv-evidently" / "bin" / "python"


def _quick(
    script: str, tmp_path: Path, timeout: float
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``benchmarks/SCRIPT --quick`` on data in ``tmp_path``: the finished process and its JSON results."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / script),
            "--quick",
            "--data",
            str(tmp_path),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,  # a hang, not a timing threshold
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results: dict[str, Any] = json.loads(out.read_text())
    return done, results


@pytest.mark.slow
def test_drift_benchmark_quick_runs_and_checks_equality(tmp_path: Path) -> None:
    done, results = _quick("drift.py", tmp_path, timeout=300)
    result = results["results"]["2000"]
    systems = result["systems"]
    for system in ("fourloops", "fourloops-mv"):
        assert systems[system]["summary"]["status"] == "ok"
        assert systems[system]["summary"]["peak_rss_mb"] > 0
    assert result["fourloops_mv_multivariate"]["method"] == "domain_classifier"
    equality = result["equality"]
    columns = {row["column"]: row for row in equality["columns"]}
    assert len(columns) == 25
    # fourloops' statistics against the raw values (scipy's Wasserstein, a plain Jensen-Shannon)
    for row in columns.values():
        if row["kind"] == "numeric":
            assert abs(row["fl_minus_raw_wasserstein"]) < 0.02, row
    assert columns["n0"]["fl_drifted"] and not columns["n4"]["fl_drifted"]
    if EVIDENTLY.exists():
        assert systems["evidently"]["summary"]["status"] == "ok"
        assert equality["js_categorical_equal"], equality
        assert set(result["evidently_tests"]) == set(columns)
        assert "skipping evidently" not in done.stdout
    else:
        assert "evidently" not in systems
        assert "skipping evidently" in done.stdout


@pytest.mark.slow
def test_controller_benchmark_quick_runs_and_checks_equality(tmp_path: Path) -> None:
    _, result = _quick("controller.py", tmp_path, timeout=600)
    assert result["build"]["fill"]["events_written"] == 200_000
    assert result["queries_per_tick"] == result["models"] == 10  # one query a model: its stage's checks
    summary = result["summary"]
    assert summary["status"] == "ok" and summary["tick"]["n"] == summary["floor"]["n"] == 1
    # the floor's sums give the tick's numbers, every check overall and in every region
    assert summary["equal"] and summary["compared"] >= 30, summary
    assert summary["running_rollouts_after"] == 10  # every tick decided "wait"
    profile = result["profile"]
    assert profile["status"] == "ok" or profile["status"].startswith("skipped"), profile
    if profile["status"] == "ok":
        assert profile["queries"]["stage checks (all, overall and by region)"]["n"] == 10
        assert profile["diagnostics"]["equal"]


@pytest.mark.slow
def test_monitor_scaling_benchmark_quick_runs_and_checks_equality(tmp_path: Path) -> None:
    _, result = _quick("monitor_scaling.py", tmp_path, timeout=600)
    assert set(result["sizes"]) == {"30000", "90000"}
    for size, entry in result["sizes"].items():
        assert entry["fill"]["events_written"] == int(size)
        methods = ("monitor", "floor", "monitor-no-mv", "monitor-labels-build", "monitor-2gb")
        for method in (*methods, "floor-no-labels", "floor-2gb"):
            assert entry["methods"][method]["status"] == "ok", (size, method, entry["runs"])
        # the floor's histograms are the monitor's summaries, every window and column
        equality = entry["equality"]
        assert equality["equal"] and equality["windows"] == 30, equality
        assert equality["rows"] == int(size)
        for method in (*methods[2:], "floor-no-labels", "floor-2gb"):  # every variant: the same counts
            assert entry[f"equality_{method}"]["equal"], (method, entry[f"equality_{method}"])
        assert entry["monitor_over_floor"] > 0
    scaling = result["scaling"]
    assert scaling["monitor"]["sizes"] == [30_000, 90_000]
    assert set(scaling["targets"]) >= {"flat_memory", "linear_time", "within_1_5x_of_floor"}
    profile = result["profile"]
    assert profile["status"] == "ok" or profile["status"].startswith("skipped"), profile
