"""A tiny project on disk: one airport entity, a weather view with a created time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from fourloops.project import Project

T0 = datetime(2013, 1, 1, tzinfo=UTC)

DEFINITIONS = """
import polars as pl
import fourloops as fl

airport = fl.Entity("airport", join_keys=["origin"])

weather = fl.FeatureView(
    "weather",
    entity=airport,
    source=fl.FileSource(
        "data/weather/*.parquet", timestamp="time_hour", created="ingested_at", name="weather"
    ),
    ttl="3h",
    contract=fl.Contract(
        {
            "temp": fl.Float(min=-40, max=130),
            "wind": fl.Float(min=0, max=100, nullable=True),
            "sky": fl.Category(["clear", "cloudy"], unknown="map", nullable=True),
        },
        null_tokens=["", "NA"],
    ),
    transform=lambda df: df.with_columns(((pl.col("temp") - 32) * 5 / 9).alias("temp_c")),
    derived={"temp_c": fl.Float(min=-40, max=60)},
)

readings = fl.FeatureView(
    "readings",
    entity=airport,
    source=fl.FileSource("data/readings.csv", timestamp="at"),
    ttl="1d",
    contract=fl.Contract({"level": fl.Int(min=0, nullable=True), "at": fl.Timestamp()}, null_tokens=["NA"]),
)
"""


def weather_frame(
    hours: list[int], temps: list[float | None], *, origin: str = "EWR", delay_minutes: int = 5
) -> pl.DataFrame:
    times = [T0 + timedelta(hours=h) for h in hours]
    return pl.DataFrame(
        {
            "origin": [origin] * len(hours),
            "time_hour": times,
            "temp": temps,
            "wind": [5.0] * len(hours),
            "sky": ["clear"] * len(hours),
            "ingested_at": [t + timedelta(minutes=delay_minutes) for t in times],
        },
        schema_overrides={
            "time_hour": pl.Datetime("us", "UTC"),
            "ingested_at": pl.Datetime("us", "UTC"),
        },
    )


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "data" / "weather").mkdir(parents=True)
    (root / "fourloops.toml").write_text('[project]\nname = "tiny"\n')
    (root / "definitions.py").write_text(DEFINITIONS)
    weather_frame([0, 1, 2, 3], [40.0, 41.0, 500.0, 43.0]).write_parquet(root / "data/weather/01.parquet")
    (root / "data" / "readings.csv").write_text(
        "origin,at,level\nEWR,2013-01-01T00:00:00Z,3\nEWR,2013-01-01T01:00:00Z,NA\n"
        "JFK,2013-01-01T00:30:00+00:00,x\nJFK,2013-01-01T02:00:00,4\n"
    )
    return root


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    with Project.load(project_dir, env={}) as proj:
        yield proj
