"""The BentoML peer for ``serving.py``: a ``@bentoml.service`` with one API taking 30 floats.

``POST /predict`` with a flat JSON object ``{"f0": ..., ..., "f29": ...}`` (BentoML
maps the body's fields onto the API's parameters and validates them with the
pydantic model it derives from the signature); it answers the probability as a
JSON number. Documented defaults, one worker. The model file comes from
``BENCH_MODEL``; the signature is generated from the booster's feature names.
"""

import os

import bentoml
import lightgbm as lgb
import numpy as np

_MODEL = os.environ["BENCH_MODEL"]
_NAMES = lgb.Booster(model_file=_MODEL).feature_name()

_args = ", ".join(f"{n}: float" for n in _NAMES)
_row = ", ".join(_NAMES)
_src = (
    f"def predict(self, {_args}) -> float:\n"
    f"    x = np.array([[{_row}]], dtype=np.float64)\n"
    f"    return float(self.booster.predict(x)[0])\n"
)
_ns: dict = {"np": np}
exec(_src, _ns)  # noqa: S102 - a signature with 30 named float parameters


@bentoml.service(workers=1)
class BenchService:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=_MODEL)

    predict = bentoml.api(_ns["predict"])
