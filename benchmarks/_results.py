"""What a benchmark records: the machine and software it ran on, and its results file."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["machine", "write_results"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _first(path: str, prefix: str) -> str | None:
    with open(path) as lines:
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(prefix)), None)


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()


def machine(packages: Sequence[str]) -> dict[str, Any]:
    """``nproc``, usable CPUs, memory, CPU model, platform, Python, the version of each of ``packages``
    installed in this venv (``None`` if not), the commit, and whether ``src/`` has uncommitted changes."""
    memory = _first("/proc/meminfo", "MemTotal") or "0 kB"
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(memory.split()[0]) / 1024**2, 1),
        "cpu": _first("/proc/cpuinfo", "model name") or "?",
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for name in packages:
        try:
            info[name] = md.version(name)
        except md.PackageNotFoundError:
            info[name] = None
    info["git_commit"] = _git("rev-parse", "--short", "HEAD")
    info["src_uncommitted_changes"] = bool(_git("status", "--porcelain", "--", "src"))
    return info


def write_results(result: dict[str, Any], path: Path | None, *, name: str, quick: bool) -> Path | None:
    """``result`` as JSON in ``path``; by default ``benchmarks/results/<name>-<date>.json``, or, with
    ``quick`` (a CI run), nowhere. Returns where it went."""
    if path is None and not quick:
        path = RESULTS / f"{name}-{dt.date.today().isoformat()}.json"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str))
        print(f"wrote {path}")
    return path
