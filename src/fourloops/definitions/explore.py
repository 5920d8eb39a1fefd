"""Exploration of a decision model: how the served policy spreads probability over the actions.

A decision model (``task="policy"``) scores every action for a request (its
predicted reward); the **greedy** action is the best-scored one (ties: the
first in the declared order). The served policy gives every action a
probability, built in three steps:

1. **mix**: ``m = (1 - rate) * greedy + rate * e``, where ``e`` is uniform over
   the actions (``kind="epsilon_greedy"``, ``rate`` = epsilon) or the softmax
   of the scores divided by ``temperature`` (``kind="softmax"``, ``rate``
   defaults to 1: the softmax alone);
2. **cap per segment**: for a request in a capped segment (``"column=value"``,
   a request field), ``rate`` is lowered so that the probability of *not*
   taking the greedy action is at most the cap (the lowest cap among the
   segments it is in);
3. **floor**: ``p = floor + (1 - K * floor) * m`` with ``K`` actions, so every
   action keeps at least ``floor`` (every action stays evaluable off-policy)
   and the probabilities still sum to one.

The probability of not taking the greedy action is therefore at most
``(K - 1) * floor + (1 - K * floor) * rate``; a cap below the floor's own part
``(K - 1) * floor`` cannot hold and is refused when the model is defined.

>>> explore = Explore(rate=0.2, floor=0.05, max_rate_by_segment={"tier=vip": 0.1})
>>> [round(p, 4) for p in explore.distribution([1.0, 3.0, 2.0], {"tier": "std"})[0]]
[0.1067, 0.7867, 0.1067]
>>> probabilities, rate, greedy = explore.distribution([1.0, 3.0, 2.0], {"tier": "vip"})
>>> [round(p, 4) for p in probabilities], round(rate, 4), greedy
([0.05, 0.9, 0.05], 0.0, 1)
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fourloops.errors import DefinitionError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["ACTION_COLUMN", "KINDS", "PROPENSITY_COLUMN", "Explore"]

#: Exploration kinds.
KINDS = ("epsilon_greedy", "softmax")
#: The column of a decision model's entity rows holding the logged action, and the one holding the
#: probability the logging policy gave it (its propensity).
ACTION_COLUMN = "action"
PROPENSITY_COLUMN = "propensity"
#: Rounding slack when a cap is compared with the floor's own exploration.
_SLACK = 1e-12


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DefinitionError(f"Explore: {what} must be a number, got {value!r}")
    if not low <= value <= high:
        raise DefinitionError(f"Explore: {what} must be in [{low:g}, {high:g}], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Explore:
    """The exploration policy a decision model is served with (see the module docstring).

    Parameters
    ----------
    kind:
        ``"epsilon_greedy"`` (default) or ``"softmax"``.
    rate:
        Epsilon-greedy: the probability of a uniform draw (default 0.1). Softmax: the softmax's
        weight in a mixture with the greedy choice (default 1.0).
    temperature:
        Softmax only: the scale of the scores (in reward units; default 1.0). Lower is greedier.
    floor:
        Every action keeps at least this probability (default 0.01; 0 turns it off).
    max_rate_by_segment:
        ``{"column=value": cap}``: in that segment, the probability of not taking the greedy
        action is at most ``cap``. The column must be a request field of the model.
    top_k:
        How many of the likeliest actions each event logs with their probabilities (the chosen one
        always; the mass of the rest is logged as one number).
    """

    kind: str = "epsilon_greedy"
    rate: float | None = None
    temperature: float | None = None
    floor: float = 0.01
    max_rate_by_segment: Mapping[str, float] = field(default_factory=dict)
    top_k: int = 10

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DefinitionError(f"Explore: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        default = 0.1 if self.kind == "epsilon_greedy" else 1.0
        rate = default if self.rate is None else _number(self.rate, "rate", 0.0, 1.0)
        object.__setattr__(self, "rate", rate)
        if self.kind == "epsilon_greedy" and self.temperature is not None:
            raise DefinitionError("Explore: temperature= is for kind='softmax'; epsilon_greedy takes rate=")
        if self.kind == "softmax":
            temperature = 1.0 if self.temperature is None else self.temperature
            if (
                isinstance(temperature, bool)
                or not isinstance(temperature, int | float)
                or not (math.isfinite(temperature) and temperature > 0)
            ):
                raise DefinitionError(f"Explore: temperature must be a number > 0, got {temperature!r}")
            object.__setattr__(self, "temperature", float(temperature))
        object.__setattr__(self, "floor", _number(self.floor, "floor", 0.0, 1.0))
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise DefinitionError(f"Explore: top_k must be an integer >= 1, got {self.top_k!r}")
        if not isinstance(self.max_rate_by_segment, Mapping):
            raise DefinitionError("Explore: max_rate_by_segment must be a mapping {'column=value': cap}")
        caps: dict[str, float] = {}
        for key, cap in self.max_rate_by_segment.items():
            column, sep, value = str(key).partition("=")
            if not isinstance(key, str) or not sep or not column or not value:
                raise DefinitionError(
                    f"Explore: segment {key!r} of max_rate_by_segment must look like 'column=value'"
                )
            caps[key] = _number(cap, f"the cap of segment {key!r}", 0.0, 1.0)
        object.__setattr__(self, "max_rate_by_segment", dict(sorted(caps.items())))

    # -- checks against the model ------------------------------------------------------------
    def check(self, actions: Sequence[str], fields: Collection[str], *, model: str) -> None:
        """Refuse settings that cannot hold for ``actions`` and a request with ``fields``."""
        k = len(actions)
        if self.floor * k > 1 + _SLACK:
            raise DefinitionError(
                f"Model {model!r}: Explore floor {self.floor:g} x {k} actions is more than 1 "
                f"(at most {1 / k:.4g} per action)"
            )
        own = (k - 1) * self.floor
        for key, cap in self.max_rate_by_segment.items():
            column = key.partition("=")[0]
            if column not in fields:
                raise DefinitionError(
                    f"Model {model!r}: Explore segment {key!r}: {column!r} is not a request field "
                    f"(fields: {', '.join(fields) or 'none'})"
                )
            if cap + _SLACK < own:
                raise DefinitionError(
                    f"Model {model!r}: Explore cap {cap:g} of segment {key!r} is below the floor's own "
                    f"exploration {own:.4g} ({k - 1} other actions x floor {self.floor:g}); "
                    "lower the floor or raise the cap"
                )

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON (``Explore(**d)`` reads them back)."""
        out: dict[str, Any] = {"kind": self.kind, "rate": self.rate, "floor": self.floor, "top_k": self.top_k}
        if self.kind == "softmax":
            out["temperature"] = self.temperature
        if self.max_rate_by_segment:
            out["max_rate_by_segment"] = dict(self.max_rate_by_segment)
        return out

    # -- the distribution ----------------------------------------------------------------------
    @property
    def base_rate(self) -> float:
        """The rate before any segment cap."""
        assert self.rate is not None
        return self.rate

    def rate_for(self, row: Mapping[str, Any], actions: int) -> float:
        """The rate applied to a request: :attr:`base_rate`, lowered by the caps of its segments."""
        rate = self.base_rate
        for key, cap in self.max_rate_by_segment.items():
            column, _, value = key.partition("=")
            if column in row and str(row[column]) == value:
                rate = min(rate, self._capped(cap, actions))
        return rate

    def _capped(self, cap: float, actions: int) -> float:
        """The largest rate whose off-greedy probability (with the floor) stays within ``cap``."""
        spread = 1.0 - actions * self.floor
        if spread <= _SLACK:
            return 0.0  # the floor alone is the (uniform) policy
        return max(0.0, min(1.0, (cap - (actions - 1) * self.floor) / spread))

    def distribution(self, scores: Sequence[float], row: Mapping[str, Any]) -> tuple[list[float], float, int]:
        """The probability of each action, the rate applied and the greedy action's index.

        ``scores`` are the predicted rewards in the declared order of the actions; a score that
        is not a finite number is never greedy (and the lowest in a softmax).
        """
        k = len(scores)
        finite = [s if isinstance(s, int | float) and math.isfinite(s) else -math.inf for s in scores]
        greedy = max(range(k), key=lambda i: (finite[i], -i))
        rate = self.rate_for(row, k)
        if self.kind == "epsilon_greedy":
            spread = [rate / k] * k
        else:
            assert self.temperature is not None
            top = finite[greedy] if math.isfinite(finite[greedy]) else 0.0
            weights = [math.exp((s - top) / self.temperature) if math.isfinite(s) else 0.0 for s in finite]
            total = sum(weights) or 1.0
            spread = [rate * w / total for w in weights]
        spread[greedy] += 1.0 - rate
        scale = 1.0 - k * self.floor
        return [self.floor + scale * m for m in spread], rate, greedy

    def matrix(
        self, scores: NDArray[np.float64], rows: Sequence[Mapping[str, Any]] | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`distribution` for a batch: ``(n, K)`` scores -> ``(n, K)`` probabilities and ``(n,)`` rates.

        ``rows`` give each row's segment columns (needed only with caps).
        """
        import numpy as np

        n, k = scores.shape
        finite = np.where(np.isfinite(scores), scores, -np.inf)
        greedy = np.argmax(finite, axis=1)  # the first of equal scores, as in distribution()
        if self.max_rate_by_segment and rows is not None:
            rates = np.array([self.rate_for(r, k) for r in rows], dtype=np.float64)
        else:
            rates = np.full(n, self.base_rate)
        if self.kind == "epsilon_greedy":
            spread = np.repeat(rates[:, None] / k, k, axis=1)
        else:
            assert self.temperature is not None
            top = finite[np.arange(n), greedy]
            top = np.where(np.isfinite(top), top, 0.0)
            with np.errstate(invalid="ignore", over="ignore"):
                weights = np.where(
                    np.isfinite(finite), np.exp((finite - top[:, None]) / self.temperature), 0.0
                )
            totals = weights.sum(axis=1, keepdims=True)
            spread = rates[:, None] * weights / np.where(totals > 0, totals, 1.0)
        spread[np.arange(n), greedy] += 1.0 - rates
        probabilities: NDArray[np.float64] = self.floor + (1.0 - k * self.floor) * spread
        return probabilities, rates
