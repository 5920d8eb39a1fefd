"""How the model was served, per window: requests, fallbacks, latency, feature coverage.

These come from the event log only (the columns every event has): the
number of requests, the share answered by a fallback, latency quantiles and,
per feature view, the share of requests whose features were found, missing
or expired in the online store. Latency is binned on fixed log-spaced edges
(20 per decade from 0.01 ms to 100 s), a mergeable quantile sketch whose
quantiles are within a bin's width (12 %) of the exact ones, interpolated
geometrically inside the bin.

>>> import numpy as np
>>> from fourloops.engines.summaries import NumericSummary
>>> s = NumericSummary.of(np.array([1.0, 2.0, 3.0, 4.0, 100.0]), LATENCY_EDGES)
>>> round(quantile(s, 0.5), 1)  # within a bin (12 %) of the exact median, 3
3.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fourloops.engines.summaries import CategoricalSummary, NumericSummary, Summaries

__all__ = [
    "LATENCY",
    "LATENCY_EDGES",
    "STATUS",
    "STATUS_PREFIX",
    "operations",
    "operations_columns",
    "quantile",
]

LATENCY = "latency_ms"
STATUS_PREFIX = "status__"
#: How a view's features were found for a request (an event's ``status__<view>``).
STATUS = ("ok", "missing", "expired")
#: Latency bin edges in milliseconds: 20 per decade, 0.01 ms to 100 s.
LATENCY_EDGES: tuple[float, ...] = tuple(float(x) for x in 10 ** np.arange(-2.0, 5.0 + 1e-9, 0.05))
_FALLBACK = "fallback"


def operations_columns(
    schema: Mapping[str, str],
) -> tuple[dict[str, tuple[float, ...]], dict[str, tuple[str, ...]]]:
    """The event columns to summarise (numeric edges, categorical values), for the columns present."""
    numeric = {LATENCY: LATENCY_EDGES} if LATENCY in schema else {}
    categorical: dict[str, tuple[str, ...]] = {c: STATUS for c in schema if c.startswith(STATUS_PREFIX)}
    if _FALLBACK in schema:
        categorical[_FALLBACK] = ("false", "true")
    return numeric, categorical


def quantile(summary: NumericSummary, q: float) -> float | None:
    """The ``q`` quantile of a latency summary (geometric interpolation inside the bin)."""
    n = summary.count
    if not n:
        return None
    edges = np.asarray(summary.edges)
    target = q * n
    cumulative = np.cumsum(summary.counts)
    i = int(np.searchsorted(cumulative, target, side="left"))
    i = min(i, len(summary.counts) - 1)
    lo = edges[i - 1] if i > 0 else (summary.minimum if summary.minimum is not None else edges[0])
    hi = edges[i] if i < len(edges) else (summary.maximum if summary.maximum is not None else edges[-1])
    lo = max(float(lo), 1e-9)
    hi = max(float(hi), lo)
    before = cumulative[i - 1] if i > 0 else 0
    inside = summary.counts[i]
    frac = 0.0 if inside == 0 else float(np.clip((target - before) / inside, 0.0, 1.0))
    value = lo * (hi / lo) ** frac
    if summary.minimum is not None:
        value = max(value, summary.minimum)
    if summary.maximum is not None:
        value = min(value, summary.maximum)
    return float(value)


def operations(summaries: Summaries, index: int) -> dict[str, Any] | None:
    """Requests, fallback rate, latency quantiles and coverage of window ``index`` (None if not logged)."""
    key = (index, None, None)
    info = summaries.groups.get(key)
    if info is None:
        return None
    out: dict[str, Any] = {"requests": info.rows}
    latency = summaries.numeric.get(LATENCY, {}).get(key)
    if isinstance(latency, NumericSummary):
        out["latency_ms"] = {f"p{int(q * 100)}": quantile(latency, q) for q in (0.5, 0.95, 0.99)}
    fallback = summaries.categorical.get(_FALLBACK, {}).get(key)
    if isinstance(fallback, CategoricalSummary) and fallback.count:
        out["fallback_rate"] = float(fallback.counts[1] / fallback.count)
    coverage = {}
    for column, by_key in summaries.categorical.items():
        status = by_key.get(key)
        if not column.startswith(STATUS_PREFIX) or not isinstance(status, CategoricalSummary):
            continue
        total = status.count  # requests that looked the view up (the caller may send features itself)
        if not total:
            continue
        coverage[column[len(STATUS_PREFIX) :]] = {
            name: (float(status.counts[i] / total) if total else 0.0) for i, name in enumerate(STATUS)
        }
    if coverage:
        out["coverage"] = coverage
    return out
