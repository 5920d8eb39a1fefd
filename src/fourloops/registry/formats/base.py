"""What every model format provides, and the uniform :class:`Predictor` it loads into."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fourloops.contracts.encoder import InputEncoder
from fourloops.definitions.model import Task
from fourloops.errors import RegistryError, SchemaError

__all__ = [
    "META_FILE",
    "TASKS",
    "ModelFormat",
    "Predictor",
    "SavedModel",
    "Task",
    "check_task",
    "plain_list",
    "read_meta",
    "row_vector",
    "shape_output",
    "to_frame",
    "to_matrix",
    "write_meta",
]

#: The task names, in declaration order (:class:`fourloops.definitions.Task`).
TASKS: tuple[str, ...] = tuple(t.value for t in Task)
#: The side file a saved model's metadata is written to (sorted JSON, deterministic).
META_FILE = "fourloops-model.json"


@dataclass(frozen=True)
class SavedModel:
    """A model written in its native format: the model file, format name and metadata."""

    path: Path
    format: str
    meta: dict[str, Any] = field(default_factory=dict)


class ModelFormat(Protocol):
    """One native model format: recognise, save and load."""

    name: str

    def handles(self, model: object) -> bool: ...

    def save(self, model: object, folder: Path) -> SavedModel: ...

    def load(self, path: Path, task: Task, meta: Mapping[str, Any]) -> Predictor: ...


class Predictor:
    """A loaded model behind one interface, whatever its format.

    ``predict(X)`` takes a pandas or Polars DataFrame (columns picked by name)
    or a 2-D numpy array (columns in ``feature_names`` order) and returns, per
    task, the positive-class probability (binary, 1-D), the n x K probability
    matrix (multiclass) or the prediction (regression, 1-D). ``predict_one``
    does the same for one mapping, on a path tuned for single requests.
    """

    format: str = ""

    def __init__(self, task: Task, feature_names: Sequence[str] | None) -> None:
        self.task: Task = check_task(task)
        self.feature_names: list[str] | None = list(feature_names) if feature_names is not None else None
        #: How one request's values become the model's numbers; set from the artifact's
        #: metadata when it was trained by fourloops (training encoded its batches the same way).
        self.encoder: InputEncoder | None = None

    def __repr__(self) -> str:
        n = len(self.feature_names) if self.feature_names is not None else "?"
        return f"{type(self).__name__}(format={self.format!r}, task={self.task!r}, features={n})"

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for a batch (see the class docstring for shapes)."""
        raise NotImplementedError

    def predict_one(self, row: Mapping[str, Any]) -> float | list[float]:
        """The prediction for one row: a float, or K probabilities for multiclass."""
        out = self.predict(self._row(row))
        return _one(out, self.task)

    def _row(self, row: Mapping[str, Any], dtype: type = np.float64) -> np.ndarray:
        """One request as a 1 x n array: through the stored encoder, or the values as numbers."""
        if self.encoder is not None:
            return np.array([self.encoder.row(row)], dtype=dtype)
        return row_vector(row, self._names(), dtype)

    def _names(self) -> list[str]:
        if self.feature_names is None:
            raise SchemaError(f"this {self.format} model does not record its feature names")
        return self.feature_names


def check_task(task: str) -> Task:
    """``task`` as a :class:`Task` if it is one of :data:`TASKS`, else a clear error."""
    if task not in TASKS:
        raise RegistryError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return Task(task)


def _one(out: np.ndarray, task: Task) -> float | list[float]:
    if task == "multiclass":
        return [float(v) for v in out[0]]
    return float(out[0])


def _missing(row: Mapping[str, Any], names: Sequence[str]) -> SchemaError:
    missing = [name for name in names if name not in row]
    return SchemaError(f"input lacks feature(s) {', '.join(missing)}")


def row_vector(row: Mapping[str, Any], names: Sequence[str], dtype: type = np.float64) -> np.ndarray:
    """One mapping as a 1 x n array in ``names`` order (no DataFrame on this path)."""
    try:
        values = [row[name] for name in names]
    except KeyError:
        raise _missing(row, names) from None
    try:
        return np.array([values], dtype=dtype)
    except (TypeError, ValueError) as err:
        raise SchemaError(f"input features must be numbers: {err}") from err


def _is_polars(X: Any) -> bool:
    return type(X).__module__.startswith("polars")


def to_frame(X: Any, names: Sequence[str] | None) -> Any:
    """A pandas DataFrame with ``names`` in order (numpy input gets the names)."""
    import pandas as pd

    if _is_polars(X):
        X = X.to_pandas()
    if isinstance(X, pd.DataFrame):
        if names is None:
            return X
        absent = [name for name in names if name not in X.columns]
        if absent:
            raise SchemaError(f"input lacks feature column(s) {', '.join(absent)}")
        return X[list(names)]
    matrix = _check_2d(np.asarray(X), names)
    return pd.DataFrame(matrix, columns=list(names)) if names is not None else matrix


def to_matrix(X: Any, names: Sequence[str] | None, dtype: type = np.float64) -> np.ndarray:
    """A 2-D numeric array with the feature columns in order."""
    if _is_polars(X):
        if names is not None:
            absent = [name for name in names if name not in X.columns]
            if absent:
                raise SchemaError(f"input lacks feature column(s) {', '.join(absent)}")
            X = X.select(list(names))
        matrix = X.to_numpy()
    elif hasattr(X, "columns"):
        matrix = to_frame(X, names).to_numpy()
    else:
        matrix = _check_2d(np.asarray(X), names)
    try:
        return np.ascontiguousarray(matrix, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise SchemaError(f"input features must be numbers: {err}") from err


def _check_2d(matrix: np.ndarray, names: Sequence[str] | None) -> np.ndarray:
    if matrix.ndim != 2:
        raise SchemaError(f"input must be 2-D (rows x features), got {matrix.ndim}-D")
    if names is not None and matrix.shape[1] != len(names):
        raise SchemaError(f"input has {matrix.shape[1]} columns; the model expects {len(names)}")
    return matrix


def shape_output(raw: Any, task: Task) -> np.ndarray:
    """Bring a library's raw output to the task's shape, or explain the mismatch."""
    out = np.asarray(raw, dtype=np.float64)
    if out.ndim == 2 and out.shape[1] == 1 and task != "multiclass":
        out = out[:, 0]
    if task == "binary" and out.ndim == 2 and out.shape[1] == 2:
        out = out[:, 1]
    if task == "multiclass" and out.ndim == 2 and out.shape[1] >= 2:
        return out
    if task != "multiclass" and out.ndim == 1:
        return out
    raise RegistryError(f"the model's output has shape {out.shape}, which does not fit task {task}")


def write_meta(folder: Path, meta: Mapping[str, Any]) -> None:
    """Write metadata beside the model file as sorted JSON (same model, same bytes)."""
    text = json.dumps(dict(meta), sort_keys=True, indent=2, default=_jsonable)
    (folder / META_FILE).write_text(text + "\n", encoding="utf-8")


def read_meta(path: Path) -> dict[str, Any]:
    """The metadata written by :func:`write_meta` beside ``path``, or ``{}``."""
    folder = path if path.is_dir() else path.parent
    meta_file = folder / META_FILE
    if not meta_file.is_file():
        return {}
    try:
        return dict(json.loads(meta_file.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise RegistryError(f"cannot read model metadata {meta_file}: {err}") from err


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def plain_list(values: Any) -> list[Any]:
    """numpy or other sequences as a JSON-ready list (classes, feature names)."""
    return [v.item() if isinstance(v, np.generic) else v for v in list(values)]
