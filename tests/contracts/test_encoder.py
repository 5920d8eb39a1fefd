"""The model-input encoder: one set of codes for a batch (training) and for one request (serving)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fourloops as fl
from fourloops.contracts.encoder import InputEncoder
from fourloops.errors import SchemaError
from fourloops.registry.formats import load_model, save_model

FIELDS = {
    "origin": fl.Category(["EWR", "JFK", "LGA"]),
    "carrier": fl.Category(["AA", "B6"], unknown="map"),
    "night": fl.Bool(nullable=True),
    "distance": fl.Float(nullable=True),
    "hour": fl.Int(nullable=True),
}
ENCODER = InputEncoder.from_fields(FIELDS)

rows = st.fixed_dictionaries(
    {
        "origin": st.sampled_from(["EWR", "JFK", "LGA", "SFO", None]),
        "carrier": st.sampled_from(["AA", "B6", "__unknown__", None]),
        "night": st.sampled_from([True, False, None]),
        "distance": st.one_of(st.none(), st.floats(-1e6, 1e6)),
        "hour": st.one_of(st.none(), st.integers(0, 23)),
    }
)


def _frame_codes(batch: list[dict[str, object]]) -> list[list[float]]:
    frame = ENCODER.frame(
        pl.DataFrame(
            batch,
            schema={
                "origin": pl.String,
                "carrier": pl.String,
                "night": pl.Boolean,
                "distance": pl.Float64,
                "hour": pl.Int64,
            },
        )
    )
    out = []
    for i in range(len(batch)):
        row = []
        for c in ENCODER.columns:
            value = frame[c.name].iloc[i]
            if c.kind == "category":
                code = frame[c.name].cat.codes.iloc[i]
                row.append(math.nan if code < 0 else float(code))
            else:
                row.append(float(value))
        out.append(row)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(rows, min_size=1, max_size=20))
def test_one_row_and_a_batch_encode_alike(batch: list[dict[str, object]]) -> None:
    by_row = [ENCODER.row(r) for r in batch]
    by_frame = _frame_codes(batch)
    assert np.array_equal(np.array(by_row), np.array(by_frame), equal_nan=True)


def test_codes_follow_the_contract_not_the_batch() -> None:
    only_lga = ENCODER.frame(
        pl.DataFrame({"origin": ["LGA"], "carrier": ["B6"], "night": [None], "distance": [1.0], "hour": [3]})
    )
    assert list(only_lga["origin"].cat.categories) == ["EWR", "JFK", "LGA"]
    assert list(only_lga["carrier"].cat.categories) == ["AA", "B6", "__unknown__"]
    assert ENCODER.row({"origin": "LGA", "carrier": "B6", "night": None, "distance": 1.0, "hour": 3})[:2] == [
        2.0,
        1.0,
    ]


def test_bad_inputs_are_named() -> None:
    with pytest.raises(SchemaError, match="lacks feature 'hour'"):
        ENCODER.row({"origin": "EWR", "carrier": "AA", "night": True, "distance": 1.0})
    with pytest.raises(SchemaError, match="cannot be a model input"):
        InputEncoder.from_fields({"name": fl.String()})
    with pytest.raises(SchemaError, match="invalid model-input encoder"):
        InputEncoder.from_dict({"cols": []})
    with pytest.raises(SchemaError, match="unknown kind"):
        InputEncoder.from_dict({"columns": [{"name": "x", "kind": "text"}]})


def test_lightgbm_serves_through_the_encoder_it_was_trained_with(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 2000
    data = pl.DataFrame(
        {
            "origin": rng.choice(["EWR", "JFK", "LGA"], n).tolist(),
            "carrier": rng.choice(["AA", "B6", "__unknown__"], n).tolist(),
            "night": rng.choice([True, False], n).tolist(),
            "distance": rng.uniform(100, 3000, n),
            "hour": rng.integers(0, 24, n),
        }
    )
    y = ((data["origin"] == "JFK").to_numpy() & (data["distance"].to_numpy() > 1500)).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1, deterministic=True, n_jobs=1)
    model.fit(ENCODER.frame(data), y)
    saved = save_model(model, tmp_path, inputs=ENCODER)
    assert saved.meta["inputs"] == ENCODER.to_dict() and saved.meta["feature_names"] == ENCODER.names
    predictor = load_model(saved.path, saved.format, task="binary", meta=saved.meta)
    assert predictor.encoder == ENCODER
    batch = predictor.predict(ENCODER.frame(data.head(200)))
    single = [predictor.predict_one(r) for r in data.head(200).to_dicts()]
    assert np.allclose(batch, single, rtol=0, atol=1e-12)
    # An unseen category is "missing" on both paths, as is a null.
    odd = {"origin": "SFO", "carrier": None, "night": None, "distance": None, "hour": None}
    frame = ENCODER.frame(
        pl.DataFrame(
            [odd],
            schema={
                "origin": pl.String,
                "carrier": pl.String,
                "night": pl.Boolean,
                "distance": pl.Float64,
                "hour": pl.Int64,
            },
        )
    )
    assert predictor.predict_one(odd) == pytest.approx(float(predictor.predict(frame)[0]), abs=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_fast_single_row_path_answers_what_booster_predict_does(task: str, tmp_path: Path) -> None:
    import threading

    from fourloops.registry.formats import lightgbm as lgb_format

    rng = np.random.default_rng(5)
    n = 1500
    X = pl.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n)})
    enc = InputEncoder.from_fields({"a": fl.Float(), "b": fl.Float()})
    if task == "regression":
        model: Any = lightgbm.LGBMRegressor(n_estimators=30, verbose=-1)
        y = X["a"].to_numpy() * 2 + rng.normal(size=n)
    else:
        model = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1)
        classes = 3 if task == "multiclass" else 2
        y = rng.integers(0, classes, n) + (X["a"].to_numpy() > 0)
        y = np.minimum(y, classes - 1)
    model.fit(enc.frame(X), y)
    saved = save_model(model, tmp_path, inputs=enc)
    fast = load_model(saved.path, saved.format, task=task, meta=saved.meta)
    assert fast._fast is not None  # type: ignore[attr-defined]
    rows = X.head(100).to_dicts()
    reference = fast.booster.predict(np.array([[r["a"], r["b"]] for r in rows]))  # type: ignore[attr-defined]
    got = np.array([fast.predict_one(r) for r in rows])
    assert np.array_equal(got, reference.reshape(got.shape))  # to the bit
    # One fast config per thread: concurrent threads answer alike.
    answers: dict[int, list[Any]] = {}

    def work(k: int) -> None:
        answers[k] = [fast.predict_one(r) for r in rows]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(np.array(v), got) for v in answers.values())
    # Without the C function the ordinary path answers the same.
    original = lgb_format.fast_single_row
    lgb_format.fast_single_row = lambda booster, **kw: None  # type: ignore[assignment]
    try:
        slow = load_model(saved.path, saved.format, task=task, meta=saved.meta)
    finally:
        lgb_format.fast_single_row = original
    assert slow._fast is None  # type: ignore[attr-defined]
    assert np.allclose([slow.predict_one(r) for r in rows], got, rtol=0, atol=1e-15)
