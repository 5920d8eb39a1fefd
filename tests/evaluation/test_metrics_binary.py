from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from fourloops import evaluation as ev

TOL = 1e-9
TIED = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])
FREE = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def binary_rows(draw, weighted: bool = False):
    n = draw(st.integers(1, 40))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=float)
    score_strategy = draw(st.sampled_from([TIED, FREE]))
    score = np.array(draw(st.lists(score_strategy, min_size=n, max_size=n)))
    w = None
    if weighted:
        w = np.array(draw(st.lists(st.floats(0.1, 5.0), min_size=n, max_size=n)))
    return y, score, w


def both_classes(y: np.ndarray) -> bool:
    return 0 < y.sum() < y.size


@settings(max_examples=80, deadline=None)
@given(binary_rows(weighted=True), st.booleans())
def test_roc_auc_matches_sklearn(rows, use_weights) -> None:
    y, score, w = rows
    w = w if use_weights else None
    got = ev.roc_auc(y, score, sample_weight=w)
    if not both_classes(y):
        assert got is None
    else:
        assert got == pytest.approx(skm.roc_auc_score(y, score, sample_weight=w), abs=TOL)


@settings(max_examples=80, deadline=None)
@given(binary_rows(weighted=True), st.booleans())
def test_average_precision_matches_sklearn(rows, use_weights) -> None:
    y, score, w = rows
    w = w if use_weights else None
    got = ev.average_precision(y, score, sample_weight=w)
    if y.sum() == 0:
        assert got is None
    else:
        want = skm.average_precision_score(y, score, sample_weight=w)
        assert got == pytest.approx(want, abs=TOL)


@settings(max_examples=80, deadline=None)
@given(binary_rows(weighted=True), st.booleans())
def test_log_loss_and_brier_match_sklearn(rows, use_weights) -> None:
    y, score, w = rows
    w = w if use_weights else None
    want = skm.log_loss(y, score, labels=[0, 1], sample_weight=w)
    assert ev.log_loss(y, score, sample_weight=w) == pytest.approx(want, abs=TOL)
    want = skm.brier_score_loss(y, score, labels=[0, 1], sample_weight=w)
    assert ev.brier(y, score, sample_weight=w) == pytest.approx(want, abs=TOL)


@settings(max_examples=80, deadline=None)
@given(binary_rows(weighted=True), st.booleans(), st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]))
def test_threshold_metrics_match_sklearn(rows, use_weights, threshold) -> None:
    y, score, w = rows
    w = w if use_weights else None
    hard = (score >= threshold).astype(int)
    for ours, theirs in (
        (ev.precision, skm.precision_score),
        (ev.recall, skm.recall_score),
        (ev.f1, skm.f1_score),
    ):
        want = theirs(y, hard, zero_division=0, sample_weight=w, labels=[0, 1])
        got = ours(y, score, threshold=threshold, sample_weight=w)
        assert got == pytest.approx(want, abs=TOL)


def test_log_loss_clips_confident_misses_like_sklearn() -> None:
    y, score = [1, 0, 1], [0.0, 1.0, 1.0]
    assert ev.log_loss(y, score) == pytest.approx(skm.log_loss(y, score), abs=TOL)
    assert ev.log_loss(y, score) == pytest.approx(2 * -np.log(np.finfo(float).eps) / 3)


def test_two_column_probabilities_use_the_positive_column() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert ev.roc_auc([0, 1, 1], proba) == ev.roc_auc([0, 1, 1], proba[:, 1])


def test_undefined_cases_are_none_not_errors() -> None:
    assert ev.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]) is None
    assert ev.roc_auc([], []) is None
    assert ev.average_precision([0, 0], [0.1, 0.2]) is None
    assert ev.log_loss([], []) is None
    assert ev.brier([1, 0], [0.5, 0.5], sample_weight=[0, 0]) is None
    assert ev.precision([0, 0], [0.1, 0.2]) == 0.0
    assert ev.f1([0, 0], [0.1, 0.2]) == 0.0


@pytest.mark.parametrize(
    ("y", "score", "weight"),
    [
        ([0, 2], [0.1, 0.2], None),
        ([0, 1], [0.1, np.nan], None),
        ([0, 1], [0.1], None),
        ([[0, 1]], [[0.1, 0.2]], None),
        ([0, 1], [0.1, 0.2], [1.0, -1.0]),
        ([0, 1], [0.1, 0.2], [1.0]),
    ],
)
def test_bad_input_raises_value_error(y, score, weight) -> None:
    with pytest.raises(ValueError):
        ev.roc_auc(y, score, sample_weight=weight)


def test_log_loss_requires_probabilities() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        ev.log_loss([0, 1], [0.5, 1.5])
