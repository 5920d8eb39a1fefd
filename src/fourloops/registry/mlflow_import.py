"""Read an existing MLflow model folder without depending on MLflow.

The folder's ``MLmodel`` file (YAML) names the flavors the model was saved
with; the first supported one is used, native formats before pickles:

=========  ====================================================  ================
flavor     model file                                            becomes
=========  ====================================================  ================
lightgbm   ``flavors.lightgbm.data`` (text model, or a pickle)   ``lightgbm``
xgboost    ``flavors.xgboost.data`` (json/ubj/xgb)                ``xgboost``
onnx       ``flavors.onnx.data``                                  ``onnx``
sklearn    ``flavors.sklearn.pickled_model`` (a pickle)          ``sklearn``
=========  ====================================================  ================

Pickles run code when they are read, so they are loaded only with
``allow_pickle=True``; the object is then re-saved in a safe native format
(skops for scikit-learn) by :meth:`ImportedModel.save`.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import yaml

from fourloops.errors import RegistryError, SourceError
from fourloops.registry.formats import SavedModel, save_model

__all__ = ["SUPPORTED_FLAVORS", "ImportedModel", "import_mlflow_model"]

MLMODEL_FILE = "MLmodel"
#: Flavors fourloops reads, in order of preference, and the key naming their model file.
SUPPORTED_FLAVORS: dict[str, str] = {
    "lightgbm": "data",
    "xgboost": "data",
    "onnx": "data",
    "sklearn": "pickled_model",
}
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_METADATA_KEYS = ("run_id", "artifact_path", "mlflow_version", "utc_time_created", "model_uuid")


@dataclass(frozen=True)
class ImportedModel:
    """A model read from an MLflow folder.

    ``model`` is the path of a native model file, or the loaded object when
    the folder held a pickle. ``signature`` maps input column names to their
    MLflow types, in order, when the ``MLmodel`` file has a column signature.
    """

    model: Any
    format: str
    signature: dict[str, str] | None
    metadata: dict[str, str | None] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str] | None:
        """The signature's input columns, in order."""
        return list(self.signature) if self.signature else None

    def save(self, folder: str | os.PathLike[str]) -> SavedModel:
        """Write the model into ``folder`` in its native fourloops format."""
        model = _load_native(self.model, self.format) if isinstance(self.model, Path) else self.model
        return save_model(model, folder, format=self.format, feature_names=self.feature_names)


def _load_native(path: Path, format: str) -> Any:
    """The library object for a native model file (re-saved under fourloops' names)."""
    try:
        if format == "lightgbm":
            import lightgbm as lgb

            return lgb.Booster(model_file=str(path))
        if format == "xgboost":
            import xgboost as xgb

            booster = xgb.Booster()
            booster.load_model(bytearray(path.read_bytes()))  # JSON or UBJSON, any name
            return booster
        import onnx

        return onnx.load(str(path))
    except ImportError as err:
        raise RegistryError(f"importing a {format} model needs {err.name}: {err}") from err
    except Exception as err:  # each library raises its own error types on a bad file
        raise SourceError(f"cannot read {format} model {path}: {err}") from err


def _read_mlmodel(folder: Path) -> dict[str, Any]:
    mlmodel = folder / MLMODEL_FILE
    if not folder.is_dir():
        raise SourceError(f"MLflow model folder {folder} does not exist")
    if not mlmodel.is_file():
        raise SourceError(f"{folder} is not an MLflow model folder: it has no {MLMODEL_FILE} file")
    try:
        document = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = str(err).splitlines()[0]
        raise SourceError(f"cannot read {mlmodel}: {reason}") from err
    if not isinstance(document, dict) or not isinstance(document.get("flavors"), dict):
        raise SourceError(f"{mlmodel} has no 'flavors' mapping")
    return document


def _signature(document: dict[str, Any], mlmodel: Path) -> dict[str, str] | None:
    inputs = (document.get("signature") or {}).get("inputs")
    if not inputs:
        return None
    try:
        specs = json.loads(inputs) if isinstance(inputs, str) else inputs
    except ValueError as err:
        raise SourceError(f"{mlmodel} has an unreadable signature: {err}") from err
    columns = {
        str(spec["name"]): str(spec.get("type", "unknown"))
        for spec in specs
        if isinstance(spec, dict) and spec.get("name") is not None
    }
    return columns or None


def _model_file(folder: Path, flavor: str, conf: Any) -> Path:
    key = SUPPORTED_FLAVORS[flavor]
    name = conf.get(key) if isinstance(conf, dict) else None
    if not isinstance(name, str) or not name:
        raise SourceError(f"MLflow flavor {flavor} in {folder} does not name its model file ({key})")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise SourceError(f"MLflow flavor {flavor} points outside its folder: {name}")
    if not path.is_file():
        raise SourceError(f"MLflow model file {path} (flavor {flavor}) is missing")
    return path


def _is_pickle(flavor: str, path: Path, conf: dict[str, Any]) -> bool:
    if flavor == "sklearn":
        return True
    model_class = str(conf.get("model_class", ""))
    return path.suffix in _PICKLE_SUFFIXES or (
        flavor == "lightgbm" and bool(model_class) and not model_class.endswith("Booster")
    )


def _unpickle(path: Path, flavor: str, allow_pickle: bool) -> Any:
    if not allow_pickle:
        raise RegistryError(
            f"{path} is a pickle, and loading a pickle can run arbitrary code; "
            "import it only if you trust its source, with allow_pickle=True "
            "(command line: --allow-pickle)"
        )
    try:
        with path.open("rb") as handle:
            model = joblib.load(handle) if path.suffix == ".joblib" else pickle.load(handle)
    except Exception as err:  # unpickling can raise anything
        raise SourceError(f"cannot unpickle {path}: {type(err).__name__}: {err}") from err
    from sklearn.base import BaseEstimator

    if flavor == "sklearn" and not isinstance(model, BaseEstimator):
        raise RegistryError(f"{path} holds a {type(model).__name__}, not a scikit-learn estimator")
    return model


def import_mlflow_model(path: str | os.PathLike[str], *, allow_pickle: bool = False) -> ImportedModel:
    """Read the MLflow model folder at ``path`` (the one holding ``MLmodel``)."""
    folder = Path(path)
    document = _read_mlmodel(folder)
    flavors: dict[str, Any] = document["flavors"]
    flavor = next((name for name in SUPPORTED_FLAVORS if name in flavors), None)
    if flavor is None:
        raise RegistryError(
            f"MLflow model {folder} has no supported flavor (found {', '.join(flavors) or 'none'}; "
            f"supported: {', '.join(SUPPORTED_FLAVORS)})"
        )
    conf = flavors[flavor] if isinstance(flavors[flavor], dict) else {}
    model_path = _model_file(folder, flavor, conf)
    model: Any = model_path
    if _is_pickle(flavor, model_path, conf):
        model = _unpickle(model_path, flavor, allow_pickle)
    metadata = {
        key: (str(document[key]) if document.get(key) is not None else None) for key in _METADATA_KEYS
    }
    metadata["flavor"] = flavor
    return ImportedModel(
        model=model,
        format=flavor,
        signature=_signature(document, folder / MLMODEL_FILE),
        metadata=metadata,
    )
