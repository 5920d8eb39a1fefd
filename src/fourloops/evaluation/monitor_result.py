"""What a monitor run found: windows with drift, health and performance, and alerts.

Both doors (the event log of a project, two files or frames) give a
:class:`MonitorResult`; :meth:`MonitorResult.to_dict` is the JSON that
``fourloops monitor --json`` prints (its keys are a public contract: see the
project's architecture document).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourloops.evaluation.drift.policy import ColumnDrift
from fourloops.evaluation.pooling import SegmentPool
from fourloops.evaluation.window_metrics import MetricValue
from fourloops.evaluation.windows import WindowBounds, WindowStatus

if TYPE_CHECKING:
    from fourloops.evaluation.alerts import Alert

__all__ = ["MetricReport", "MonitorResult", "SegmentWindow", "WindowResult", "clean"]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def clean(value: Any) -> Any:
    """``value`` with NaN and infinity replaced by ``None`` (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


@dataclass(frozen=True)
class MetricReport:
    """A realised metric of a window: value and interval, the reference's value, labels and maturity."""

    value: MetricValue
    reference: float | None
    maturity: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.value.to_dict(),
            "reference": self.reference,
            "labelled": self.value.rows,
            "maturity": self.maturity,
        }


@dataclass
class SegmentWindow:
    """One segment value's share of a window: rows, drift and performance."""

    column: str
    value: str
    rows: int
    drift: dict[str, ColumnDrift] = field(default_factory=dict)
    metrics: dict[str, MetricReport] = field(default_factory=dict)
    estimated: dict[str, MetricValue] = field(default_factory=dict)
    #: The judged metric on the segment's last windows pooled (see :mod:`fourloops.evaluation.pooling`).
    pooled: dict[str, SegmentPool] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.column}={self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "drift": {c: d.to_dict() for c, d in self.drift.items()},
            "metrics": {m: r.to_dict() for m, r in self.metrics.items()},
            "estimated": {m: v.to_dict() for m, v in self.estimated.items()},
            "pooled": {m: p.to_dict() for m, p in self.pooled.items()},
        }


@dataclass
class WindowResult:
    """One window: where it is, what drifted, the data's health, realised and estimated performance."""

    bounds: WindowBounds
    drift: dict[str, ColumnDrift] = field(default_factory=dict)
    prediction_drift: ColumnDrift | None = None
    multivariate: dict[str, Any] | None = None
    health: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics: dict[str, MetricReport] = field(default_factory=dict)
    estimated: dict[str, MetricValue] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, SegmentWindow] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.bounds.index

    @property
    def status(self) -> WindowStatus:
        return self.bounds.status

    def drifted(self) -> list[str]:
        """Columns that drifted in the window overall."""
        return [c for c, d in self.drift.items() if d.drifted]

    def to_dict(self) -> dict[str, Any]:
        b = self.bounds
        out: dict[str, Any] = {
            "index": b.index,
            "start": _iso(b.start),
            "end": _iso(b.end),
            "first_row": b.first_row,
            "last_row": b.last_row,
            "rows": b.rows,
            "status": b.status.value,
            "drift": {c: d.to_dict() for c, d in self.drift.items()},
            "prediction_drift": None if self.prediction_drift is None else self.prediction_drift.to_dict(),
            "multivariate": self.multivariate,
            "health": self.health,
            "metrics": {m: r.to_dict() for m, r in self.metrics.items()},
            "estimated": {m: v.to_dict() for m, v in self.estimated.items()},
            "estimate_check": self.checks,
            "segments": {s.key: s.to_dict() for s in self.segments.values()},
        }
        out.update(self.extra)
        return out


@dataclass
class MonitorResult:
    """Windows and alerts of one monitor run (see the module docstring).

    ``reference`` describes what the windows were compared with (its rows, the
    reference's own metric values), ``settings`` how (window, methods,
    policy, task), ``notes`` anything the reader should know (a calibration
    that had to be repaired, timestamps read as UTC).
    """

    reference: dict[str, Any]
    windows: list[WindowResult]
    alerts: list[Alert] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: The alerts this run was the first to see (an episode new to the alert log), when recorded.
    new_alerts: list[Alert] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "reference": self.reference,
            "settings": self.settings,
            "windows": [w.to_dict() for w in self.windows],
            "alerts": [a.to_dict() for a in self.alerts],
            "notes": list(self.notes),
        }
        cleaned: dict[str, Any] = clean(out)
        return cleaned

    def to_json(self, *, indent: int | None = None) -> str:
        return str(json.dumps(self.to_dict(), indent=indent))

    def to_html(self, path: str | Path | None = None, *, title: str | None = None) -> str:
        """The self-contained HTML report (written to ``path`` when given); opens offline."""
        from fourloops.evaluation.report import render

        html = render(self, title=title)
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html

    def window(self, index: int) -> WindowResult:
        return next(w for w in self.windows if w.index == index)
