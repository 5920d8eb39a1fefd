"""One measured benchmark child: a fresh process in a session of its own, its output in a log file,
killed with its whole group at its time limit, its CPU time from the kernel (``wait4``), and its
measurements on the last line it prints (JSON).

The peak resident size a child reports itself (its ``VmHWM``) is the figure to record:
``wait4``'s ``ru_maxrss`` includes what the parent had resident when it forked; it is kept as
``wait4_maxrss_mb`` for a child that never got to report. A child times its work with
:func:`measuring`, which reports that and the rest, reads its command line with
:func:`child_arguments` and hands its measurements back with :func:`report`.

:func:`run_script` runs one of the benchmarks' child scripts that way, and :func:`built_once` keeps
what a set-up child built (its measurements in a JSON file beside it), so later runs reuse it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "built_once",
    "child_arguments",
    "measuring",
    "peak_rss_mb",
    "report",
    "rss_mb",
    "run_measured",
    "run_script",
]

#: The repository root: where the children run (``src`` on their path through the venv).
ROOT = Path(__file__).resolve().parents[1]


def run_measured(command: list[str], log: Path, timeout: float, *, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``command`` (``PYTHONHASHSEED=0``) with stdout and stderr to ``log``.

    Returns ``process_seconds``, ``process_cpu``, ``wait4_maxrss_mb``, ``loadavg_1min_before``,
    ``loadavg_after`` and ``status``: ``ok`` (with the last line's JSON merged in), ``timeout``,
    or ``error`` (with the log's last 15 lines).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]  # the machines are shared: record how busy it was
    started = time.perf_counter()
    with open(log, "w") as stream:
        proc = subprocess.Popen(
            command,
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONHASHSEED="0"),
            start_new_session=True,
            cwd=cwd,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
    result: dict[str, Any] = {
        "process_seconds": time.perf_counter() - started,
        "process_cpu": usage.ru_utime + usage.ru_stime,
        "wait4_maxrss_mb": usage.ru_maxrss / 1024,
        "loadavg_1min_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    if timed_out.is_set():
        return result | {"status": "timeout"}
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        return result | {"status": "error", "error": "\n".join(text.strip().splitlines()[-15:])}
    measured: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return result | {"status": "ok"} | measured


def run_script(script: Path, args: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """``python SCRIPT ARGS`` (this interpreter, from the repository root) by :func:`run_measured`."""
    return run_measured([sys.executable, str(script), *args], log, timeout, cwd=ROOT)


def built_once(
    done: Path, build: Callable[[], dict[str, Any]], *, rebuild: bool, what: str
) -> dict[str, Any]:
    """What ``build`` (a :func:`run_measured` result) gave the first time, kept in ``done``.

    With ``done`` present and no ``rebuild``: its content and ``reused: True``. Otherwise ``build()``
    runs (it clears and makes what it builds), and must succeed: else the benchmark stops, naming ``what``.
    """
    if done.is_file() and not rebuild:
        built: dict[str, Any] = json.loads(done.read_text())
        return built | {"reused": True}
    result = build()
    if result["status"] != "ok":
        raise SystemExit(f"{what} failed: {result.get('error', result['status'])}")
    done.write_text(json.dumps(result))
    return result | {"reused": False}


def _status_mb(field: str) -> float | None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of the calling process (``VmHWM``), for a child to report."""
    peak = _status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if peak is None else peak


def rss_mb() -> float:
    """Resident memory of the calling process now (``VmRSS``)."""
    return _status_mb("VmRSS") or 0.0


@contextmanager
def measuring() -> Iterator[dict[str, Any]]:
    """Measures the work in the ``with`` block, for a child to report: a dict that holds
    ``rss_loaded_mb`` (resident before) and ``loadavg_1min`` on entry, and after the block ``seconds``
    (wall), ``cpu`` (this process's CPU time, every thread) and ``peak_rss_mb``.

    >>> with measuring() as measured:
    ...     _ = sum(range(1000))
    >>> sorted(measured)
    ['cpu', 'loadavg_1min', 'peak_rss_mb', 'rss_loaded_mb', 'seconds']
    """
    measured: dict[str, Any] = {"rss_loaded_mb": rss_mb(), "loadavg_1min": os.getloadavg()[0]}
    cpu0, t0 = time.process_time(), time.perf_counter()
    yield measured
    measured["seconds"] = time.perf_counter() - t0
    measured["cpu"] = time.process_time() - cpu0
    measured["peak_rss_mb"] = peak_rss_mb()


def child_arguments(doc: str | None, modes: Sequence[str], *, events: int) -> argparse.ArgumentParser:
    """A child script's command line: ``MODE ROOT [--events N] [--seed S] [--out PATH]`` (its docstring's
    first paragraph as the description); the script adds its own options."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("mode", choices=list(modes))
    p.add_argument("root", type=Path)
    p.add_argument("--events", type=int, default=events)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    return p


def report(result: dict[str, Any]) -> None:
    """Hand ``result`` to :func:`run_measured`: the last line the child prints, as JSON."""
    print(json.dumps(result, default=str))
