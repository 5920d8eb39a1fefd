"""The domain classifier: its false-alarm rate where nothing changed, and drift only the joint shows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

import fourloops as fl
from fourloops.evaluation.multivariate import DomainClassifier


def _pair(rng: np.random.Generator, n: int, m: int) -> tuple[pa.Table, pa.Table]:
    def draw(k: int) -> pa.Table:
        return pa.table(
            {"a": rng.normal(size=k), "b": rng.normal(size=k), "c": rng.choice(["x", "y", "z"], k)}
        )

    return draw(n), draw(m)


def test_the_held_out_auc_test_keeps_the_nominal_false_alarm_rate() -> None:
    rng = np.random.default_rng(11)
    runs = 500
    alarms = 0
    for r in range(runs):
        ref, cur = _pair(rng, 1000, 500)
        result = DomainClassifier(seed=r, floor=0.0).test(ref, cur, ["a", "b", "c"])
        assert result is not None
        alarms += result.drifted
    # 500 runs: a standard error of one point at 5 %; averaging k-fold AUCs measured 10 % here.
    assert alarms / runs <= 0.05 + 0.02, alarms / runs


def test_a_change_of_correlation_is_found_by_the_classifier_not_by_the_columns() -> None:
    rng = np.random.default_rng(12)
    n = 4000
    ref = pl.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    a = rng.normal(size=n)
    cur = pl.DataFrame({"a": a, "b": 0.9 * a + np.sqrt(1 - 0.81) * rng.normal(size=n)})  # same marginals
    result = fl.monitor(ref, cur)
    [window] = result.windows
    assert window.drifted() == []
    assert window.multivariate is not None and window.multivariate["drifted"]
    assert set(window.multivariate["top_features"]) == {"a", "b"}
    assert [a.kind for a in result.alerts] == ["multivariate_drift"]


def test_too_small_samples_give_no_verdict() -> None:
    rng = np.random.default_rng(13)
    ref, cur = _pair(rng, 100, 10)
    assert DomainClassifier().test(ref, cur, ["a", "b"]) is None


def test_the_model_is_the_one_the_scikit_learn_wrapper_fits_on_the_frame() -> None:
    """The classifier fits LightGBM on a float matrix (categories by code, missing ones NaN): the same
    held-out scores and gains, to the bit, as ``LGBMClassifier`` on the pandas frame."""
    import lightgbm

    from fourloops.evaluation.multivariate import _frame, _matrix

    rng = np.random.default_rng(4)
    n = 600

    def table(shift: float) -> pa.Table:
        x = rng.normal(shift, 1, n)
        x[rng.random(n) < 0.05] = np.nan
        k = rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05]).tolist()
        return pa.table({"x": x, "n": rng.integers(0, 5, n), "k": k, "b": rng.random(n) < 0.3})

    columns = ["x", "n", "k", "b"]
    X = _frame([table(0.0), table(0.4)], columns)
    y = np.repeat([0.0, 1.0], n)
    held = rng.random(2 * n) < 0.5
    wrapper = lightgbm.LGBMClassifier(
        n_estimators=40,
        num_leaves=15,
        learning_rate=0.1,
        min_child_samples=10,
        random_state=0,
        n_jobs=1,
        verbose=-1,
        importance_type="gain",
    ).fit(X[~held], y[~held])
    values, categorical = _matrix(X)
    assert categorical == [2, 3]
    params = DomainClassifier().lightgbm_params()
    train = lightgbm.Dataset(values[~held], y[~held], categorical_feature=categorical)
    booster = lightgbm.train(params, train)
    assert np.array_equal(wrapper.predict_proba(X[held])[:, 1], booster.predict(values[held], num_threads=1))
    assert np.array_equal(wrapper.feature_importances_, booster.feature_importance(importance_type="gain"))
