"""One measured benchmark child: a fresh process in a session of its own, its output in a log file,
killed with its whole group at its time limit, its CPU time from the kernel (``wait4``), and its
measurements on the last line it prints (JSON).

The peak resident size a child reports itself (its ``VmHWM``) is the figure to record:
``wait4``'s ``ru_maxrss`` includes what the parent had resident when it forked; it is kept as
``wait4_maxrss_mb`` for a child that never got to report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["run_measured"]


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
