from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import fourloops as fl
from fourloops.adaptation.frame import build_model_frame
from fourloops.contracts.encoder import InputEncoder
from fourloops.errors import SchemaError
from fourloops.ingestion.features import model_inputs
from fourloops.project import Project

T0 = datetime(2013, 1, 1, tzinfo=UTC)

DEFINITIONS = """
import polars as pl
import fourloops as fl

airport = fl.Entity("airport", join_keys=["origin"])
weather = fl.FeatureView(
    "weather", entity=airport,
    source=fl.FileSource("data/weather.parquet", timestamp="time_hour"),
    ttl="2h",
    contract=fl.Contract({"temp": fl.Float(min=-40, max=130)}),
)
model = fl.Model(
    "delay", task="binary",
    entities=fl.FileSource("data/flights.parquet", timestamp="sched_dep"),
    request=fl.Contract({"origin": fl.Category(["EWR", "JFK"]), "distance": fl.Float(min=0),
                         "tailnum": fl.String(nullable=True)}),
    features=["weather:temp"],
    label=fl.Label("delayed", expr=pl.col("arr_delay") > 15, available="arrived_at"),
    trainer=lambda X, y, params: None,
    segments=["origin"],
)
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    (root / "fourloops.toml").write_text("")
    (root / "definitions.py").write_text(DEFINITIONS)
    pl.DataFrame(
        {
            "origin": ["EWR", "EWR", "JFK"],
            "time_hour": [T0, T0 + timedelta(hours=1), T0],
            "temp": [30.0, 31.0, 40.0],
        },
        schema_overrides={"time_hour": pl.Datetime("us", "UTC")},
    ).write_parquet(root / "data/weather.parquet")
    h = lambda m: T0 + timedelta(minutes=m)  # noqa: E731
    pl.DataFrame(
        {
            "sched_dep": [h(10), h(70), h(80), h(90), h(100), h(200)],
            "origin": ["EWR", "EWR", "JFK", "XXX", "EWR", "JFK"],
            "distance": [100.0, 200.0, 300.0, 400.0, -1.0, 600.0],
            "tailnum": ["N1", None, "N3", "N4", "N5", "N6"],
            "arr_delay": [20.0, 5.0, None, 30.0, 0.0, 40.0],
            "arrived_at": [h(100), h(160), None, h(200), h(190), h(400)],
        },
        schema_overrides={
            "sched_dep": pl.Datetime("us", "UTC"),
            "arrived_at": pl.Datetime("us", "UTC"),
        },
    ).write_parquet(root / "data/flights.parquet")
    return Project.load(root, env={})


def join(project: Project):  # type: ignore[no-untyped-def]
    return lambda frame, features, ts: project.dataset(frame, features=features, timestamp=ts)


def test_frame_validates_requests_labels_maturity_and_joins_point_in_time(project: Project) -> None:
    model = project.definitions.models["delay"]
    mf = build_model_frame(
        model, root=project.root, views=project.feature_views, join=join(project), cutoff=h_(300)
    )
    # XXX origin and the negative distance break the request contract; the JFK flight at 01:20 was
    # cancelled (no label); the 03:20 flight's label arrives after the cutoff (not mature).
    assert mf.counts == {
        "rows": 6,
        "request_invalid": 2,
        "after_time_filter": 4,
        "no_label": 1,
        "label_not_mature": 1,
        "rows_used": 2,
    }
    assert mf.frame["delayed"].to_list() == [1, 0]
    assert mf.frame["temp"].to_list() == [30.0, 31.0]  # as known at 00:10 and 01:10
    assert mf.features == ["origin", "distance", "temp"]


def h_(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_matrix_fixes_category_codes_whatever_the_batch_holds(project: Project) -> None:
    model = project.definitions.models["delay"]
    encoder = InputEncoder.from_fields(model_inputs(model, project.feature_views))
    batch = pl.DataFrame({"origin": ["JFK", "JFK"], "distance": [1.0, None], "temp": [None, 2.0]})
    X = encoder.frame(batch)
    assert list(X.columns) == ["origin", "distance", "temp"]
    assert isinstance(X["origin"].dtype, pd.CategoricalDtype)
    assert list(X["origin"].cat.categories) == ["EWR", "JFK"]
    assert X["origin"].cat.codes.tolist() == [1, 1]
    assert np.isnan(X["distance"][1])


def test_feature_from_request_and_view_is_ambiguous(project: Project) -> None:
    model = fl.Model(
        "m",
        task="binary",
        entities=fl.FileSource("x.parquet", timestamp="t"),
        request=fl.Contract({"temp": fl.Float()}),
        features=["weather:temp"],
        label=fl.Label("y"),
        trainer=lambda X, y, p: None,
    )
    with pytest.raises(SchemaError, match="both the request and view"):
        model_inputs(model, project.feature_views)
