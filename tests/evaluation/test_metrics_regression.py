from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from fourloops import evaluation as ev

TOL = 1e-9
VALUES = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
    st.sampled_from([0.0, 1.0, 2.5, -3.0]),
)


@st.composite
def regression_rows(draw):
    n = draw(st.integers(1, 40))
    y = np.array(draw(st.lists(VALUES, min_size=n, max_size=n)))
    pred = np.array(draw(st.lists(VALUES, min_size=n, max_size=n)))
    w = np.array(draw(st.lists(st.floats(0.1, 5.0), min_size=n, max_size=n)))
    return y, pred, (w if draw(st.booleans()) else None)


@settings(max_examples=80, deadline=None)
@given(regression_rows())
def test_point_metrics_match_sklearn(rows) -> None:
    y, pred, w = rows
    assert ev.mae(y, pred, sample_weight=w) == pytest.approx(
        skm.mean_absolute_error(y, pred, sample_weight=w), rel=TOL, abs=TOL
    )
    assert ev.rmse(y, pred, sample_weight=w) == pytest.approx(
        skm.root_mean_squared_error(y, pred, sample_weight=w), rel=TOL, abs=TOL
    )


@settings(max_examples=80, deadline=None)
@given(regression_rows())
def test_r2_matches_sklearn_when_defined(rows) -> None:
    y, pred, w = rows
    got = ev.r2(y, pred, sample_weight=w)
    if np.ptp(y) == 0:
        assert got is None
        return
    assume(np.ptp(y) > 1e-3)
    want = skm.r2_score(y, pred, sample_weight=w)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(regression_rows(), st.sampled_from([0.05, 0.1, 0.5, 0.9, 0.95]))
def test_pinball_matches_sklearn(rows, alpha) -> None:
    y, pred, w = rows
    want = skm.mean_pinball_loss(y, pred, alpha=alpha, sample_weight=w)
    got = ev.pinball_loss(y, pred, alpha=alpha, sample_weight=w)
    assert got == pytest.approx(want, rel=TOL, abs=TOL)


@settings(max_examples=100, deadline=None)
@given(regression_rows(), st.floats(0.0, 50.0))
def test_interval_coverage_is_share_inside(rows, width) -> None:
    y, pred, _ = rows
    lower, upper = pred - width, pred + width
    want = np.mean([lo <= v <= hi for v, lo, hi in zip(y, lower, upper, strict=True)])
    assert ev.interval_coverage(y, lower, upper) == pytest.approx(want, abs=TOL)


def test_constant_truth_and_empty() -> None:
    assert ev.r2([2.0, 2.0, 2.0], [2.0, 2.0, 2.0]) is None
    assert ev.r2([0.1] * 7, [0.0] * 7) is None
    assert ev.r2([1.0], [1.0]) is None
    assert ev.mae([], []) is None
    assert ev.rmse([], []) is None
    assert ev.interval_coverage([], [], []) is None


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        ev.mae([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        ev.pinball_loss([1.0], [1.0], alpha=1.5)
    with pytest.raises(ValueError):
        ev.interval_coverage([1.0], [0.0], [1.0, 2.0])
