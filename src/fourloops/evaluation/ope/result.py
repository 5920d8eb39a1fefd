"""The answer of an off-policy evaluation: estimates with intervals, diagnostics and a verdict.

``OPEResult.to_dict()`` is the public JSON contract (DESIGN.md, "Off-policy
evaluation output"): ``rounds``, ``logged_value``, ``estimates`` (``dm``,
``ips``, ``snips``, ``dr``, each ``value``/``low``/``high``), ``diagnostics``
(``ess``, ``max_weight_share``, ``unsupported_mass``), ``verdict`` and
``reason``, plus ``settings`` and ``notes``. Every number is finite or
``None``, never NaN.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from fourloops.evaluation.ope.diagnostics import Diagnostics, Verdict

__all__ = ["Estimate", "OPEResult"]


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class Estimate:
    """An estimate of the target policy's value and its bootstrap interval (``None`` where undefined)."""

    value: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"value": _finite(self.value), "low": _finite(self.low), "high": _finite(self.high)}


@dataclass(frozen=True)
class OPEResult:
    """Estimates of the target policy's value on ``rounds`` logged rounds, their diagnostics and verdict.

    ``logged_value`` is the mean reward in the logs (the logging policy's value). With verdict
    ``inconclusive``, ``reason`` says why and the JSON's estimates are null (the computed values,
    not to be read as answers, are under ``unreliable_estimates``).
    """

    rounds: int
    logged_value: float
    estimates: dict[str, Estimate]
    diagnostics: Diagnostics
    verdict: Verdict
    reason: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (see the module's docstring)."""
        computed = {name: e.to_dict() for name, e in self.estimates.items()}
        conclusive = self.verdict == Verdict.OK
        return {
            "rounds": self.rounds,
            "logged_value": _finite(self.logged_value),
            # Inconclusive is not a number: the estimates are null, what was computed is kept apart.
            "estimates": computed if conclusive else {n: dict.fromkeys(e, None) for n, e in computed.items()},
            **({} if conclusive else {"unreliable_estimates": computed}),
            "diagnostics": {k: _finite(v) for k, v in self.diagnostics.to_dict().items()},
            "verdict": self.verdict.value,
            "reason": self.reason,
            "settings": dict(self.settings),
            "notes": list(self.notes),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text (strict: no NaN)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)
