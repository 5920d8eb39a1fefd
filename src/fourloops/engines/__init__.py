"""Batch engines: point-in-time-correct joins of entity rows to feature views.

``DuckDBEngine`` is the embedded default; every engine follows the
:class:`Engine` protocol and the point-in-time rule documented in
:mod:`fourloops.engines.base`.
"""

from __future__ import annotations

from fourloops.engines.base import Engine, JoinStats, ViewJoin, ViewStats
from fourloops.engines.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine", "Engine", "JoinStats", "ViewJoin", "ViewStats"]
