"""MLflow model folders, written by hand the way MLflow writes them (no mlflow needed)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fourloops.errors import RegistryError, SourceError
from fourloops.registry.formats import load_model
from fourloops.registry.mlflow_import import ImportedModel, import_mlflow_model

FEATURES = ["f0", "f1", "f2"]
RUN_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=FEATURES)
    return X, (X["f0"] - X["f1"] > 0).astype(int).to_numpy()


def _write_mlmodel(folder: Path, flavor: str, conf: dict[str, Any], data: str) -> None:
    """An ``MLmodel`` file shaped like MLflow 2.x writes it."""
    inputs = json.dumps([{"type": "double", "name": n, "required": True} for n in FEATURES])
    lines = [
        "artifact_path: model",
        "flavors:",
        f"  {flavor}:",
        "    code: null",
        *(f"    {key}: {value}" for key, value in conf.items()),
        "  python_function:",
        f"    data: {data}",
        "    env:",
        "      conda: conda.yaml",
        "      virtualenv: python_env.yaml",
        f"    loader_module: mlflow.{flavor}",
        "    python_version: 3.11.9",
        "mlflow_version: 2.14.1",
        "model_size_bytes: 1234",
        "model_uuid: 5b7e0e6cbb6d4f4c9d1f1c3e8f0a2b4c",
        f"run_id: {RUN_ID}",
        "signature:",
        f"  inputs: '{inputs}'",
        '  outputs: \'[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]\'',
        "  params: null",
        "utc_time_created: '2024-06-01 12:34:56.789012'",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _lightgbm_folder(tmp_path: Path) -> tuple[Path, lgb.Booster]:
    X, y = _data()
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "num_leaves": 7},
        lgb.Dataset(X, y),
        num_boost_round=10,
    )
    folder = tmp_path / "mlruns" / "model"
    conf = {"data": "model.lgb", "lgb_version": "4.3.0", "model_class": "lightgbm.basic.Booster"}
    _write_mlmodel(folder, "lightgbm", conf, "model.lgb")
    booster.save_model(str(folder / "model.lgb"))
    return folder, booster


def _check_imports_and_predicts(imported: ImportedModel, model: Any, tmp_path: Path) -> None:
    X, _ = _data()
    saved = imported.save(tmp_path / "saved")
    predictor = load_model(saved.path, saved.format, task="binary")
    assert predictor.feature_names == FEATURES
    expected = model.predict(X) if isinstance(model, lgb.Booster) else model.predict_proba(X)
    expected = expected if expected.ndim == 1 else expected[:, 1]
    np.testing.assert_allclose(predictor.predict(X), expected, rtol=1e-6, atol=1e-6)


def test_lightgbm_flavor(tmp_path: Path) -> None:
    folder, booster = _lightgbm_folder(tmp_path)
    imported = import_mlflow_model(folder)
    assert imported.format == "lightgbm"
    assert imported.model == folder / "model.lgb"
    assert imported.signature == {name: "double" for name in FEATURES}
    assert imported.metadata["run_id"] == RUN_ID
    assert imported.metadata["artifact_path"] == "model"
    assert imported.metadata["mlflow_version"] == "2.14.1"
    assert imported.metadata["utc_time_created"] == "2024-06-01 12:34:56.789012"
    _check_imports_and_predicts(imported, booster, tmp_path)


def test_xgboost_flavor(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = _data()
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, y)
    folder = tmp_path / "model"
    conf = {
        "data": "model.xgb",
        "model_class": "xgboost.sklearn.XGBClassifier",
        "model_format": "xgb",
        "xgb_version": "2.0.3",
    }
    _write_mlmodel(folder, "xgboost", conf, "model.xgb")
    model.save_model(str(folder / "model.ubj"))
    (folder / "model.ubj").rename(folder / "model.xgb")  # MLflow's default file name
    imported = import_mlflow_model(folder)
    assert imported.format == "xgboost"
    _check_imports_and_predicts(imported, model, tmp_path)


def test_onnx_flavor(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    X, y = _data()
    model = LogisticRegression().fit(X, y)
    onx = skl2onnx.convert_sklearn(
        model,
        initial_types=[("X", FloatTensorType([None, 3]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    folder = tmp_path / "model"
    conf = {"data": "model.onnx", "onnx_version": "1.16.0", "providers": "[CPUExecutionProvider]"}
    _write_mlmodel(folder, "onnx", conf, "model.onnx")
    (folder / "model.onnx").write_bytes(onx.SerializeToString())
    imported = import_mlflow_model(folder)
    assert imported.format == "onnx"
    _check_imports_and_predicts(imported, model, tmp_path)


def _sklearn_folder(tmp_path: Path) -> tuple[Path, LogisticRegression]:
    X, y = _data()
    model = LogisticRegression().fit(X, y)
    folder = tmp_path / "model"
    conf = {
        "pickled_model": "model.pkl",
        "serialization_format": "cloudpickle",
        "sklearn_version": "1.4.2",
    }
    _write_mlmodel(folder, "sklearn", conf, "model.pkl")
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    return folder, model


def test_sklearn_pickle_needs_explicit_opt_in(tmp_path: Path) -> None:
    folder, _ = _sklearn_folder(tmp_path)
    with pytest.raises(RegistryError, match="pickle.*arbitrary code.*allow_pickle=True") as err:
        import_mlflow_model(folder)
    assert "\n" not in str(err.value)


def test_sklearn_pickle_is_resaved_with_skops(tmp_path: Path) -> None:
    folder, model = _sklearn_folder(tmp_path)
    imported = import_mlflow_model(folder, allow_pickle=True)
    assert imported.format == "sklearn"
    assert isinstance(imported.model, LogisticRegression)
    assert imported.save(tmp_path / "saved").path.name == "model.skops"
    _check_imports_and_predicts(imported, model, tmp_path)


def test_pickled_lightgbm_wrapper_needs_opt_in(tmp_path: Path) -> None:
    X, y = _data()
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y)
    folder = tmp_path / "model"
    conf = {"data": "model.pkl", "model_class": "lightgbm.sklearn.LGBMClassifier"}
    _write_mlmodel(folder, "lightgbm", conf, "model.pkl")
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    with pytest.raises(RegistryError, match="allow_pickle"):
        import_mlflow_model(folder)
    imported = import_mlflow_model(folder, allow_pickle=True)
    assert imported.format == "lightgbm"
    _check_imports_and_predicts(imported, model, tmp_path)


def test_folder_without_mlmodel(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not an MLflow model folder: it has no MLmodel"):
        import_mlflow_model(tmp_path)
    with pytest.raises(SourceError, match="does not exist"):
        import_mlflow_model(tmp_path / "absent")


def test_unknown_flavor(tmp_path: Path) -> None:
    _write_mlmodel(tmp_path, "pytorch", {"pytorch_version": "2.3.0"}, "data")
    with pytest.raises(RegistryError, match="no supported flavor \\(found pytorch, python_function"):
        import_mlflow_model(tmp_path)


def test_missing_model_file(tmp_path: Path) -> None:
    folder, _ = _lightgbm_folder(tmp_path)
    (folder / "model.lgb").unlink()
    with pytest.raises(SourceError, match="model.lgb \\(flavor lightgbm\\) is missing"):
        import_mlflow_model(folder)


def test_model_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    _write_mlmodel(tmp_path / "m", "onnx", {"data": "../secret.onnx"}, "x")
    (tmp_path / "secret.onnx").write_bytes(b"x")
    with pytest.raises(SourceError, match="outside its folder"):
        import_mlflow_model(tmp_path / "m")


def test_unreadable_mlmodel(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: [unclosed\n", encoding="utf-8")
    with pytest.raises(SourceError, match="cannot read .*MLmodel") as err:
        import_mlflow_model(tmp_path)
    assert "\n" not in str(err.value)
    (tmp_path / "MLmodel").write_text("run_id: x\n", encoding="utf-8")
    with pytest.raises(SourceError, match="no 'flavors' mapping"):
        import_mlflow_model(tmp_path)
