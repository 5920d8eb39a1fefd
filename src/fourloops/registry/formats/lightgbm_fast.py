"""One row through LightGBM's "fast" single-row C API, without a NumPy array or a new predictor.

``Booster.predict`` on one row builds an array, a predictor object and a
result array, and checks everything each time: about 45 µs for a 200-tree
model, three times the tree walk itself. LightGBM's C API has a variant for
exactly this case (``LGBM_BoosterPredictForMatSingleRowFast``): the
prediction settings are compiled once into a *fast config*, and each call
passes a pointer to the row's doubles. The answer is the same to the bit
(tested against ``Booster.predict``).

A fast config is used by one thread at a time: each thread that predicts
gets its own, made on first use. If the library lacks the functions (an old
LightGBM), :func:`fast_single_row` returns None and the predictor keeps using
``Booster.predict``.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["FastSingleRow", "fast_single_row"]

_PREDICT_NORMAL = 0  # probabilities / values, with the objective's transform
_FLOAT64 = 1


class FastSingleRow:
    """``predict(values)``: one row of doubles in, the model's ``outputs`` doubles out."""

    def __init__(self, booster: Any, lib: Any, *, outputs: int, parameters: str) -> None:
        self.booster = booster  # kept alive as long as the configs that point into it
        self.lib = lib
        self.ncol = int(booster.num_feature())
        self.outputs = outputs
        self.parameters = parameters.encode()
        self._local = threading.local()
        self._configs: list[ctypes.c_void_p] = []
        self._lock = threading.Lock()
        self._row_type = ctypes.c_double * self.ncol
        self._config()  # fail now, not on the first request, if the library refuses

    def _config(self) -> tuple[ctypes.c_void_p, Any, ctypes.c_int64]:
        state = getattr(self._local, "state", None)
        if state is None:
            handle = ctypes.c_void_p()
            status = self.lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                self.booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self.ncol),
                ctypes.c_char_p(self.parameters),
                ctypes.byref(handle),
            )
            if status != 0:
                raise RuntimeError(self.lib.LGBM_GetLastError().decode())
            with self._lock:
                self._configs.append(handle)
            state = (handle, (ctypes.c_double * self.outputs)(), ctypes.c_int64(0))
            self._local.state = state
        return state

    def predict(self, values: Sequence[float]) -> list[float]:
        handle, out, out_len = self._config()
        row = self._row_type(*values)
        status = self.lib.LGBM_BoosterPredictForMatSingleRowFast(handle, row, ctypes.byref(out_len), out)
        if status != 0:
            raise RuntimeError(self.lib.LGBM_GetLastError().decode())
        return list(out[: out_len.value])

    def __del__(self) -> None:
        for handle in getattr(self, "_configs", []):
            try:
                self.lib.LGBM_FastConfigFree(handle)
            except Exception:  # interpreter shutdown: the library may be gone already
                pass


def fast_single_row(booster: Any, *, outputs: int, num_threads: int = 1) -> FastSingleRow | None:
    """The fast single-row path of ``booster``, or None when this LightGBM does not offer it."""
    try:
        import lightgbm.basic

        lib = getattr(lightgbm.basic, "_LIB", None)
        if lib is None or not hasattr(lib, "LGBM_BoosterPredictForMatSingleRowFast"):
            return None
        lib.LGBM_GetLastError.restype = ctypes.c_char_p
        return FastSingleRow(booster, lib, outputs=outputs, parameters=f"num_threads={num_threads}")
    except Exception:  # any trouble: the ordinary, slower path still answers correctly
        return None
