from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from fourloops.project import Project

from .conftest import T0, weather_frame


def test_every_row_is_either_stored_or_quarantined(project: Project) -> None:
    [report] = project.validate("weather")
    assert (report.rows, report.valid, report.quarantined) == (4, 3, 1)
    [failure] = report.failures()
    assert (failure["column"], failure["rule"], failure["rows"]) == ("temp", "max", 1)
    assert "500" in failure["examples"][0]
    [file] = report.files
    quarantine = pl.read_parquet(file.quarantine_path)
    assert quarantine["temp"].to_list() == [500.0]
    assert quarantine["_fl_violations"].to_list() == [["temp:max"]]
    assert quarantine["_fl_row"].to_list() == [2]
    stored = pl.read_parquet(project.offline.parts(project.feature_view("weather")))
    assert stored["temp"].to_list() == [40.0, 41.0, 43.0]
    # The transformation ran once, in ingestion, for every path that reads features.
    assert stored["temp_c"].to_list() == [(t - 32) * 5 / 9 for t in (40.0, 41.0, 43.0)]
    runs = project.metadata.validation_runs("weather")
    assert runs[0]["n_quarantined"] == 1


def test_unchanged_files_are_not_validated_twice(project: Project) -> None:
    project.validate("weather")
    [again] = project.validate("weather")
    assert [f.skipped for f in again.files] == [True]
    assert len(project.metadata.validation_runs("weather")) == 1


def test_null_becoming_empty_string_is_caught_as_drift(project: Project, project_dir: Path) -> None:
    project.validate("weather")
    broken = weather_frame([4, 5], [44.0, 45.0]).with_columns(
        pl.Series("wind", ["", "7.5"]),
    )
    broken.write_parquet(project_dir / "data/weather/02.parquet")
    [report] = project.validate("weather")
    new = [f for f in report.files if not f.skipped]
    assert [f.valid for f in new] == [2]  # "" is a declared null token: the rows stay valid
    kinds = {d["kind"] for d in report.drift}
    messages = " ".join(d["message"] for d in report.drift)
    assert "wind" in messages
    assert len(kinds) >= 2  # a type change and a null token that started appearing


def test_csv_source_is_read_as_text_and_judged_by_the_contract(project: Project) -> None:
    [report] = project.validate("readings")
    assert (report.rows, report.valid, report.quarantined) == (4, 2, 2)
    rules = {(f["column"], f["rule"]) for f in report.failures()}
    assert rules == {("level", "type"), ("at", "timezone")}
    stored = pl.read_parquet(project.offline.parts(project.feature_view("readings")))
    assert stored["level"].to_list() == [3, None]  # NA is a declared null token


def test_training_set_never_sees_a_quarantined_or_future_value(project: Project) -> None:
    entities = pl.DataFrame(
        {
            "origin": ["EWR", "EWR", "EWR", "EWR", "JFK"],
            "ts": [T0 + timedelta(minutes=m) for m in (4, 6, 125, 185, 60)],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    result = project.dataset(entities, features=["weather:temp", "weather:temp_c"], timestamp="ts")
    frame = result.to_polars()
    # 00:04 -> the 00:00 reading was ingested at 00:05: not yet knowable.
    # 00:06 -> 40.0; 02:05 -> the 02:00 row (500) was quarantined, so 01:00's 41.0;
    # 03:05 -> 43.0 (ingested 03:05, inclusive); JFK -> no data.
    assert frame["temp"].to_list() == [None, 40.0, 41.0, 43.0, None]
    assert frame["origin"].to_list() == entities["origin"].to_list()
    assert result.rows == 5


def test_materialize_and_read_honour_ttl_and_monotonic_writes(project: Project) -> None:
    end = T0 + timedelta(hours=3, minutes=30)
    [weather, readings] = sorted(project.materialize(end=end), key=lambda r: r.view, reverse=True)
    assert weather.view == "weather" and weather.written == 1
    rows = [{"origin": "EWR"}, {"origin": "JFK"}]
    fresh = project.online_features(rows, features=["weather:temp"], now=end)
    assert fresh[0].status["weather"] == "ok" and fresh[0].values["temp"] == 43.0
    assert fresh[0].age_seconds["weather"] == 30 * 60
    assert fresh[1].status["weather"] == "missing"
    expired = project.online_features(rows, features=["weather:temp"], now=T0 + timedelta(hours=7))
    assert expired[0].status["weather"] == "expired" and expired[0].values["temp"] is None
    # Re-materialising an old window must not overwrite the newer value.
    [old] = project.materialize(start=None, end=T0 + timedelta(hours=1), views=["weather"], incremental=False)
    assert old.skipped_older == 1 and old.written == 0
    again = project.online_features(rows[:1], features=["weather:temp"], now=end)
    assert again[0].values["temp"] == 43.0


def test_incremental_materialisation_uses_the_watermark(project: Project) -> None:
    [first] = project.materialize(end=T0 + timedelta(hours=1, minutes=30), views=["weather"])
    assert first.start is None and first.rows_read == 2
    [second] = project.materialize(end=T0 + timedelta(hours=4), views=["weather"])
    assert second.start == T0 + timedelta(hours=1, minutes=30)
    assert second.rows_read == 1  # only the 03:00 row became knowable (02:00 was quarantined)


def test_incremental_materialisation_reads_only_parts_with_rows_knowable_after_the_watermark(
    project: Project, project_dir: Path
) -> None:
    view = project.feature_view("weather")
    project.materialize(end=T0 + timedelta(hours=4), views=["weather"])
    weather_frame([5, 6], [50.0, 51.0]).write_parquet(project_dir / "data/weather/02.parquet")
    project.validate("weather")
    assert len(project.offline.parts(view)) == 2
    watermark = T0 + timedelta(hours=4)
    [newer] = project.offline.parts(view, known_after=watermark)
    entry = project.offline.manifest(view)[str(project_dir / "data/weather/02.parquet")]
    assert newer.endswith(entry["part"])
    [second] = project.materialize(end=T0 + timedelta(hours=7), views=["weather"])
    assert second.rows_read == 2 and second.written == 1
    # The same online value as a materialisation that reads every part.
    rows = [{"origin": "EWR"}]
    skipping = project.online_features(rows, features=["weather:temp"], now=T0 + timedelta(hours=7))
    project.materialize(start=None, end=T0 + timedelta(hours=7), views=["weather"], incremental=False)
    full = project.online_features(rows, features=["weather:temp"], now=T0 + timedelta(hours=7))
    assert skipping[0].values == full[0].values == {"temp": 51.0}


def test_view_with_no_valid_rows_still_joins_as_missing(project: Project, project_dir: Path) -> None:
    for f in (project_dir / "data/weather").glob("*.parquet"):
        f.unlink()
    weather_frame([0, 1], [500.0, 600.0]).write_parquet(project_dir / "data/weather/bad.parquet")
    entities = pl.DataFrame(
        {"origin": ["EWR"], "ts": [T0 + timedelta(hours=2)]},
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    result = project.dataset(entities, features=["weather:temp", "weather:sky"], timestamp="ts")
    frame = result.to_polars()
    assert frame["temp"].to_list() == [None] and frame["sky"].to_list() == [None]
    assert frame.schema["temp"] == pl.Float64
    assert result.stats["views"]["weather"]["missing"] == 1


def test_int_keyed_view_without_valid_rows_joins_as_missing(tmp_path: Path) -> None:
    import fourloops as fl
    from fourloops.engines import DuckDBEngine
    from fourloops.ingestion.dataset import build_training_set
    from fourloops.ingestion.offline_store import OfflineStore

    view = fl.FeatureView(
        "sensor",
        entity=fl.Entity("device", join_keys=["device_id"]),
        source=fl.FileSource("x.parquet", timestamp="at"),
        ttl="1h",
        contract=fl.Contract({"device_id": fl.Int(), "reading": fl.Float()}),
    )
    entities = pl.DataFrame(
        {"device_id": [1, 2], "ts": [T0, T0]}, schema_overrides={"ts": pl.Datetime("us", "UTC")}
    )
    result = build_training_set(
        entities,
        features=["sensor:reading"],
        views={"sensor": view},
        offline=OfflineStore(tmp_path),
        engine=DuckDBEngine(),
        timestamp="ts",
    )
    assert result.to_polars()["reading"].to_list() == [None, None]


def test_unchanged_files_are_not_hashed_again_but_rewritten_ones_are(
    project: Project, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fourloops.ingestion import sources

    project.validate("weather")
    calls: list[Path] = []
    real = sources._fingerprint
    monkeypatch.setattr(sources, "_fingerprint", lambda p: calls.append(p) or real(p))
    [again] = project.validate("weather")
    assert calls == [] and [f.skipped for f in again.files] == [True]
    weather_frame([0, 1], [50.0, 51.0]).write_parquet(project_dir / "data/weather/01.parquet")
    [changed] = project.validate("weather")
    assert len(calls) == 1 and [f.skipped for f in changed.files] == [False]
    assert changed.valid == 2
