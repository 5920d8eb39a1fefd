"""scikit-learn estimators and pipelines through skops (no pickle).

Loading never trusts a file blindly: the types the file would build are read
first (:func:`skops.io.get_untrusted_types`) and only those from
scikit-learn, numpy, scipy, LightGBM and XGBoost are allowed; anything else
(a custom class, a function from user code) is refused with its name.
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

__all__ = ["TRUSTED_MODULES", "SklearnFormat", "SklearnPredictor", "trusted_types"]

MODEL_FILE = "model.skops"
#: Top-level modules whose types a skops file may contain.
TRUSTED_MODULES = frozenset({"sklearn", "numpy", "scipy", "lightgbm", "xgboost"})
#: Plain standard-library containers the wrappers above use internally.
TRUSTED_EXTRA = frozenset({"collections.OrderedDict"})


def trusted_types(path: Path) -> list[str]:
    """The types ``path`` needs, if all are allowed; else a :class:`RegistryError`."""
    import skops.io as sio

    try:
        needed = sio.get_untrusted_types(file=path)
    except Exception as err:  # skops raises assorted errors on a bad archive
        raise RegistryError(f"cannot read skops model {path}: {err}") from err
    refused = [
        name for name in needed if name.split(".", 1)[0] not in TRUSTED_MODULES and name not in TRUSTED_EXTRA
    ]
    if refused:
        raise RegistryError(
            f"refusing to load {path}: it contains untrusted type(s) {', '.join(refused)} "
            f"(allowed: types from {', '.join(sorted(TRUSTED_MODULES))})"
        )
    return list(needed)


class SklearnFormat:
    """Save and load scikit-learn estimators (and pipelines) with skops."""

    name = "sklearn"

    def handles(self, model: object) -> bool:
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def save(self, model: object, folder: Path) -> SavedModel:
        import sklearn
        import skops
        import skops.io as sio

        meta: dict[str, Any] = {
            "library_version": sklearn.__version__,
            "skops_version": skops.__version__,
            "model_class": type(model).__name__,
        }
        if hasattr(model, "classes_"):
            meta["classes"] = plain_list(model.classes_)
        if hasattr(model, "feature_names_in_"):
            meta["feature_names"] = plain_list(model.feature_names_in_)
        path = folder / MODEL_FILE
        sio.dump(model, path)
        return SavedModel(path=path, format=self.name, meta=meta)

    def load(self, path: Path, task: Task, meta: Mapping[str, Any]) -> SklearnPredictor:
        import skops.io as sio

        if path.is_dir():
            path = path / MODEL_FILE
        trusted = trusted_types(path)
        try:
            model = sio.load(path, trusted=trusted)
        except Exception as err:  # skops raises assorted errors on a bad archive
            raise RegistryError(f"cannot load skops model {path}: {err}") from err
        return SklearnPredictor(model, task, meta.get("feature_names"))


class SklearnPredictor(Predictor):
    """A scikit-learn estimator: ``predict_proba`` for classifiers, ``predict`` otherwise."""

    format = "sklearn"

    def __init__(self, model: Any, task: Task, feature_names: list[str] | None = None) -> None:
        fitted_names = getattr(model, "feature_names_in_", None)
        # Fitted on a frame: feed frames (column names, string columns); else numbers.
        self._frame = fitted_names is not None
        super().__init__(task, plain_list(fitted_names) if self._frame else feature_names)
        self.model = model
        self.classes = plain_list(model.classes_) if hasattr(model, "classes_") else None
        self._method = model.predict if task == "regression" else model.predict_proba

    def predict(self, X: Any) -> np.ndarray:
        if self._frame:
            data = to_frame(X, self.feature_names)
        else:
            data = to_matrix(X, self.feature_names)
        return shape_output(self._method(data), self.task)

    def predict_one(self, row: Mapping[str, Any]) -> float | list[float]:
        if not self._frame or self.feature_names is None:
            return super().predict_one(row)
        import pandas as pd

        try:
            frame = pd.DataFrame({name: [row[name]] for name in self.feature_names})
        except KeyError:
            return super().predict_one(row)  # raises the SchemaError naming what is missing
        out = shape_output(self._method(frame), self.task)
        return [float(v) for v in out[0]] if self.task == "multiclass" else float(out[0])
