"""The false-alarm rate of the drift verdicts, measured by simulation where nothing changed.

Each run draws a new reference sample, fits its bins exactly as the profile does
(quantiles of the reference, or its categories), and draws a window from the
same population. A window's counts on the reference's bins are a multinomial
draw with the population's probabilities of those bins, which is what binning
a sample of the population gives, so windows of a million rows cost nothing.
The verdict is the production one (method test, then ``adjust``). Every run is
seeded: the measured rates are exact numbers, and with 2,000 runs a rate of 5 %
is told from 7 % (two standard errors apart).

The common defaults are measured the same way beside ours: a fixed distance
threshold (normalised Wasserstein >= 0.1) and a goodness-of-fit chi-square
that takes the reference's shares as exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from fourloops.engines.summaries import NumericSummary
from fourloops.evaluation.drift import METHODS, ColumnDrift, Comparison, DriftPolicy, adjust
from fourloops.evaluation.drift import statistics as st
from fourloops.evaluation.profile import _coarse

ALPHA = 0.05
RUNS = 2000
REFERENCE_ROWS = 5000
SIZES = (30, 100, 1_000, 10_000, 100_000, 1_000_000)


def _numeric_run(rng: np.random.Generator, m: int, policy: DriftPolicy) -> Comparison:
    ref = rng.normal(size=REFERENCE_ROWS)
    levels = np.arange(1, policy.bins) / policy.bins
    edges = np.unique(np.quantile(ref, levels, method="inverted_cdf"))
    summary = NumericSummary.of(ref, edges)
    probs = np.diff(np.concatenate([[0.0], scipy_stats.norm.cdf(edges), [1.0]]))
    cur = rng.multinomial(m, probs / probs.sum())
    points = summary.points()
    return Comparison(
        "numeric",
        summary.counts,
        cur,
        np.asarray(_coarse(summary.counts, policy.coarse_bins)),
        points,
        points,
        summary.std or 1.0,
    )


SHARES = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.04, 0.03, 0.02, 0.01, 0.005, 0.003, 0.002])
SHARES = SHARES / SHARES.sum()


def _categorical_run(rng: np.random.Generator, m: int) -> Comparison:
    ref = rng.multinomial(REFERENCE_ROWS, SHARES)
    cur = rng.multinomial(m, SHARES)
    # The profile's layout: known categories, then the unseen bucket (empty: nothing new appears).
    return Comparison("categorical", np.append(ref, 0), np.append(cur, 0))


def _verdict(cmp: Comparison, method: str, policy: DriftPolicy, rng: np.random.Generator) -> bool:
    result = METHODS[method].test(cmp, rng, draws=policy.draws, floor=policy.floor(method))
    [judged] = adjust([ColumnDrift("x", cmp.kind, cmp.m, (result,), policy.alpha)], policy)
    return judged.drifted


#: The default policy, and the significance test alone (no effect floor): the floor only lowers
#: the rate further in big windows, so the test itself must hold the nominal rate on its own.
POLICIES = {
    "default": DriftPolicy(alpha=ALPHA),
    "no_floor": DriftPolicy(alpha=ALPHA, floors={"ks": 0, "chi2": 0}),
}


@pytest.mark.parametrize("policy", POLICIES, ids=str)
@pytest.mark.parametrize("m", SIZES)
def test_numeric_false_alarm_rate_is_at_most_nominal_at_every_window_size(m: int, policy: str) -> None:
    chosen = POLICIES[policy]
    rng = np.random.default_rng([1, m])
    rate = np.mean([_verdict(_numeric_run(rng, m, chosen), "ks", chosen, rng) for _ in range(RUNS)])
    assert rate <= ALPHA + 0.01, f"ks false-alarm rate {rate:.3f} at {m} rows"
    if policy == "no_floor":
        assert rate >= ALPHA - 0.025, f"ks rate {rate:.3f}: far below nominal, the test has lost its power"


@pytest.mark.parametrize("policy", POLICIES, ids=str)
@pytest.mark.parametrize("m", SIZES)
def test_categorical_false_alarm_rate_is_at_most_nominal_at_every_window_size(m: int, policy: str) -> None:
    chosen = POLICIES[policy]
    rng = np.random.default_rng([2, m])
    rate = np.mean([_verdict(_categorical_run(rng, m), "chi2", chosen, rng) for _ in range(RUNS)])
    assert rate <= ALPHA + 0.01, f"chi2 false-alarm rate {rate:.3f} at {m} rows"
    if policy == "no_floor":
        assert rate >= ALPHA - 0.025, f"chi2 rate {rate:.3f}: far below nominal, the test has lost its power"


@pytest.mark.parametrize("method", ["psi", "jensen_shannon", "wasserstein"])
@pytest.mark.parametrize("m", [30, 1_000, 1_000_000])
def test_distances_calibrated_by_the_simulated_null_keep_the_nominal_rate(method: str, m: int) -> None:
    policy = DriftPolicy(alpha=ALPHA, draws=400)
    rng = np.random.default_rng([3, m, len(method)])
    runs = 600
    rate = np.mean([_verdict(_numeric_run(rng, m, policy), method, policy, rng) for _ in range(runs)])
    # 600 runs: a standard error of 0.9 point at 5 %.
    assert rate <= ALPHA + 0.02, f"{method} false-alarm rate {rate:.3f} at {m} rows"


def test_the_chance_that_any_of_15_columns_alarms_stays_at_alpha() -> None:
    policy = DriftPolicy(alpha=ALPHA)
    rng = np.random.default_rng(4)
    any_alarm = 0
    runs = 1000
    for _ in range(runs):
        tests = []
        for i in range(15):
            numeric = i % 3 != 0
            cmp = _numeric_run(rng, 1000, policy) if numeric else _categorical_run(rng, 1000)
            method = "ks" if numeric else "chi2"
            result = METHODS[method].test(cmp, rng, draws=0, floor=policy.floor(method))
            tests.append(ColumnDrift(f"c{i}", cmp.kind, cmp.m, (result,), ALPHA))
        any_alarm += any(t.drifted for t in adjust(tests, policy))
    assert any_alarm / runs <= ALPHA, f"some column alarmed in {any_alarm / runs:.3f} of windows"


def test_the_common_defaults_alarm_far_above_nominal_where_ours_do_not() -> None:
    """A fixed distance threshold fires on small windows; a goodness-of-fit chi-square on big ones."""
    rng = np.random.default_rng(5)
    policy = DriftPolicy(alpha=ALPHA)
    runs = 500
    fixed = {m: 0 for m in (30, 100)}
    for m in fixed:
        for _ in range(runs):
            cmp = _numeric_run(rng, m, policy)
            assert cmp.ref_points is not None
            distance = float(st.wasserstein(cmp.ref, cmp.cur, cmp.ref_points)) / cmp.scale
            fixed[m] += distance >= 0.1
    assert fixed[30] / runs > 0.5 and fixed[100] / runs > 0.2, fixed
    # Goodness of fit: the window against the reference's shares as if they were exact.
    gof = 0
    for _ in range(runs):
        cmp = _categorical_run(rng, 100_000)
        expected = (cmp.ref[:-1] / cmp.ref.sum()) * cmp.m
        keep = expected > 0
        gof += (
            scipy_stats.chisquare(
                cmp.cur[:-1][keep], expected[keep] * cmp.cur[:-1][keep].sum() / expected[keep].sum()
            ).pvalue
            < ALPHA
        )
    assert gof / runs > 0.2, gof / runs


def test_rows_that_repeat_one_reading_count_once() -> None:
    """Requests of one hour share its weather: 25 readings x 40 rows is 25 draws, not 1,000."""
    from fourloops.evaluation.profile import _effective

    policy = DriftPolicy(alpha=ALPHA, floors={"ks": 0})
    rng = np.random.default_rng(6)
    runs = 500
    naive = effective = 0
    for _ in range(runs):
        ref_values = np.repeat(rng.normal(size=200), 40)
        edges = np.unique(np.quantile(ref_values, np.arange(1, 100) / 100, method="inverted_cdf"))
        ref = NumericSummary.of(ref_values, edges)
        cur = NumericSummary.of(np.repeat(rng.normal(size=25), 40), edges)
        base = Comparison("numeric", ref.counts, cur.counts)
        fixed = Comparison("numeric", ref.counts, cur.counts, n_eff=_effective(ref), m_eff=_effective(cur))
        naive += _verdict(base, "ks", policy, rng)
        effective += _verdict(fixed, "ks", policy, rng)
    assert naive / runs > 3 * ALPHA, naive / runs  # every row as a draw: alarms most of the time
    assert effective / runs <= ALPHA + 0.02, effective / runs
