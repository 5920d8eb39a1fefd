"""Every drift statistic against scipy or an independent formula, on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from fourloops.engines.summaries import NumericSummary
from fourloops.evaluation.drift import statistics as s

counts = st.lists(st.integers(0, 50), min_size=1, max_size=12)


@st.composite
def pairs(draw: st.DrawFn, nonempty: bool = True) -> tuple[np.ndarray, np.ndarray]:
    k = draw(st.integers(1, 12))
    ref = np.array(draw(st.lists(st.integers(0, 60), min_size=k, max_size=k)))
    cur = np.array(draw(st.lists(st.integers(0, 60), min_size=k, max_size=k)))
    if nonempty:
        ref[draw(st.integers(0, k - 1))] += 1
        cur[draw(st.integers(0, k - 1))] += 1
    return ref, cur


@given(pairs(nonempty=False))
def test_no_statistic_is_ever_nan_or_infinite(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = pair
    points = np.arange(len(ref), dtype=float)
    values = [s.psi(ref, cur), s.jensen_shannon(ref, cur), s.ks(ref, cur), s.wasserstein(ref, cur, points)]
    values += [s.chi2_test(ref, cur).statistic, s.chi2_test(ref, cur).p_value, s.cramers_v(ref, cur)]
    assert all(np.isfinite(v) for v in values)


@given(pairs())
def test_psi_is_the_symmetric_kullback_leibler_divergence_of_the_smoothed_shares(pair: tuple) -> None:
    ref, cur = pair
    p = (ref + 0.5) / (ref.sum() + 0.5 * len(ref))
    q = (cur + 0.5) / (cur.sum() + 0.5 * len(cur))
    expected = special.rel_entr(q, p).sum() + special.rel_entr(p, q).sum()
    assert float(s.psi(ref, cur)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(pairs())
def test_jensen_shannon_equals_scipy_base_2(pair: tuple) -> None:
    ref, cur = pair
    assert float(s.jensen_shannon(ref, cur)) == pytest.approx(jensenshannon(ref, cur, base=2), abs=1e-9)


def _on_support(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    support = np.union1d(x, y)
    return support, np.array([np.sum(x == v) for v in support]), np.array([np.sum(y == v) for v in support])


samples = st.lists(st.integers(-5, 5), min_size=1, max_size=80)


@settings(max_examples=200)
@given(samples, samples)
def test_ks_statistic_and_p_value_equal_scipy_on_the_same_data(x: list[int], y: list[int]) -> None:
    assume(round(len(x) * len(y) / (len(x) + len(y))) >= 1)  # scipy divides by zero for one value each
    xa, ya = np.array(x, dtype=float), np.array(y, dtype=float)
    _, cx, cy = _on_support(xa, ya)
    expected = scipy_stats.ks_2samp(xa, ya, method="asymp")
    d = float(s.ks(cx, cy))
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert s.ks_p_value(d, len(x), len(y)) == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n", [s.KS_EXACT_UP_TO + 1, 50_000, 200_000, 2_000_000])
def test_ks_p_value_of_large_samples_is_within_two_percent_of_the_exact_distribution(n: int) -> None:
    # Both samples of 2n values: the effective size is n, past the exact branch.
    for d in np.linspace(0.2, 2.6, 13) / np.sqrt(n):
        exact = float(scipy_stats.kstwo.sf(d, n))
        if exact < 1e-6:
            continue
        assert s.ks_p_value(float(d), 2 * n, 2 * n) == pytest.approx(exact, rel=0.02)


@settings(max_examples=200)
@given(samples, samples)
def test_wasserstein_equals_scipy_on_the_same_data(x: list[int], y: list[int]) -> None:
    xa, ya = np.array(x, dtype=float), np.array(y, dtype=float)
    support, cx, cy = _on_support(xa, ya)
    expected = scipy_stats.wasserstein_distance(xa, ya)
    assert float(s.wasserstein(cx, cy, support)) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # Each side at its own points (as the outer bins are): still the same distance.
    assert float(s.wasserstein(cx[cx > 0], cy[cy > 0], support[cx > 0], support[cy > 0])) == pytest.approx(
        expected, rel=1e-9, abs=1e-12
    )


@settings(max_examples=200)
@given(pairs())
def test_chi2_equals_scipy_contingency_on_the_table_it_tested(pair: tuple) -> None:
    ref, cur = pair
    result = s.chi2_test(ref, cur)
    table = result.table
    assert table.sum() == ref.sum() + cur.sum()  # merging keeps every count
    if result.dof == 0:
        assert (result.statistic, result.p_value) == (0.0, 1.0)
        return
    expected_counts = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    assert expected_counts.min() >= s.MIN_EXPECTED or table.shape[1] == 2
    stat, p, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
    assert (result.statistic, result.dof) == (pytest.approx(stat, rel=1e-9), dof)
    assert result.p_value == pytest.approx(p, rel=1e-9, abs=1e-15)


def test_chi2_on_a_table_with_no_sparse_cell_is_the_plain_test() -> None:
    ref, cur = np.array([400, 300, 300]), np.array([50, 20, 30])
    result = s.chi2_test(ref, cur)
    stat, p, _, _ = scipy_stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert result.statistic == pytest.approx(stat) and result.p_value == pytest.approx(p)
    assert result.table.shape == (2, 3)


def test_binned_statistics_of_continuous_data_bracket_the_exact_ones() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    edges = tuple(np.quantile(ref, np.arange(1, 100) / 100))
    for shift in (0.0, 0.1, 0.5):
        cur = rng.normal(shift, 1.0, size=5_000)
        a, b = NumericSummary.of(ref, edges), NumericSummary.of(cur, edges)
        exact = scipy_stats.ks_2samp(ref, cur).statistic
        binned = float(s.ks(a.counts, b.counts))
        # At the edges the gap is never larger than the exact one, and smaller by at most one bin's mass.
        assert exact - 0.02 <= binned <= exact + 1e-12
        w_exact = scipy_stats.wasserstein_distance(ref, cur)
        w_binned = float(s.wasserstein(a.counts, b.counts, a.points(), b.points()))
        assert w_binned == pytest.approx(w_exact, abs=0.03)


@given(pairs())
def test_cramers_v_is_bounded_and_zero_only_for_equal_shares(pair: tuple) -> None:
    ref, cur = pair
    v = s.cramers_v(ref, cur)
    assert 0.0 <= v <= 1.0
    assert s.cramers_v(ref, ref * 3) == pytest.approx(0.0, abs=1e-12)
    table = np.vstack([ref / ref.sum(), cur / cur.sum()])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1:
        stat = scipy_stats.chi2_contingency(table, correction=False)[0]
        assert v == pytest.approx(np.sqrt(stat / 2), abs=1e-9)  # Cramér's V of the equal-weight table
    assert s.cramers_v([5, 0], [0, 7]) == pytest.approx(1.0)
