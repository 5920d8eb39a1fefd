"""Operating budgets of a model: what serving it may cost, checked by the monitor on the event log.

>>> Budget(p99_ms=50, fallback_rate=0.01)
Budget(p95_ms=None, p99_ms=50.0, fallback_rate=0.01, max_per_day=None, cpu_ms_per_1000=None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fourloops.errors import DefinitionError

__all__ = ["Budget"]


@dataclass(frozen=True)
class Budget:
    """Limits the monitor reports actuals against and alerts on (``budget`` alerts), per window.

    Parameters
    ----------
    p95_ms, p99_ms:
        Latency quantiles of served predictions, in milliseconds (as the events record it:
        validation, feature lookup, model call and logging).
    fallback_rate:
        Share of predictions a fallback may answer.
    max_per_day:
        Predictions per day (a cost cap; the window's count scaled to a day).
    cpu_ms_per_1000:
        Server CPU milliseconds per 1,000 predictions: everything the server processes spent
        (parsing, validation, feature lookups, the model, logging), as they count it every
        refresh interval, shared among their models by their answers.
    """

    p95_ms: float | None = None
    p99_ms: float | None = None
    fallback_rate: float | None = None
    max_per_day: float | None = None
    cpu_ms_per_1000: float | None = None

    def __post_init__(self) -> None:
        for name in ("p95_ms", "p99_ms", "fallback_rate", "max_per_day", "cpu_ms_per_1000"):
            value = getattr(self, name)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise DefinitionError(f"Budget.{name} must be a number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.fallback_rate is not None and self.fallback_rate > 1:
            raise DefinitionError(
                f"Budget.fallback_rate is a share between 0 and 1, got {self.fallback_rate}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The limits that are set (``Budget(**d)`` reads it back)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}
