"""Native model formats: every model predicts the same after a save and a load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fourloops.errors import RegistryError, SchemaError
from fourloops.registry.formats import FORMATS, detect_format, load_model, save_model

FEATURES = ["f0", "f1", "f2", "f3"]
N_ROWS = 240
TASKS = ["binary", "multiclass", "regression"]
LGB_PARAMS: dict[str, Any] = {"n_estimators": 15, "num_leaves": 7, "verbose": -1, "n_jobs": 1}


def _data(task: str) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(N_ROWS, len(FEATURES))), columns=FEATURES)
    score = X["f0"] + 0.5 * X["f1"] - 0.3 * X["f2"] + rng.normal(scale=0.3, size=N_ROWS)
    if task == "binary":
        return X, np.where(score > 0, "yes", "no")
    if task == "multiclass":
        return X, np.array(["low", "mid", "high"])[np.digitize(score, [-0.5, 0.5])]
    return X, score.to_numpy()


def _reference(model: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    if task == "regression":
        return np.asarray(model.predict(X))
    proba = model.predict_proba(X)
    return proba[:, 1] if task == "binary" else proba


def _check_round_trip(
    model: Any, task: str, tmp_path: Path, expected_format: str, rtol: float = 1e-12
) -> None:
    X, _ = _data(task)
    before = _reference(model, X, task)
    saved = save_model(model, tmp_path / "model")
    assert saved.format == expected_format
    predictor = load_model(saved.path, saved.format, task=task)
    assert predictor.format == expected_format and predictor.task == task
    assert predictor.feature_names == FEATURES
    after = predictor.predict(X)
    expected_shape = (N_ROWS, 3) if task == "multiclass" else (N_ROWS,)
    assert after.shape == expected_shape
    np.testing.assert_allclose(after, before, rtol=rtol, atol=0 if rtol < 1e-9 else 1e-6)
    np.testing.assert_allclose(predictor.predict(pl.from_pandas(X)), after, rtol=1e-12)
    np.testing.assert_allclose(predictor.predict(X[FEATURES[::-1]]), after, rtol=1e-12)
    np.testing.assert_allclose(predictor.predict(X.to_numpy()), after, rtol=1e-12)
    one = predictor.predict_one(X.iloc[3].to_dict())
    if task == "multiclass":
        assert isinstance(one, list)
        np.testing.assert_allclose(one, after[3], rtol=1e-6)
    else:
        assert isinstance(one, float)
        assert one == pytest.approx(after[3], rel=1e-6)


def _lgb_sklearn(task: str) -> Any:
    X, y = _data(task)
    cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    return cls(**LGB_PARAMS).fit(X, y)


def _lgb_booster(task: str) -> lgb.Booster:
    X, y = _data(task)
    params: dict[str, Any] = {"num_leaves": 7, "verbose": -1, "num_threads": 1}
    if task == "binary":
        params["objective"], y = "binary", (y == "yes").astype(int)
    elif task == "multiclass":
        params["objective"], params["num_class"] = "multiclass", 3
        y = np.unique(y, return_inverse=True)[1]
    else:
        params["objective"] = "regression"
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=15)


class _BoosterAsEstimator:
    """Gives a raw booster the predict/predict_proba the reference helper expects."""

    def __init__(self, booster: lgb.Booster, task: str) -> None:
        self.booster, self.task = booster, task

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.predict(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = np.asarray(self.booster.predict(X))
        return np.column_stack([1 - out, out]) if out.ndim == 1 else out


@pytest.mark.parametrize("task", TASKS)
def test_lightgbm_sklearn_round_trip(task: str, tmp_path: Path) -> None:
    model = _lgb_sklearn(task)
    _check_round_trip(model, task, tmp_path, "lightgbm")
    saved = load_model(tmp_path / "model", "lightgbm", task=task)
    if task != "regression":
        assert saved.classes == list(model.classes_)  # type: ignore[attr-defined]


@pytest.mark.parametrize("task", TASKS)
def test_lightgbm_booster_round_trip(task: str, tmp_path: Path) -> None:
    booster = _lgb_booster(task)
    X, _ = _data(task)
    saved = save_model(booster, tmp_path / "model")
    assert saved.path.name == "model.txt"
    predictor = load_model(saved.path, "lightgbm", task=task)
    expected = _reference(_BoosterAsEstimator(booster, task), X, task)
    np.testing.assert_allclose(predictor.predict(X), expected, rtol=1e-12, atol=0)


def test_lightgbm_saves_identical_bytes(tmp_path: Path) -> None:
    model = _lgb_sklearn("multiclass")
    first = save_model(model, tmp_path / "a")
    second = save_model(model, tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert (tmp_path / "a" / "fourloops-model.json").read_bytes() == (
        tmp_path / "b" / "fourloops-model.json"
    ).read_bytes()
    assert first.meta["classes"] == ["high", "low", "mid"]
    assert first.meta["objective"] == "multiclass"


def test_lightgbm_refuses_a_task_it_does_not_fit(tmp_path: Path) -> None:
    saved = save_model(_lgb_sklearn("multiclass"), tmp_path)
    with pytest.raises(RegistryError, match="does not fit task binary"):
        load_model(saved.path, "lightgbm", task="binary")


@pytest.mark.parametrize("task", TASKS)
def test_xgboost_round_trip(task: str, tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = _data(task)
    params: dict[str, Any] = {"n_estimators": 10, "max_depth": 3, "n_jobs": 1}
    if task == "regression":
        model = xgb.XGBRegressor(**params).fit(X, y)
    else:
        model = xgb.XGBClassifier(**params).fit(X, np.unique(y, return_inverse=True)[1])
    _check_round_trip(model, task, tmp_path, "xgboost")


def _sklearn(task: str) -> Any:
    X, y = _data(task)
    final = LinearRegression() if task == "regression" else LogisticRegression()
    return make_pipeline(StandardScaler(), final).fit(X, y)


@pytest.mark.parametrize("task", TASKS)
def test_sklearn_round_trip(task: str, tmp_path: Path) -> None:
    _check_round_trip(_sklearn(task), task, tmp_path, "sklearn")


def test_sklearn_lgbm_inside_a_pipeline_round_trips(tmp_path: Path) -> None:
    X, y = _data("binary")
    model = make_pipeline(StandardScaler(), lgb.LGBMClassifier(**LGB_PARAMS)).fit(X, y)
    _check_round_trip(model, "binary", tmp_path, "sklearn")


def test_sklearn_model_fitted_on_numpy_takes_names_from_save(tmp_path: Path) -> None:
    X, y = _data("regression")
    model = LinearRegression().fit(X.to_numpy(), y)
    saved = save_model(model, tmp_path, feature_names=FEATURES)
    predictor = load_model(saved.path, "sklearn", task="regression")
    assert predictor.feature_names == FEATURES
    np.testing.assert_allclose(predictor.predict(X), model.predict(X.to_numpy()), rtol=1e-12)
    assert predictor.predict_one(X.iloc[0].to_dict()) == pytest.approx(
        model.predict(X.to_numpy()[:1])[0], rel=1e-12
    )


class CustomClassifier(ClassifierMixin, BaseEstimator):
    """A user-defined estimator: skops must not be trusted to rebuild it."""

    def fit(self, X: Any, y: Any) -> CustomClassifier:
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_sklearn_refuses_untrusted_types(tmp_path: Path) -> None:
    X, y = _data("binary")
    saved = save_model(make_pipeline(StandardScaler(), CustomClassifier()).fit(X, y), tmp_path)
    with pytest.raises(RegistryError, match="untrusted type.*CustomClassifier") as err:
        load_model(saved.path, "sklearn", task="binary")
    assert "\n" not in str(err.value)


def _onnx(task: str, zipmap: bool) -> Any:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    model = _sklearn(task)
    options = {} if task == "regression" else {id(model.steps[-1][1]): {"zipmap": zipmap}}
    onx = skl2onnx.convert_sklearn(
        model,
        initial_types=[("X", FloatTensorType([None, len(FEATURES)]))],
        options=options,
        target_opset=17,
    )
    return model, onx


@pytest.mark.parametrize(
    ("task", "zipmap"),
    [("binary", False), ("binary", True), ("multiclass", False), ("regression", False)],
)
def test_onnx_round_trip(task: str, zipmap: bool, tmp_path: Path) -> None:
    model, onx = _onnx(task, zipmap)
    X, _ = _data(task)
    saved = save_model(onx, tmp_path, feature_names=FEATURES)
    assert saved.format == "onnx"
    predictor = load_model(saved.path, "onnx", task=task)
    assert predictor.feature_names == FEATURES
    expected = _reference(model, X, task)
    np.testing.assert_allclose(predictor.predict(X), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predictor.predict(pl.from_pandas(X)), expected, atol=1e-5)
    one = predictor.predict_one(X.iloc[0].to_dict())
    np.testing.assert_allclose(one, expected[0], rtol=1e-4, atol=1e-5)


def test_detects_formats() -> None:
    assert detect_format(_lgb_sklearn("binary")) == "lightgbm"
    assert detect_format(_lgb_booster("regression")) == "lightgbm"
    assert detect_format(_sklearn("regression")) == "sklearn"
    assert set(FORMATS) == {"lightgbm", "xgboost", "sklearn", "onnx"}
    with pytest.raises(RegistryError, match="cannot save a builtins.dict"):
        detect_format({})


def test_clear_errors(tmp_path: Path) -> None:
    saved = save_model(_lgb_sklearn("regression"), tmp_path)
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: load_model(saved.path, "pickle", task="regression"), RegistryError, "format"),
        (lambda: load_model(saved.path, "lightgbm", task="ranking"), RegistryError, "task"),
        (lambda: load_model(tmp_path / "nope", "lightgbm", task="binary"), RegistryError, "exist"),
    ]
    for call, kind, words in cases:
        with pytest.raises(kind, match=words):
            call()
    predictor = load_model(saved.path, "lightgbm", task="regression")
    with pytest.raises(SchemaError, match="lacks feature\\(s\\) f3"):
        predictor.predict_one({"f0": 1.0, "f1": 1.0, "f2": 1.0})
    with pytest.raises(SchemaError, match="must be numbers"):
        predictor.predict_one({"f0": "a", "f1": 1.0, "f2": 1.0, "f3": 1.0})
    with pytest.raises(SchemaError, match="lacks feature column\\(s\\) f1"):
        predictor.predict(pd.DataFrame({"f0": [1.0]}))
    with pytest.raises(SchemaError, match="3 columns; the model expects 4"):
        predictor.predict(np.zeros((2, 3)))


def test_lightgbm_predict_one_maps_pandas_categories_like_the_frame_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    from fourloops.registry.formats import load_model, save_model

    rng = np.random.default_rng(0)
    cats = ["EWR", "JFK", "LGA", "__unknown__"]
    origin = rng.choice(cats[:3], 600)
    X = pd.DataFrame(
        {
            "origin": pd.Categorical(origin, categories=cats),
            "x": rng.normal(size=600),
        }
    )
    y = ((origin == "JFK") ^ (X["x"] > 0.5)).astype(int)
    model = lgb.LGBMClassifier(n_estimators=20, min_child_samples=5, verbose=-1).fit(X, y)
    saved = save_model(model, tmp_path)
    predictor = load_model(saved.path, saved.format, task="binary", meta=saved.meta)
    frame = predictor.predict(X.head(50))
    rows = [predictor.predict_one(r) for r in X.head(50).astype({"origin": str}).to_dict("records")]
    assert np.allclose(frame, rows, rtol=1e-12)
    # An unseen category is treated as missing, exactly as the frame path does.
    unseen = pd.DataFrame({"origin": pd.Categorical([None], categories=cats), "x": [0.1]})
    assert np.isclose(predictor.predict(unseen)[0], predictor.predict_one({"origin": "ORD", "x": 0.1}))
