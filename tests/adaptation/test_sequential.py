"""Sequential comparisons keep their error rate under continuous monitoring, ramps included (simulated)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from fourloops.adaptation.sequential import Sums, Verdict, compare, half_width, required_samples
from fourloops.errors import ConfigError

ALPHA = 0.05


def _sums(x: np.ndarray) -> Sums:
    return Sums(float(x.size), float(x.sum()), float(np.dot(x, x)))


def _run(
    rng: np.random.Generator, p_champion: float, p_canary: float, looks: int, batch: int
) -> list[Verdict]:
    """One canary checked after every batch; the verdict at each look (errors: lower is better)."""
    a = rng.uniform(size=looks * batch) < p_champion
    b = rng.uniform(size=looks * batch) < p_canary
    out = []
    for k in range(1, looks + 1):
        champion, canary = a[: k * batch].astype(float), b[: k * batch].astype(float)
        out.append(compare([(_sums(champion), _sums(canary))], margin=0.01, lower_is_better=True).verdict)
    return out


def test_identical_versions_are_almost_never_failed_however_often_they_are_checked() -> None:
    rng = np.random.default_rng(1)
    runs = 1000
    failed = sum(Verdict.FAIL in _run(rng, 0.1, 0.1, looks=50, batch=200) for _ in range(runs))
    # With 1,000 runs the standard error at 5 % is 0.7 points; the guarantee is <= alpha at every look.
    assert failed / runs <= ALPHA, failed / runs


def test_a_naive_z_test_repeated_at_every_look_fails_identical_versions_far_more_often() -> None:
    rng = np.random.default_rng(2)
    runs, looks, batch = 1000, 50, 200
    at_10 = at_50 = 0
    for _ in range(runs):
        a = (rng.uniform(size=looks * batch) < 0.1).astype(float)
        b = (rng.uniform(size=looks * batch) < 0.1).astype(float)
        rejected = []
        for k in range(1, looks + 1):
            x, y = a[: k * batch], b[: k * batch]
            se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
            rejected.append(abs(y.mean() - x.mean()) / se > scipy_stats.norm.ppf(1 - ALPHA / 2))
        at_10 += any(rejected[:10])
        at_50 += any(rejected)
    assert at_10 / runs > 0.15 and at_50 / runs > 0.25, (at_10 / runs, at_50 / runs)


def test_across_a_ramp_strata_keep_the_guarantee_where_pooling_does_not() -> None:
    """5 % -> 25 % -> 100 % canary while the error rate rises over time, the same for both versions."""
    rng = np.random.default_rng(3)
    runs, per_stage_looks, traffic = 600, 10, 1000
    stages = [(0.05, 0.08), (0.25, 0.12), (1.0, 0.16)]  # (canary share, error rate of the period)
    stratified_fail = pooled_fail = 0
    for _ in range(runs):
        strata: list[tuple[np.ndarray, np.ndarray]] = []
        pooled_a: list[np.ndarray] = []
        pooled_b: list[np.ndarray] = []
        s_failed = p_failed = False
        for share, rate in stages:
            a_parts: list[np.ndarray] = []
            b_parts: list[np.ndarray] = []
            for _ in range(per_stage_looks):
                n_b = rng.binomial(traffic, share / 2) if share == 1.0 else rng.binomial(traffic, share)
                n_a = traffic - n_b
                a_parts.append((rng.uniform(size=n_a) < rate).astype(float))
                b_parts.append((rng.uniform(size=n_b) < rate).astype(float))
                stage_a, stage_b = np.concatenate(a_parts), np.concatenate(b_parts)
                sums = [(_sums(x), _sums(y)) for x, y in strata] + [(_sums(stage_a), _sums(stage_b))]
                s_failed |= compare(sums, margin=0.01, lower_is_better=True).verdict == Verdict.FAIL
                all_a = np.concatenate([*pooled_a, stage_a])
                all_b = np.concatenate([*pooled_b, stage_b])
                pooled = compare([(_sums(all_a), _sums(all_b))], margin=0.01, lower_is_better=True)
                p_failed |= pooled.verdict == Verdict.FAIL
            strata.append((np.concatenate(a_parts), np.concatenate(b_parts)))
            pooled_a.append(strata[-1][0])
            pooled_b.append(strata[-1][1])
        stratified_fail += s_failed
        pooled_fail += p_failed
    assert stratified_fail / runs <= ALPHA, stratified_fail / runs
    assert pooled_fail / runs > 3 * ALPHA, pooled_fail / runs  # Simpson: later, worse periods weigh more


def test_a_real_regression_is_caught_within_the_samples_its_settings_imply() -> None:
    rng = np.random.default_rng(4)
    sd = math.sqrt(0.12 * 0.88)
    needed = required_samples(sd, detect=0.04, margin=0.01, alpha=ALPHA, tau=0.01)
    batch = 100
    looks = needed // batch * 2  # generous: the bound is for the expected difference
    caught = []
    for _ in range(200):
        verdicts = _run(rng, 0.10, 0.14, looks=looks, batch=batch)
        first = next((i for i, v in enumerate(verdicts) if v == Verdict.FAIL), None)
        caught.append(first is not None and (first + 1) * batch <= needed * 1.5)
    assert np.mean(caught) >= 0.5
    assert all(v != Verdict.PASS for v in _run(rng, 0.10, 0.14, looks=looks, batch=batch))


def test_identical_versions_pass_once_the_sequence_is_narrower_than_the_margin() -> None:
    rng = np.random.default_rng(5)
    verdicts = _run(rng, 0.1, 0.1, looks=200, batch=200)
    assert verdicts[-1] == Verdict.PASS and Verdict.FAIL not in verdicts
    assert verdicts[0] == Verdict.INCONCLUSIVE  # 200 rows each: too early to say


def test_no_data_and_not_a_number_are_never_a_pass() -> None:
    empty = Sums(0, 0.0, 0.0)
    assert compare([(empty, empty)], margin=0.01).verdict == Verdict.INCONCLUSIVE
    assert compare([], margin=0.01).verdict == Verdict.INCONCLUSIVE
    broken = Sums(100, float("nan"), 1.0)
    assert compare([(broken, Sums(100, 10.0, 10.0))], margin=0.01).verdict == Verdict.ERROR
    with pytest.raises(ConfigError, match="tau"):
        compare([(empty, empty)], margin=0.0)


def test_the_sequence_is_wider_than_a_fixed_sample_interval_and_shrinks() -> None:
    v = 1e-4
    assert half_width(v, alpha=ALPHA, tau=0.01) > scipy_stats.norm.ppf(0.975) * math.sqrt(v)
    assert half_width(v / 100, alpha=ALPHA, tau=0.01) < half_width(v, alpha=ALPHA, tau=0.01) / 5
