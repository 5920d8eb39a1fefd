"""Training/serving parity: does the server answer what offline scoring of the same rows gives?

The check that catches skew no test of either side alone can: features read
from the online store that differ from the point-in-time join, inputs
encoded differently, a model file that is not the one evaluated. Served
events are re-scored offline, row by row, with the same version and the
features joined point-in-time at each event's time; every pair is compared.

:func:`compare_predictions` is the comparison itself; the project's
``parity`` method builds the offline side from the event log.

>>> report = compare_predictions(["a", "b", "c"], [0.2, 0.5, [0.1, 0.9]], [0.2, 0.5000001, [0.1, 0.9]])
>>> report.compared, report.mismatches, report.examples
(3, 1, ['b'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_TOLERANCE", "MAX_EXAMPLES", "ParityReport", "compare_predictions"]

#: Largest absolute difference still counted as "the same prediction".
DEFAULT_TOLERANCE = 1e-9
#: Mismatched request ids named in a report.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ParityReport:
    """How many served predictions were re-scored, how many differ, and what could not be compared."""

    compared: int
    mismatches: int
    max_abs_difference: float | None
    tolerance: float = DEFAULT_TOLERANCE
    examples: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every compared prediction matched (and at least one was compared)."""
        return self.compared > 0 and self.mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "compared": self.compared,
            "mismatches": self.mismatches,
            "max_abs_difference": self.max_abs_difference,
            "tolerance": self.tolerance,
            "examples": list(self.examples),
            "skipped": dict(self.skipped),
        }


def _difference(served: Any, offline: Any) -> float:
    if isinstance(served, Sequence) and not isinstance(served, str):
        pairs = list(zip(served, offline, strict=True))
        return max((_difference(a, b) for a, b in pairs), default=0.0)
    if served is None or offline is None:
        return 0.0 if served is None and offline is None else math.inf
    a, b = float(served), float(offline)
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
    return abs(a - b)


def compare_predictions(
    ids: Sequence[str],
    served: Sequence[Any],
    offline: Sequence[Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    skipped: Mapping[str, int] | None = None,
) -> ParityReport:
    """Compare served predictions with their offline re-scores, pair by pair (floats or vectors)."""
    if not len(ids) == len(served) == len(offline):
        raise ValueError(
            f"parity needs as many ids, served and offline values ({len(ids)}, {len(served)}, {len(offline)})"
        )
    worst: float | None = None
    mismatched: list[str] = []
    for rid, a, b in zip(ids, served, offline, strict=True):
        diff = _difference(a, b)
        worst = diff if worst is None else max(worst, diff)
        if diff > tolerance:
            mismatched.append(rid)
    return ParityReport(
        compared=len(ids),
        mismatches=len(mismatched),
        max_abs_difference=worst,
        tolerance=tolerance,
        examples=mismatched[:MAX_EXAMPLES],
        skipped={k: v for k, v in (skipped or {}).items() if v},
    )
