"""Locating the example projects shipped with fourloops."""

from __future__ import annotations

from pathlib import Path

from fourloops.errors import NotFoundError

__all__ = ["example_path"]


def example_path(name: str = "flights") -> Path:
    """The folder of a bundled example project (in the wheel, or in a source checkout)."""
    candidates = [
        Path(__file__).parent / "_examples" / name,  # installed wheel
        Path(__file__).resolve().parents[2] / "examples" / name,  # source checkout / editable
    ]
    for path in candidates:
        if (path / "fourloops.toml").is_file():
            return path
    raise NotFoundError(f"example project {name!r} is not bundled with this installation")
