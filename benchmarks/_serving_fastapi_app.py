"""The "plain framework" reference for ``serving.py``: FastAPI + a pydantic model, no safety features.

One route, ``POST /predict`` with a flat JSON object of 30 floats; it answers
``{"prediction": p}``. With ``BENCH_ASYNC=1`` the endpoint is ``async def``.
No validation beyond pydantic's types, no logging of events, no metrics.
The model file comes from ``BENCH_MODEL``.
"""

import os

import lightgbm as lgb
import numpy as np
from fastapi import FastAPI
from pydantic import create_model

booster = lgb.Booster(model_file=os.environ["BENCH_MODEL"])
NAMES = booster.feature_name()
Row = create_model("Row", **{name: (float, ...) for name in NAMES})

app = FastAPI()


def _score(row: Row) -> dict:  # type: ignore[valid-type]
    x = np.array([[getattr(row, name) for name in NAMES]], dtype=np.float64)
    return {"prediction": float(booster.predict(x, num_threads=1)[0])}


if os.environ.get("BENCH_ASYNC"):  # ``async def``: scored on the event loop, no hop to a thread

    @app.post("/predict")
    async def predict(row: Row) -> dict:  # type: ignore[valid-type]
        return _score(row)

else:  # plain ``def``: FastAPI runs it in its thread pool

    @app.post("/predict")
    def predict(row: Row) -> dict:  # type: ignore[valid-type]
        return _score(row)
