"""``fl.Project``, the composition root: a project folder, its stores, and every operation as a method."""

from __future__ import annotations

from fourloops.project.core import Project

__all__ = ["Project"]
