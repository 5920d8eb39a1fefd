"""XGBoost models in XGBoost's own format (UBJSON ``model.ubj``; JSON also loads).

XGBoost is an optional extra (``pip install fourloops[xgboost]``) and is
imported only when an XGBoost model is saved or loaded. The scikit-learn
wrappers are saved through their booster; class labels go in the metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fourloops.errors import RegistryError
from fourloops.registry.formats.base import (
    Predictor,
    SavedModel,
    Task,
    plain_list,
    shape_output,
    to_frame,
    to_matrix,
)

__all__ = ["XGBoostFormat", "XGBoostPredictor"]

MODEL_FILE = "model.ubj"
#: Threads per prediction: servers scale with worker processes, not threads.
PREDICT_THREADS = 1


def _import() -> Any:
    try:
        import xgboost
    except ImportError as err:
        raise RegistryError(
            "XGBoost models need the xgboost package: pip install 'fourloops[xgboost]'"
        ) from err
    return xgboost


class XGBoostFormat:
    """Save and load XGBoost boosters and their scikit-learn wrappers."""

    name = "xgboost"

    def handles(self, model: object) -> bool:
        return type(model).__module__.startswith("xgboost.")

    def save(self, model: object, folder: Path) -> SavedModel:
        xgb = _import()
        meta: dict[str, Any] = {"library_version": xgb.__version__}
        if isinstance(model, xgb.XGBModel):
            booster = model.get_booster()
            meta["model_class"] = type(model).__name__
            if hasattr(model, "classes_"):
                meta["classes"] = plain_list(model.classes_)
        elif isinstance(model, xgb.Booster):
            booster = model
            meta["model_class"] = "Booster"
        else:
            raise RegistryError(f"not an XGBoost model: {type(model).__name__}")
        meta["feature_names"] = list(booster.feature_names or [])
        path = folder / MODEL_FILE
        booster.save_model(str(path))
        return SavedModel(path=path, format=self.name, meta=meta)

    def load(self, path: Path, task: Task, meta: Mapping[str, Any]) -> XGBoostPredictor:
        xgb = _import()
        if path.is_dir():
            path = path / MODEL_FILE
        try:
            # From a buffer: XGBoost then detects JSON or UBJSON by content, whatever the
            # file is called (MLflow writes ``model.xgb``).
            booster = xgb.Booster(params={"nthread": PREDICT_THREADS})
            booster.load_model(bytearray(path.read_bytes()))
        except (xgb.core.XGBoostError, OSError) as err:
            raise RegistryError(f"cannot load XGBoost model {path}: {err}") from err
        names = booster.feature_names or meta.get("feature_names") or None
        return XGBoostPredictor(booster, task, names, classes=meta.get("classes"))


class XGBoostPredictor(Predictor):
    """An XGBoost booster, predicting in place (no DMatrix) from numpy or pandas."""

    format = "xgboost"

    def __init__(self, booster: Any, task: Task, names: list[str] | None, classes: list[Any] | None) -> None:
        super().__init__(task, names)
        self.booster = booster
        self.classes = classes
        self._categorical = "c" in (booster.feature_types or [])

    def predict(self, X: Any) -> np.ndarray:
        if self._categorical and hasattr(X, "columns"):
            data = to_frame(X, self.feature_names)
        else:
            data = to_matrix(X, self.feature_names)
        return shape_output(self.booster.inplace_predict(data, validate_features=False), self.task)

    def predict_one(self, row: Mapping[str, Any]) -> float | list[float]:
        raw = self.booster.inplace_predict(self._row(row), validate_features=False)
        out = shape_output(raw, self.task)
        return [float(v) for v in out[0]] if self.task == "multiclass" else float(out[0])
