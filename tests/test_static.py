"""Static checks run with the suite, so that CI (which runs the suite) keeps them: mypy strict, ruff."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_strict_is_clean_on_src() -> None:
    from mypy import api

    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, stdout + stderr


@pytest.mark.slow
def test_ruff_is_clean() -> None:
    folders = [str(ROOT / d) for d in ("src", "tests", "benchmarks", "scripts")]
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", *folders],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_documents_point_inside_the_repository() -> None:
    """The README once linked ``../shared/DESIGN.md``, outside the repository: users never have it."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for document in documents:
        for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", document.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            found = (document.parent / target).resolve()
            assert found.is_relative_to(ROOT) and found.exists(), f"{document.name} links to {target}"
    sources = [*documents, *sorted((ROOT / "src").rglob("*.py"))]
    outside = [str(p.relative_to(ROOT)) for p in sources if "shared/DESIGN" in p.read_text(encoding="utf-8")]
    assert not outside, f"these point at a design document outside the repository: {outside}"
