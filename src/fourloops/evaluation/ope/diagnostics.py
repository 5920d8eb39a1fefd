"""Whether the logs can answer for the target policy: effective sample size, weight concentration, support.

* **ESS** (effective sample size) ``= (Σ w)² / Σ w²``: the number of rounds
  of an equally weighted sample carrying as much information as the weighted
  one. It is ``n`` when the target policy is the logger and shrinks as the
  weights spread; 0 when every weight is 0.
* **max_weight_share** ``= max w / Σ w``: the share of the largest single
  weight (near 1: one round decides IPS and SNIPS). 0 when every weight is 0.
* **unsupported_mass**: the target policy's mass on (action, position) pairs
  the logs never contain, averaged over rounds: for each round, the target
  probability of the actions never logged at its position. Importance weighting
  cannot see the reward of that mass (common support fails), so IPS, SNIPS and
  DR are biased by up to it times the reward range, and DM only guesses it
  (the reward model's fallback).

The verdict is ``inconclusive`` with a one-line reason when the ESS is below
a minimum or the unsupported mass above a bound; ``ok`` otherwise.

>>> verdict, reason = judge(Diagnostics(ess=42.0, max_weight_share=0.1, unsupported_mass=0.0),
...                         min_ess=100, max_unsupported=0.05)
>>> verdict.value, reason.split(":")[0]
('inconclusive', 'effective sample size 42.0 is below the minimum 100')
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fourloops.errors import ConfigError
from fourloops.evaluation.ope.estimators import Sums

__all__ = ["DEFAULT_MAX_UNSUPPORTED", "DEFAULT_MIN_ESS", "Diagnostics", "Verdict", "diagnose", "judge"]

#: Below this effective sample size the answer is inconclusive.
DEFAULT_MIN_ESS = 100.0
#: Above this unsupported mass the answer is inconclusive.
DEFAULT_MAX_UNSUPPORTED = 0.05


class Verdict(enum.StrEnum):
    """Whether the estimates can be trusted as numbers."""

    OK = "ok"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Diagnostics:
    """The diagnostics beside every estimate (see the module's docstring)."""

    ess: float
    max_weight_share: float
    unsupported_mass: float

    def to_dict(self) -> dict[str, float]:
        return {
            "ess": self.ess,
            "max_weight_share": self.max_weight_share,
            "unsupported_mass": self.unsupported_mass,
        }


def diagnose(weights: NDArray[np.float64], sums: Sums) -> Diagnostics:
    """The diagnostics of importance ``weights`` and of the rounds' ``sums`` (one sample)."""
    total = float(weights.sum())
    squares = float(np.square(weights).sum())
    ess = total * total / squares if squares > 0 else 0.0
    share = float(weights.max()) / total if total > 0 else 0.0
    n = float(sums.n[0])
    unsupported = float(sums.mass[0][sums.count[0] == 0].sum()) / n if n > 0 else 0.0
    return Diagnostics(ess, share, min(1.0, max(0.0, unsupported)))


def judge(diagnostics: Diagnostics, *, min_ess: float, max_unsupported: float) -> tuple[Verdict, str | None]:
    """``ok``, or ``inconclusive`` with the reason (the ESS first, then support)."""
    if min_ess < 0:
        raise ConfigError(f"min_ess must be at least 0, got {min_ess!r}")
    if not 0 <= max_unsupported <= 1:
        raise ConfigError(f"max_unsupported must be between 0 and 1, got {max_unsupported!r}")
    if diagnostics.ess < min_ess:
        return Verdict.INCONCLUSIVE, (
            f"effective sample size {diagnostics.ess:.1f} is below the minimum {min_ess:g}: "
            "the target policy is too far from the logging policy for these logs "
            "(its weights rest on a few rounds)"
        )
    if diagnostics.unsupported_mass > max_unsupported:
        return Verdict.INCONCLUSIVE, (
            f"{diagnostics.unsupported_mass:.1%} of the target policy's probability is on (action, position) "
            f"pairs the logs never contain (bound {max_unsupported:.1%}): their rewards are unknown"
        )
    return Verdict.OK, None
