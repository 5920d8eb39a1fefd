"""LightGBM models in LightGBM's own text format (``model.txt``).

Both :class:`lightgbm.Booster` and the scikit-learn wrappers
(``LGBMClassifier``, ``LGBMRegressor``) are saved as the booster's text model,
which is exact (17 significant digits) and byte-for-byte deterministic. The
wrapper's class labels are kept in the metadata so probabilities can be named.
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
    row_vector,
    shape_output,
    to_frame,
    to_matrix,
)
from fourloops.registry.formats.lightgbm_fast import fast_single_row

__all__ = ["LightGBMFormat", "LightGBMPredictor"]

MODEL_FILE = "model.txt"
#: Threads for a single-row prediction: an OpenMP team costs more than one row takes.
PREDICT_ONE_THREADS = 1


def _objective(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("objective="):
            return line.removeprefix("objective=").split(" ", 1)[0]
        if line.startswith("Tree="):
            break
    return None


class LightGBMFormat:
    """Save and load LightGBM boosters and their scikit-learn wrappers."""

    name = "lightgbm"

    def handles(self, model: object) -> bool:
        return type(model).__module__.startswith("lightgbm.")

    def save(self, model: object, folder: Path) -> SavedModel:
        import lightgbm as lgb

        meta: dict[str, Any] = {"library_version": lgb.__version__}
        if isinstance(model, lgb.LGBMModel):
            if not model.__sklearn_is_fitted__():
                raise RegistryError(f"cannot save an unfitted {type(model).__name__}")
            booster = model.booster_
            meta["model_class"] = type(model).__name__
            if hasattr(model, "classes_"):
                meta["classes"] = plain_list(model.classes_)
        elif isinstance(model, lgb.Booster):
            booster = model
            meta["model_class"] = "Booster"
        else:
            raise RegistryError(f"not a LightGBM model: {type(model).__name__}")
        text = booster.model_to_string()
        meta["objective"] = _objective(text)
        meta["feature_names"] = list(booster.feature_name())
        meta["num_model_per_iteration"] = booster.num_model_per_iteration()
        path = folder / MODEL_FILE
        path.write_text(text, encoding="utf-8", newline="\n")
        return SavedModel(path=path, format=self.name, meta=meta)

    def load(self, path: Path, task: Task, meta: Mapping[str, Any]) -> LightGBMPredictor:
        import lightgbm as lgb

        if path.is_dir():
            path = path / MODEL_FILE
        try:
            booster = lgb.Booster(model_file=str(path))
        except (lgb.basic.LightGBMError, OSError) as err:
            raise RegistryError(f"cannot load LightGBM model {path}: {err}") from err
        per_iteration = booster.num_model_per_iteration()
        if (task == "multiclass") != (per_iteration > 1):
            raise RegistryError(
                f"LightGBM model {path} has {per_iteration} output(s) per row; it does not fit task {task}"
            )
        return LightGBMPredictor(booster, task, classes=meta.get("classes"))


class LightGBMPredictor(Predictor):
    """A LightGBM booster; ``predict_one`` feeds a 1 x n float64 array straight in."""

    format = "lightgbm"

    def __init__(self, booster: Any, task: Task, classes: list[Any] | None = None) -> None:
        super().__init__(task, booster.feature_name())
        self.booster = booster
        self.classes = classes
        # Pandas categorical columns need the frame path; everything else goes as numbers.
        self._categorical = bool(getattr(booster, "pandas_categorical", None))
        # For single rows, map each categorical column's value to the code LightGBM learnt
        # (its position in the training frame's categories); unknown values become NaN,
        # which LightGBM treats as missing.
        self._codes: dict[str, dict[Any, float]] = {}
        if self._categorical:
            indices = booster.params.get("categorical_feature") or []
            if isinstance(indices, str):
                indices = [int(i) for i in indices.split(",") if i]
            names = booster.feature_name()
            for index, categories in zip(indices, booster.pandas_categorical, strict=False):
                self._codes[names[int(index)]] = {c: float(i) for i, c in enumerate(categories)}
        outputs = booster.num_model_per_iteration() if task == "multiclass" else 1
        self._fast = fast_single_row(booster, outputs=outputs, num_threads=PREDICT_ONE_THREADS)

    def predict(self, X: Any) -> np.ndarray:
        if self._categorical and hasattr(X, "columns"):
            data = to_frame(X, self.feature_names)
        else:
            data = to_matrix(X, self.feature_names)
        return shape_output(self.booster.predict(data), self.task)

    def predict_one(self, row: Mapping[str, Any]) -> float | list[float]:
        if self.encoder is not None:  # trained by fourloops: the stored encoder gives the codes
            if self._fast is not None:
                out = self._fast.predict(self.encoder.row(row))
                return out if self.task == "multiclass" else out[0]
            raw = self.booster.predict(self._row(row), num_threads=PREDICT_ONE_THREADS)
            return [float(v) for v in raw[0]] if self.task == "multiclass" else float(raw[0])
        if self._codes:  # an imported model: category codes read back from the booster
            row = {
                **row,
                **{
                    name: codes.get(row[name], np.nan) if row.get(name) is not None else np.nan
                    for name, codes in self._codes.items()
                    if name in row
                },
            }
        raw = self.booster.predict(row_vector(row, self._names()), num_threads=PREDICT_ONE_THREADS)
        if self.task == "multiclass":
            return [float(v) for v in raw[0]]
        return float(raw[0])
