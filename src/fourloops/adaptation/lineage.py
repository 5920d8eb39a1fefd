"""Lineage: everything that went into a model version, recorded so it can be re-made.

Code (git commit, dirty flag and a hash of the diff), definitions (model,
feature views and contracts, by content hash), data (a fingerprint of the
exact training frame, its time range and row counts), parameters and seed,
the environment (Python, platform, every installed distribution) and timings.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["code_state", "environment", "frame_fingerprint"]

_GIT_TIMEOUT = 10


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def code_state(root: Path) -> dict[str, Any]:
    """Git commit of the project, whether the tree is dirty, and a hash of the diff."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"git": False}
    status = _git(root, "status", "--porcelain") or ""
    diff = _git(root, "diff", "HEAD") or ""
    return {
        "git": True,
        "commit": commit.strip(),
        "dirty": bool(status.strip()),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if status.strip() else None,
    }


def environment() -> dict[str, Any]:
    """Python, platform and the full set of installed distributions with versions."""
    packages = sorted(
        {(d.metadata["Name"] or "").lower(): d.version for d in importlib.metadata.distributions()}.items()
    )
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": dict(packages),
    }


def frame_fingerprint(frame: pl.DataFrame) -> str:
    """SHA-256 of a frame's content (column names, types and values, in row order)."""
    digest = hashlib.sha256(repr(list(frame.schema.items())).encode())
    # Row hashes depend on values only (not on chunking or string layout); a fixed seed
    # make them stable for a given Polars version, which lineage records too.
    hashes = frame.hash_rows(seed=0)
    digest.update(hashes.to_numpy().tobytes())
    return digest.hexdigest()
