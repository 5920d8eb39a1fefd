"""The ``fourloops`` command line: parse, call :class:`fourloops.Project`, print.

Errors become one red line on stderr and a non-zero exit code (``--debug``
shows the traceback). Commands whose output is data accept ``--json``. The
commands live in one module per loop; importing them registers them on
:data:`app`.
"""

from __future__ import annotations

from fourloops.cli import adaptation, alerts, evaluation, inference, ingestion, project, rollout, simulation
from fourloops.cli.common import app, handle_errors

__all__ = [
    "adaptation",
    "alerts",
    "app",
    "evaluation",
    "handle_errors",
    "inference",
    "ingestion",
    "main",
    "project",
    "rollout",
    "simulation",
]


def main() -> None:
    """Console-script entry point."""
    app()
