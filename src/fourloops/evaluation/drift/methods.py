"""The drift methods: each turns one column's reference and current counts into a test.

Every method returns a statistic, a p-value and an effect size:

* ``ks`` (numeric): the Kolmogorov–Smirnov distance on the fine bins; the
  two-sample Kolmogorov p-value; effect floor 0.05.
* ``chi2`` (numeric on the coarse bins, categorical): the chi-square of the
  2 x k table; the chi-square p-value with sparse cells merged; effect is
  Cramér's V of the table with both samples weighted equally, floor 0.1.
* ``psi`` (coarse bins, categories): the population stability index; a
  simulated null (below); floor 0.1.
* ``jensen_shannon`` (coarse bins, categories): the JS distance in base 2; a
  simulated null; floor 0.1.
* ``wasserstein`` (numeric): the earth mover's distance divided by the
  reference's standard deviation; a simulated null; floor 0.1.

The effect of ``chi2`` is a Cramér's V that does not depend on the sample
sizes (the chi-square statistic itself grows with the sample, and a V of the
raw table shrinks as the reference grows); the effect of the other methods is
their statistic.

Distances (PSI, Jensen–Shannon, Wasserstein) have no closed-form null for
small samples, and a fixed threshold on them alarms on most small windows
without any drift. Their p-value comes from a **simulated null**: both
samples drawn again from their pooled distribution on the same bins
(``n`` and ``m`` values, multinomial), ``draws`` times; the p-value is
``(1 + #{simulated >= observed}) / (1 + draws)``. This calibrates the
distances for every window size at once.

>>> import numpy as np
>>> cmp = Comparison("categorical", np.array([500, 300, 200, 0]), np.array([40, 35, 25, 0]))
>>> result = METHODS["chi2"].test(cmp, np.random.default_rng(0), draws=100)
>>> round(result.statistic, 2), round(result.p_value, 3), round(result.effect, 2)
(3.71, 0.157, 0.1)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fourloops.evaluation.drift import statistics as st

__all__ = ["Comparison", "Kind", "METHODS", "Method", "MethodResult", "simulated_p_value"]

FloatArray = NDArray[np.float64]


class Kind(enum.StrEnum):
    """What kind of values a column holds, for drift."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True)
class Comparison:
    """One column's counts: reference and current on the same bins.

    Numeric columns carry their fine bins, how fine bins group into coarse
    ones (``coarse``: the coarse index of each fine bin), where each bin's
    mass sits (``ref_points``, ``cur_points``) and the reference's standard
    deviation (``scale``). Categorical columns carry the counts per category,
    the last entry being values never seen in the reference. ``n_eff`` and
    ``m_eff``, when given, are the sample sizes the tests use instead of the
    counts: the independent values of a column whose rows repeat readings.
    """

    kind: str
    ref: NDArray[np.int64]
    cur: NDArray[np.int64]
    coarse: NDArray[np.int64] | None = None
    ref_points: FloatArray | None = None
    cur_points: FloatArray | None = None
    scale: float = 1.0
    n_eff: int | None = None
    m_eff: int | None = None

    @property
    def n(self) -> int:
        """The reference's sample size for the tests: its values, or its independent ones."""
        return int(self.ref.sum()) if self.n_eff is None else min(self.n_eff, int(self.ref.sum()))

    @property
    def m(self) -> int:
        """The window's sample size for the tests: its values, or its independent ones."""
        return int(self.cur.sum()) if self.m_eff is None else min(self.m_eff, int(self.cur.sum()))

    def scaled(self, counts: NDArray[np.int64], effective: int) -> FloatArray:
        """``counts`` rescaled to ``effective`` values in all (the same shares)."""
        total = counts.sum()
        return counts * (effective / total) if total else counts.astype(float)

    def coarse_counts(self, counts: NDArray[np.int64]) -> NDArray[np.int64]:
        """``counts`` (fine bins, last axis) summed into the coarse bins; categories as they are."""
        if self.coarse is None:
            return counts
        groups = int(self.coarse.max()) + 1 if self.coarse.size else 0
        out = np.zeros((*counts.shape[:-1], groups), dtype=np.int64)
        for g in range(groups):
            out[..., g] = counts[..., self.coarse == g].sum(axis=-1)
        return out


@dataclass(frozen=True)
class MethodResult:
    """A method's verdict inputs: statistic, p-value, effect size and the effect floor."""

    method: str
    statistic: float
    p_value: float
    effect: float
    threshold: float

    def to_dict(self) -> dict[str, float | None]:
        return {"statistic": self.statistic, "p_value": self.p_value, "effect": self.effect}


def simulated_p_value(
    statistic: Callable[[NDArray[np.int64], NDArray[np.int64]], FloatArray],
    ref: NDArray[np.int64],
    cur: NDArray[np.int64],
    rng: np.random.Generator,
    draws: int,
    sizes: tuple[int, int] | None = None,
) -> tuple[float, float]:
    """The observed statistic and its p-value under the pooled null (see the module docstring).

    ``sizes`` are the two samples' sizes to simulate (default: their counts).
    """
    observed = float(statistic(ref[np.newaxis, :], cur[np.newaxis, :])[0])
    n, m = sizes if sizes is not None else (int(ref.sum()), int(cur.sum()))
    pooled = (ref + cur).astype(float)
    if n == 0 or m == 0 or pooled.sum() == 0 or draws <= 0:
        return observed, 1.0
    p0 = pooled / pooled.sum()
    sim = statistic(rng.multinomial(n, p0, size=draws), rng.multinomial(m, p0, size=draws))
    tolerance = 1e-12 * max(abs(observed), 1.0)
    exceed = int(np.sum(sim >= observed - tolerance))
    return observed, (1 + exceed) / (1 + draws)


@dataclass(frozen=True)
class Method:
    """A drift method: its name, the column kinds it applies to, its effect floor and its test."""

    name: str
    kinds: frozenset[str]
    floor: float
    run: Callable[[Comparison, np.random.Generator, int], tuple[float, float, float]]

    def test(
        self, cmp: Comparison, rng: np.random.Generator, *, draws: int, floor: float | None = None
    ) -> MethodResult:
        statistic, p_value, effect = self.run(cmp, rng, draws)
        return MethodResult(
            self.name, float(statistic), float(p_value), float(effect), self.floor if floor is None else floor
        )


def _ks(cmp: Comparison, rng: np.random.Generator, draws: int) -> tuple[float, float, float]:
    d = float(st.ks(cmp.ref, cmp.cur))
    return d, st.ks_p_value(d, cmp.n, cmp.m), d


def _chi2(cmp: Comparison, rng: np.random.Generator, draws: int) -> tuple[float, float, float]:
    ref, cur = cmp.coarse_counts(cmp.ref), cmp.coarse_counts(cmp.cur)
    result = st.chi2_test(cmp.scaled(ref, cmp.n), cmp.scaled(cur, cmp.m))
    effect = st.cramers_v(ref, cur) if cmp.m else 0.0
    return result.statistic, result.p_value, effect


def _distance(
    fn: Callable[[NDArray[np.int64], NDArray[np.int64]], FloatArray],
) -> Callable[[Comparison, np.random.Generator, int], tuple[float, float, float]]:
    def run(cmp: Comparison, rng: np.random.Generator, draws: int) -> tuple[float, float, float]:
        observed, p = simulated_p_value(
            fn, cmp.coarse_counts(cmp.ref), cmp.coarse_counts(cmp.cur), rng, draws
        )
        return observed, p, observed

    return run


def _wasserstein(cmp: Comparison, rng: np.random.Generator, draws: int) -> tuple[float, float, float]:
    assert cmp.ref_points is not None
    scale = cmp.scale if cmp.scale > 0 else 1.0
    points = cmp.ref_points
    observed = float(st.wasserstein(cmp.ref, cmp.cur, points, cmp.cur_points)) / scale

    def shared(r: NDArray[np.int64], c: NDArray[np.int64]) -> FloatArray:
        return st.wasserstein(r, c, points) / scale

    # The test compares like with like (both samples' mass at the reference's points); the distance
    # reported also counts how far values moved inside the open outer bins (their own means).
    _, p = simulated_p_value(shared, cmp.ref, cmp.cur, rng, draws, (cmp.n, cmp.m))
    return observed, p, observed


NUMERIC, CATEGORICAL = Kind.NUMERIC.value, Kind.CATEGORICAL.value
#: Every method by name.
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", frozenset({NUMERIC}), 0.05, _ks),
        Method("chi2", frozenset({NUMERIC, CATEGORICAL}), 0.1, _chi2),
        Method("psi", frozenset({NUMERIC, CATEGORICAL}), 0.1, _distance(st.psi)),
        Method("jensen_shannon", frozenset({NUMERIC, CATEGORICAL}), 0.1, _distance(st.jensen_shannon)),
        Method("wasserstein", frozenset({NUMERIC}), 0.1, _wasserstein),
    )
}
