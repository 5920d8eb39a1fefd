from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from fourloops import evaluation as ev

TOL = 1e-9


@st.composite
def multiclass_rows(draw):
    k = draw(st.integers(2, 5))
    n = draw(st.integers(1, 40))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    raw = np.array(
        draw(st.lists(st.sampled_from([0.0, 1.0, 1.0, 2.0, 3.0, 0.5]), min_size=n * k, max_size=n * k))
    ).reshape(n, k)
    raw[raw.sum(axis=1) == 0] = 1.0
    proba = raw / raw.sum(axis=1, keepdims=True)
    w = np.array(draw(st.lists(st.floats(0.1, 5.0), min_size=n, max_size=n)))
    return y, proba, w, draw(st.booleans())


@settings(max_examples=80, deadline=None)
@given(multiclass_rows())
def test_multiclass_metrics_match_sklearn(rows) -> None:
    y, proba, w, weighted = rows
    w = w if weighted else None
    k = proba.shape[1]
    hard = np.argmax(proba, axis=1)
    assert ev.accuracy(y, proba, sample_weight=w) == pytest.approx(
        skm.accuracy_score(y, hard, sample_weight=w), abs=TOL
    )
    want = skm.f1_score(y, hard, labels=list(range(k)), average="macro", zero_division=0, sample_weight=w)
    assert ev.macro_f1(y, proba, sample_weight=w) == pytest.approx(want, abs=TOL)
    want = skm.log_loss(y, proba, labels=list(range(k)), sample_weight=w)
    assert ev.multiclass_log_loss(y, proba, sample_weight=w) == pytest.approx(want, abs=TOL)


def test_empty_is_none() -> None:
    empty = np.zeros((0, 3))
    assert ev.accuracy([], empty) is None
    assert ev.macro_f1([], empty) is None
    assert ev.multiclass_log_loss([], empty) is None


@pytest.mark.parametrize(
    ("y", "proba"),
    [
        ([0, 3], [[0.5, 0.5], [0.5, 0.5]]),
        ([0, 0.5], [[0.5, 0.5], [0.5, 0.5]]),
        ([0, 1], [[0.5, 1.5], [0.5, 0.5]]),
        ([0, 1], [0.5, 0.5]),
        ([0, 0], [[1.0], [1.0]]),
    ],
)
def test_bad_input_raises(y, proba) -> None:
    with pytest.raises(ValueError):
        ev.accuracy(y, proba)
