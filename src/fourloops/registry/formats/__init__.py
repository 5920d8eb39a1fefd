"""Saving and loading models in their native formats, predicting through one interface.

>>> import tempfile
>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> X = np.array([[0.0], [1.0], [2.0]])
>>> model = LinearRegression().fit(X, [1.0, 3.0, 5.0])
>>> saved = save_model(model, tempfile.mkdtemp(), feature_names=["x"])
>>> saved.format, saved.path.name
('sklearn', 'model.skops')
>>> predictor = load_model(saved.path, saved.format, task="regression")
>>> round(predictor.predict_one({"x": 3.0}), 6)
7.0
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fourloops.contracts.encoder import InputEncoder
from fourloops.errors import RegistryError
from fourloops.registry.formats.base import (
    ModelFormat,
    Predictor,
    SavedModel,
    Task,
    check_task,
    read_meta,
    write_meta,
)
from fourloops.registry.formats.lightgbm import LightGBMFormat
from fourloops.registry.formats.onnx import ONNXFormat
from fourloops.registry.formats.policy import POLICY_META, PolicyPredictor, policy_meta
from fourloops.registry.formats.sklearn import SklearnFormat
from fourloops.registry.formats.xgboost import XGBoostFormat

__all__ = [
    "FORMATS",
    "ModelFormat",
    "PolicyPredictor",
    "Predictor",
    "SavedModel",
    "Task",
    "detect_format",
    "load_model",
    "save_model",
]

#: Every supported format by name, in detection order (specific libraries before sklearn).
FORMATS: dict[str, ModelFormat] = {
    fmt.name: fmt for fmt in (LightGBMFormat(), XGBoostFormat(), ONNXFormat(), SklearnFormat())
}


def _format(name: str) -> ModelFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise RegistryError(f"unknown model format {name!r}; expected one of {', '.join(FORMATS)}") from None


def detect_format(model: object) -> str:
    """The name of the format that saves ``model``, or a :class:`RegistryError`."""
    for name, fmt in FORMATS.items():
        if fmt.handles(model):
            return name
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    raise RegistryError(f"cannot save a {kind}: supported formats are {', '.join(FORMATS)}")


def save_model(
    model: object,
    folder: str | os.PathLike[str],
    *,
    format: str | None = None,
    feature_names: Sequence[str] | None = None,
    inputs: InputEncoder | None = None,
    policy: Sequence[str] | None = None,
) -> SavedModel:
    """Write ``model`` into ``folder`` in its native format, plus its metadata file.

    ``feature_names`` records the input columns when the model cannot (numpy-
    trained estimators, single-tensor ONNX graphs). ``inputs`` is the encoder
    the model was trained through; it is stored in the metadata and serving
    encodes requests with it. ``policy`` names the actions of a decision model
    whose reward model ``model`` is (its ``inputs`` hold the action input).
    """
    fmt = _format(format if format is not None else detect_format(model))
    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RegistryError(f"cannot create model folder {target}: {err}") from err
    saved = fmt.save(model, target)
    meta = dict(saved.meta)
    if feature_names is not None:
        meta["feature_names"] = list(feature_names)
    if inputs is not None:
        meta["inputs"] = inputs.to_dict()
        meta.setdefault("feature_names", inputs.names)
    if policy is not None:
        meta[POLICY_META] = policy_meta(policy)
    write_meta(target, {"format": saved.format, **meta})
    return SavedModel(path=saved.path, format=saved.format, meta=meta)


def load_model(
    path: str | os.PathLike[str],
    format: str,
    *,
    task: str,
    meta: Mapping[str, Any] | None = None,
) -> Predictor:
    """Load a saved model (file or folder) as a :class:`Predictor` for ``task``.

    ``meta`` defaults to the metadata file beside the model, if there is one. For
    ``task="policy"`` the saved reward model is loaded as a regression model and
    served as a :class:`PolicyPredictor` (the predicted reward of every action).
    """
    fmt = _format(format)
    checked: Task = check_task(task)
    model_path = Path(path)
    if not model_path.exists():
        raise RegistryError(f"model file {model_path} does not exist")
    meta = meta if meta is not None else read_meta(model_path)
    policy = checked == Task.POLICY
    if policy and not meta.get(POLICY_META):
        raise RegistryError(f"model {model_path} is not a decision model (its metadata names no actions)")
    predictor = fmt.load(model_path, Task.REGRESSION if policy else checked, meta)
    if meta.get("inputs"):
        encoder = InputEncoder.from_dict(meta["inputs"])
        if predictor.feature_names is not None and predictor.feature_names != encoder.names:
            raise RegistryError(
                f"model {model_path} takes {predictor.feature_names} but its input encoder gives "
                f"{encoder.names}"
            )
        predictor.encoder = encoder
    if policy:
        return PolicyPredictor(predictor, meta)
    return predictor
