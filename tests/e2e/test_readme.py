"""The README's Quickstart, run exactly as written in a fresh folder: the shell block, the serving
step, then the Python.

The shell block runs with ``set -e`` in a folder holding only a ``.venv`` link to the
environment running the tests (the README's first line activates it), so every command
must succeed. Then the serving step of the README's Serving section: its ``fourloops serve``
command as written, from the project, and its ``curl`` block as written, whose answer must be
the one the README shows (the port alone may differ: ``FOURLOOPS_SERVER_PORT`` picks a free one,
the curl's ``localhost:8080`` follows it). The Python block runs from the same folder as
written, except that ``Project.serve``, which blocks until Ctrl-C, is replaced by a stub that
records its call.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fourloops.testing import free_port

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.slow


def _section(start: str, end: str) -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index(start) : text.index(end)]


def _block(language: str, start: str = "## Quickstart", end: str = "## Concepts") -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", _section(start, end), flags=re.S)
    assert len(blocks) == 1, f"{start} should hold one {language} block"
    return blocks[0]


HARNESS = """
import fourloops as fl
calls = []
fl.Project.serve = lambda self, **kw: calls.append(kw)
exec(compile(open("quickstart.py").read(), "quickstart.py", "exec"))
assert calls == [{"port": 8080}], calls
print("python quickstart ok", report.inserted + report.unknown, len(events))
"""


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOURLOOPS_")}
    shell = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + _block("bash")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert shell.returncode == 0, shell.stdout[-3000:] + shell.stderr[-3000:]
    out = shell.stdout
    assert "2 quarantined" in out and "delay v1 registered; gates passed" in out
    assert "champion none -> v1" in out and "champion v1 -> v2" in out and "champion v2 -> v1" in out
    assert "weather: ok" in out  # the lookup at the materialised time finds a fresh value
    assert (tmp_path / "myproject" / "train.parquet").exists()

    _serve_as_the_readme_says(tmp_path, env)

    (tmp_path / "quickstart.py").write_text(_block("python"))
    python = subprocess.run(
        [sys.executable, "-c", HARNESS], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900
    )
    assert python.returncode == 0, python.stdout[-3000:] + python.stderr[-3000:]
    assert "python quickstart ok 1" in python.stdout


def _serve_as_the_readme_says(folder: Path, env: dict[str, str]) -> None:
    """The Serving section after the Quickstart: its serve command and its curl, as written."""
    serving = _section("### Serving", "- **Validation**")
    [command] = re.findall(r"after the Quickstart, `(fourloops serve [^`]*)`", serving)
    curl = _block("bash", "### Serving", "- **Validation**")
    shown = json.loads(
        "".join(line.removeprefix("# ") for line in curl.splitlines() if line.startswith("# "))
    )
    port = free_port()
    log = folder / "serve.log"
    with log.open("wb") as output:  # a file, not a pipe: a full pipe would stall the server
        server = subprocess.Popen(
            ["bash", "-c", f". .venv/bin/activate && cd myproject && exec {command}"],
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**env, "FOURLOOPS_SERVER_PORT": str(port)},
        )
    try:
        _wait_ready(server, port)
        answered = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + curl.replace("localhost:8080", f"localhost:{port}")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert answered.returncode == 0, answered.stderr
        answer = json.loads(answered.stdout)
    finally:
        server.terminate()
        server.wait(60)
    assert server.returncode == 0, log.read_text()[-3000:]
    assert set(answer) == set(shown), (answer, shown)
    for key in ("model", "version", "route", "fallback", "fallback_reason", "feature_status"):
        assert answer[key] == shown[key], (key, answer, shown)  # served with the weather known then
    assert 0 < answer["prediction"] < 1


def _wait_ready(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, f"fourloops serve exited with {server.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("fourloops serve was not ready within 120 s")
