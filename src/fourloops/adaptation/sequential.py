"""Comparisons that stay valid however often they are looked at: always-valid confidence sequences.

A canary is checked after every batch of traffic. Testing "canary vs
champion" with a fixed-sample z-test at every look inflates the error rate
without bound (identical versions are declared different about 20 % of the
time after 10 looks at alpha 0.05, measured by the tests). Instead each check
uses a **mixture sequential probability ratio test** (mSPRT): the likelihood
ratio of "the difference is theta" against "it is 0", averaged over a normal
mixture theta ~ N(0, tau^2), is a nonnegative martingale under the null, so
by Ville's inequality it exceeds ``1 / alpha`` with probability at most
``alpha`` *ever*. For a difference of means estimated by ``d`` with variance
``V`` (normal approximation), inverting the test gives a confidence sequence
for the true difference that holds at every look simultaneously::

    d +/- sqrt( 2 V (V + tau^2) / tau^2 * (log(1 / alpha) + log((V + tau^2) / V) / 2) )

(Robbins 1970; Johari, Pekelis and Walsh, "Always valid inference", 2017).
``tau`` sets where the sequence is tightest: about the size of difference
that matters (``tau = margin`` by default); it is fixed before any data is
seen, as the guarantee needs.

:func:`compare` turns two samples' sums into a :class:`Comparison` with the
difference, its confidence sequence and a verdict against a margin:

* ``fail``: the whole sequence lies on the worse side of ``-margin`` (the
  canary is worse by more than the margin; with ``margin = 0``: worse);
* ``pass``: the whole sequence lies above ``-margin`` (not worse by more than
  the margin: non-inferiority);
* ``inconclusive``: neither yet (too little data: wait), or no data.

Strata (stages of a ramp, periods) are compared within themselves and pooled
with inverse-variance weights, so a traffic share that changes mid-test does
not bias the difference (Simpson's paradox).

>>> champion = Sums(n=4000, total=4000 * 0.10, squares=4000 * 0.10)   # 10 % errors
>>> canary = Sums(n=4000, total=4000 * 0.14, squares=4000 * 0.14)     # 14 % errors
>>> result = compare([(champion, canary)], margin=0.01, lower_is_better=True)
>>> result.verdict.value, round(result.difference, 3)
('fail', -0.04)
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fourloops.errors import ConfigError

__all__ = ["Comparison", "Sums", "Verdict", "compare", "half_width", "required_samples"]


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


@dataclass(frozen=True)
class Sums:
    """A sample's count, sum and sum of squares (mergeable: add them)."""

    n: float
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Sample variance (n - 1); 0 for fewer than two values."""
        if self.n < 2:
            return 0.0
        return max((self.squares - self.total * self.total / self.n) / (self.n - 1), 0.0)

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.n + other.n, self.total + other.total, self.squares + other.squares)


def half_width(variance: float, *, alpha: float, tau: float) -> float:
    """Half-width of the always-valid confidence sequence for a difference with variance ``variance``."""
    if variance <= 0:
        return 0.0
    ratio = (variance + tau * tau) / variance
    scale = 2 * variance * (variance + tau * tau) / (tau * tau)
    return math.sqrt(scale * (math.log(1 / alpha) + math.log(ratio) / 2))


def required_samples(sd: float, *, detect: float, margin: float, alpha: float, tau: float) -> int:
    """Rows per arm (equal arms) before the sequence can rule out a difference ``detect`` below ``-margin``.

    With ``detect = 0`` it is the rows needed to *pass* identical versions (the sequence narrower
    than ``margin``): the minimum time to promote. Infinite (``-1``) when never.
    """
    target = margin if detect == 0 else detect - margin
    if target <= 0 or sd <= 0:
        return -1 if sd > 0 else 0
    lo, hi = 2, 2
    while half_width(2 * sd * sd / hi, alpha=alpha, tau=tau) > target:
        hi *= 2
        if hi > 10**12:
            return -1
    while lo < hi:
        mid = (lo + hi) // 2
        if half_width(2 * sd * sd / mid, alpha=alpha, tau=tau) > target:
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class Comparison:
    """Canary against champion: the difference (canary better is positive), its sequence, the verdict."""

    difference: float
    low: float
    high: float
    margin: float
    alpha: float
    verdict: Verdict
    rows: tuple[int, int]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "difference": finite(self.difference),
            "low": finite(self.low),
            "high": finite(self.high),
            "margin": self.margin,
            "alpha": self.alpha,
            "verdict": self.verdict.value,
            "rows": {"champion": self.rows[0], "canary": self.rows[1]},
            "reason": self.reason,
        }


def compare(
    strata: Sequence[tuple[Sums, Sums]],
    *,
    margin: float = 0.0,
    alpha: float = 0.05,
    tau: float | None = None,
    lower_is_better: bool = False,
    min_rows: int = 30,
) -> Comparison:
    """Compare canary with champion over ``strata`` of (champion, canary) sums (see the module docstring).

    The difference is oriented so that positive means the canary is better. A stratum where
    either side has fewer than two rows is left out.
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")
    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}")
    # The mixture's scale must be fixed before the data (a data-dependent one breaks the guarantee).
    mixture = tau if tau is not None else margin
    if not mixture > 0:
        raise ConfigError("give tau (the size of difference that matters) when the margin is 0")
    sign = -1.0 if lower_is_better else 1.0
    weights = estimate = 0.0
    n_champion = n_canary = 0
    for champion, canary in strata:
        n_champion += int(champion.n)
        n_canary += int(canary.n)
        if champion.n < 2 or canary.n < 2:
            continue
        values = (champion.mean, canary.mean, champion.variance, canary.variance)
        if not all(math.isfinite(v) for v in values):
            return Comparison(
                math.nan,
                -math.inf,
                math.inf,
                margin,
                alpha,
                Verdict.ERROR,
                (n_champion, n_canary),
                "a measurement is not a number",
            )
        v = champion.variance / champion.n + canary.variance / canary.n
        v = max(v, 1e-12)  # identical constant outcomes: a difference of 0 known very precisely
        estimate += sign * (canary.mean - champion.mean) / v
        weights += 1 / v
    if weights == 0 or n_champion < min_rows or n_canary < min_rows:
        return Comparison(
            math.nan,
            -math.inf,
            math.inf,
            margin,
            alpha,
            Verdict.INCONCLUSIVE,
            (n_champion, n_canary),
            f"not enough data yet ({n_champion} champion and {n_canary} canary rows; {min_rows} each needed)",
        )
    difference = estimate / weights
    variance = 1 / weights
    width = half_width(variance, alpha=alpha, tau=mixture)
    low, high = difference - width, difference + width
    if high < -margin:
        verdict, reason = (
            Verdict.FAIL,
            f"worse by more than {margin:g} at every look's confidence ({low:.4g}, {high:.4g})",
        )
    elif low > -margin:
        verdict, reason = Verdict.PASS, f"not worse by more than {margin:g} ({low:.4g}, {high:.4g})"
    else:
        verdict, reason = (
            Verdict.INCONCLUSIVE,
            f"the sequence ({low:.4g}, {high:.4g}) still spans -{margin:g}",
        )
    return Comparison(difference, low, high, margin, alpha, verdict, (n_champion, n_canary), reason)
