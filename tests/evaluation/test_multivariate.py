"""The domain classifier: its false-alarm rate where nothing changed, and drift only the joint shows."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

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
    """The classifier fits LightGBM on a float matrix built from Arrow (categories by code, missing
    ones NaN): the same held-out scores and gains, to the bit, as ``LGBMClassifier`` on a pandas
    frame of the same rows (numbers as floats, everything else as one shared category set)."""
    import lightgbm
    import pandas as pd

    from fourloops.evaluation.multivariate import _matrix

    rng = np.random.default_rng(4)
    n = 600

    def table(shift: float) -> pa.Table:
        x = rng.normal(shift, 1, n)
        x[rng.random(n) < 0.05] = np.nan
        k = rng.choice(["b", "a", "é", "c", None], n, p=[0.3, 0.45, 0.05, 0.15, 0.05]).tolist()
        return pa.table({"x": x, "n": rng.integers(0, 5, n), "k": k, "b": rng.random(n) < 0.3})

    columns = ["x", "n", "k", "b"]
    tables = [table(0.0), table(0.4)]
    frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    for column in ("k", "b"):
        frame[column] = frame[column].astype("string").astype("category")
    frame["n"] = frame["n"].astype(float)
    y = np.repeat([0.0, 1.0], n)
    held = rng.random(2 * n) < 0.5
    params = DomainClassifier().lightgbm_params()
    wrapper = lightgbm.LGBMClassifier(
        n_estimators=params["num_iterations"],
        num_leaves=params["num_leaves"],
        learning_rate=params["learning_rate"],
        min_child_samples=params["min_child_samples"],
        max_bin=params["max_bin"],
        random_state=0,
        n_jobs=1,
        verbose=-1,
        importance_type="gain",
    ).fit(frame[~held], y[~held])
    values, categorical = _matrix(tables, columns)
    assert categorical == [2, 3]
    train = lightgbm.Dataset(values[~held], y[~held], categorical_feature=categorical)
    booster = lightgbm.train(params, train)
    assert np.array_equal(
        wrapper.predict_proba(frame[held])[:, 1], booster.predict(values[held], num_threads=1)
    )
    assert np.array_equal(wrapper.feature_importances_, booster.feature_importance(importance_type="gain"))


def test_a_repeated_reading_is_one_cluster() -> None:
    """Rows sharing a reading of a repeating continuous column (NaN and -0.0 included) are one cluster;
    a column that never repeats, or a category, does not group rows."""
    from fourloops.evaluation.multivariate import _clusters

    rng = np.random.default_rng(5)
    readings = rng.normal(size=30)
    readings[0], readings[1] = np.nan, 0.0
    which = rng.integers(0, 30, 300)
    weather = readings[which]
    weather[(which == 1) & (rng.random(300) < 0.5)] = -0.0
    values = np.column_stack([weather, rng.normal(size=300), rng.integers(0, 3, 300)])
    clusters = _clusters(values, [2])
    # as many clusters as readings met, and two rows share one exactly when they share the reading
    assert np.unique(clusters).size == np.unique(which).size
    same = clusters[:, None] == clusters[None, :]
    assert np.array_equal(same, which[:, None] == which[None, :])
    assert np.array_equal(_clusters(values[:, 1:], [1]), np.arange(300))


def test_a_failure_beside_the_classifier_interrupts_its_query_instead_of_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the tests of the windows fail (or Ctrl-C arrives) while the classifier's sample query
    runs beside them, the query is interrupted, not waited for."""
    import threading

    import duckdb

    from fourloops.evaluation import monitor as monitor_module

    started = threading.Event()
    outcome: list[str] = []

    def slow_sample(*args: Any, **kwargs: Any) -> list[None]:
        con = args[4].con  # the current data's scan: a query that takes minutes unless interrupted
        started.set()
        try:
            con.sql("SELECT count(*) FROM range(20000000000) t(i) WHERE hash(i) % 7 = 1").fetchall()
            outcome.append("finished")
        except duckdb.InterruptException:
            outcome.append("interrupted")
        return []

    def failing_assess(*args: Any, **kwargs: Any) -> None:
        started.wait(30)
        raise RuntimeError("the tests failed")

    monkeypatch.setattr(monitor_module, "_multivariate", slow_sample)
    monkeypatch.setattr(monitor_module, "assess", failing_assess)
    rng = np.random.default_rng(14)
    ref, cur = _pair(rng, 200, 200)
    with pytest.raises(RuntimeError, match="the tests failed"):
        fl.monitor(ref, cur)
    assert outcome == ["interrupted"]
