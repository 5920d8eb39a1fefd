from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops import evaluation as ev

TOL = 1e-9


def brute_force(y, score, edges):
    """Reliability table and ECE by explicit loops over bins and rows."""
    rows, ece, n = [], 0.0, len(y)
    last = len(edges) - 2
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        members = [
            j for j in range(n) if lo <= score[j] and (score[j] < hi or (i == last and score[j] <= hi))
        ]
        if members:
            mean_score = sum(score[j] for j in members) / len(members)
            rate = sum(y[j] for j in members) / len(members)
            ece += len(members) / n * abs(mean_score - rate)
            rows.append((lo, hi, len(members), mean_score, rate))
        else:
            rows.append((lo, hi, 0, None, None))
    return ece, rows


@st.composite
def rows(draw):
    n = draw(st.integers(1, 60))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    values = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.1, 0.5, 0.7, 1.0]))
    score = draw(st.lists(values, min_size=n, max_size=n))
    return y, score


@settings(max_examples=80, deadline=None)
@given(rows(), st.integers(1, 12), st.sampled_from(["uniform", "quantile"]))
def test_matches_brute_force(data, bins, strategy) -> None:
    y, score = data
    report = ev.calibration(y, score, bins=bins, strategy=strategy)
    edges = ev.bin_edges(score, bins, strategy)
    ece, table = brute_force(y, score, list(edges))
    assert report.ece == pytest.approx(ece, abs=TOL)
    assert report.n == len(y)
    assert len(report.bins) == len(table)
    assert sum(b.count for b in report.bins) == len(y)
    for got, want in zip(report.bins, table, strict=True):
        assert (got.lower, got.upper, got.count) == want[:3]
        if want[2] == 0:
            assert got.mean_score is None and got.observed_rate is None
        else:
            assert got.mean_score == pytest.approx(want[3], abs=TOL)
            assert got.observed_rate == pytest.approx(want[4], abs=TOL)
    assert report.mce == pytest.approx(max(abs(r[3] - r[4]) for r in table if r[2]), abs=TOL)


def test_quantile_bins_hold_similar_counts() -> None:
    rng = np.random.default_rng(0)
    score = rng.beta(2, 5, 1000)
    y = rng.binomial(1, score)
    report = ev.calibration(y, score, bins=10, strategy="quantile")
    assert [b.count for b in report.bins] == [100] * 10


def test_perfectly_calibrated_bins_have_zero_ece() -> None:
    y = [0, 1, 0, 1, 1, 1]
    score = [0.5, 0.5, 0.5, 0.5, 1.0, 1.0]
    assert ev.calibration(y, score).ece == 0.0


def test_report_is_json_able_and_empty_input_is_none() -> None:
    report = ev.calibration([], [])
    assert report.ece is None and report.mce is None and report.n == 0
    assert report.to_dict()["bins"][0] == {
        "lower": 0.0,
        "upper": 0.1,
        "count": 0,
        "mean_score": None,
        "observed_rate": None,
    }


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ev.calibration([0, 1], [0.2, 0.3], bins=0)
    with pytest.raises(ValueError):
        ev.calibration([0, 1], [0.2, 0.3], strategy="log")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ev.calibration([0, 1], [0.2, 1.3])
