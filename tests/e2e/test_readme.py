"""The README's Quickstart, run exactly as written in a fresh folder: the shell block, then the Python.

The shell block runs with ``set -e`` in a folder holding only a ``.venv`` link to the
environment running the tests (the README's first line activates it), so every command
must succeed. The Python block runs from the same folder as written, except that
``Project.serve``, which blocks until Ctrl-C, is replaced by a stub that records its call.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.slow


def _block(language: str) -> str:
    text = README.read_text(encoding="utf-8")
    quickstart = text[text.index("## Quickstart") : text.index("## Concepts")]
    blocks = re.findall(rf"```{language}\n(.*?)```", quickstart, flags=re.S)
    assert len(blocks) == 1, f"the Quickstart should hold one {language} block"
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

    (tmp_path / "quickstart.py").write_text(_block("python"))
    python = subprocess.run(
        [sys.executable, "-c", HARNESS], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900
    )
    assert python.returncode == 0, python.stdout[-3000:] + python.stderr[-3000:]
    assert "python quickstart ok 1" in python.stdout
