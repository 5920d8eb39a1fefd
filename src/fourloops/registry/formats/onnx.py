"""ONNX models (for example converted with skl2onnx), run with onnxruntime.

Both are optional (``pip install 'fourloops[onnx]'``) and imported lazily.
A model takes either one float tensor (rows x features; name the features
with ``save_model(..., feature_names=[...])``) or one input per feature.
Classifier outputs may be plain probability tensors or skl2onnx's ZipMap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fourloops.errors import RegistryError, SchemaError
from fourloops.registry.formats.base import (
    Predictor,
    SavedModel,
    Task,
    shape_output,
    to_frame,
    to_matrix,
)

__all__ = ["ONNXFormat", "ONNXPredictor"]

MODEL_FILE = "model.onnx"
#: Threads per session: servers scale with worker processes, not threads.
SESSION_THREADS = 1
_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def _missing_extra(err: ImportError) -> RegistryError:
    return RegistryError(f"ONNX models need onnx and onnxruntime: pip install 'fourloops[onnx]' ({err})")


class ONNXFormat:
    """Save ``onnx.ModelProto`` objects and run them with onnxruntime."""

    name = "onnx"

    def handles(self, model: object) -> bool:
        return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")

    def save(self, model: object, folder: Path) -> SavedModel:
        try:
            import onnx
        except ImportError as err:
            raise _missing_extra(err) from err
        if not isinstance(model, onnx.ModelProto):
            raise RegistryError(f"not an ONNX model: {type(model).__name__}")
        path = folder / MODEL_FILE
        path.write_bytes(model.SerializeToString(deterministic=True))
        inputs = [i.name for i in model.graph.input]
        opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
        meta: dict[str, Any] = {
            "library_version": onnx.__version__,
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "opset": max(opsets, default=None),
        }
        if len(inputs) > 1:
            meta["feature_names"] = inputs
        return SavedModel(path=path, format=self.name, meta=meta)

    def load(self, path: Path, task: Task, meta: Mapping[str, Any]) -> ONNXPredictor:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise _missing_extra(err) from err
        if path.is_dir():
            path = path / MODEL_FILE
        options = ort.SessionOptions()
        options.intra_op_num_threads = SESSION_THREADS
        options.inter_op_num_threads = SESSION_THREADS
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise RegistryError(f"cannot load ONNX model {path}: {err}") from err
        return ONNXPredictor(session, task, meta.get("feature_names"))


class ONNXPredictor(Predictor):
    """An onnxruntime session with the output picked per task."""

    format = "onnx"

    def __init__(self, session: Any, task: Task, feature_names: list[str] | None) -> None:
        inputs = session.get_inputs()
        self._single = len(inputs) == 1
        if not self._single:
            feature_names = [i.name for i in inputs]
        super().__init__(task, feature_names)
        self.session = session
        self._inputs = [(i.name, _DTYPES.get(i.type, np.float32)) for i in inputs]
        self._output = self._pick_output(session.get_outputs(), task)

    @staticmethod
    def _pick_output(outputs: list[Any], task: Task) -> str:
        if task == "regression":
            return str(outputs[0].name)
        for out in outputs:
            if "prob" in out.name.lower():
                return str(out.name)
        return str(outputs[-1].name)

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        try:
            (raw,) = self.session.run([self._output], feeds)
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise SchemaError(f"the ONNX model refused the input: {err}") from err
        if isinstance(raw, list):  # ZipMap: one {class: probability} dict per row
            raw = [list(row.values()) for row in raw]
        return shape_output(raw, self.task)

    def predict(self, X: Any) -> np.ndarray:
        if self._single:
            name, dtype = self._inputs[0]
            return self._run({name: to_matrix(X, self.feature_names, dtype)})
        frame = to_frame(X, self.feature_names)
        feeds = {name: frame[name].to_numpy().astype(dtype) for name, dtype in self._inputs}
        return self._run({name: column.reshape(-1, 1) for name, column in feeds.items()})

    def predict_one(self, row: Mapping[str, Any]) -> float | list[float]:
        if self._single:
            name, dtype = self._inputs[0]
            out = self._run({name: self._row(row, dtype)})
        else:
            missing = [name for name, _ in self._inputs if name not in row]
            if missing:
                raise SchemaError(f"input lacks feature(s) {', '.join(missing)}")
            feeds = {name: np.array([[row[name]]], dtype=dtype) for name, dtype in self._inputs}
            out = self._run(feeds)
        return [float(v) for v in out[0]] if self.task == "multiclass" else float(out[0])
