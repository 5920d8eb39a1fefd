"""The README's two set-up commands: what ``make demo`` and ``make test`` would install and run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _dry_run(target: str, tmp_path: Path) -> str:
    """The commands ``make TARGET`` would run for a fresh virtual environment (nothing is run)."""
    # Run inside ``make test`` (as CI does), make would inherit MAKELEVEL/MAKEFLAGS and print
    # "Entering directory" lines around the commands: start it as a top-level make.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_demo_installs_only_what_the_demo_needs(tmp_path: Path) -> None:
    commands = _dry_run("demo", tmp_path)
    assert re.search(r"pip install --quiet -e \.$", commands, flags=re.M), commands
    assert "[dev]" not in commands
    assert "fourloops demo --out demo-out" in commands


def test_make_test_installs_the_dev_tools_and_runs_the_suite(tmp_path: Path) -> None:
    commands = _dry_run("test", tmp_path)
    assert 'pip install --quiet -e ".[dev]"' in commands
    assert commands.strip().endswith("-m pytest -q")


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set up") : readme.index("## Quickstart")]
    [test_line] = [line for line in setup.splitlines() if line.startswith("make test")]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line and not line.startswith(("#", "set ", "cd ", "export "))]
    assert commands == [test_line.split("#")[0].strip()]
    assert "export FOURLOOPS_REQUIRE_SERVICES=1" in ci
