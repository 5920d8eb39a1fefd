"""``fl.Project`` as the composition root: one set of stores and one clock, every command a method."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from starlette.testclient import TestClient

import fourloops as fl
from fourloops.clock import ManualClock
from fourloops.errors import SchemaError, SourceError
from fourloops.project import Project
from fourloops.storage.events import Label
from trips import T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23)
README = Path(__file__).resolve().parents[1] / "README.md"

#: The README says every command is a method of ``fl.Project``: of the command's own name (``-`` read
#: as ``_``), or of the names here, which the README lists.
OTHER_NAMES = {
    "compact": ["compact_events"],
    "events": ["events", "export_events"],
    "list": ["list_definitions"],
    "lookup": ["online_features"],
    "models": ["registered_models", "versions", "version"],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("facade") / "p")


def test_one_clock_reaches_the_server_the_labels_and_the_registry(root: Path, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    with Project.load(root, env={}, clock=clock) as project:
        with TestClient(project.app()) as client:
            body = {"inputs": {"station": "a", "load": 0.2, "rain": 0.0}, "request_id": "clock-1"}
            assert client.post("/v1/models/late/predict", json=body).status_code == 200
        clock.advance(timedelta(hours=5))
        report = project.labels([Label("clock-1", 1, clock())])
        assert report.to_dict() == {"inserted": 1, "duplicates": 0, "unknown": 0, "rejected": 0}
        [event] = [e for e in project.events(model="late").to_pylist() if e["request_id"] == "clock-1"]
        assert event["at"] == NOW and event["label_at"] == NOW + timedelta(hours=5)
        project.promote("late", 1, force=True, reason="again")  # a no-op move records nothing
        project.registry.set_routing("late", stage="shadow", reason="clocked")
        assert project.registry.routing("late").updated_at == clock()


def test_labels_from_a_file_are_stamped_by_the_project_clock_and_rejections_named(
    root: Path, tmp_path: Path
) -> None:
    file = tmp_path / "labels.csv"
    pl.DataFrame({"request_id": ["x-1", None], "label": [1, 0]}).write_csv(file)
    with Project.load(root, env={}, clock=ManualClock(NOW)) as project:
        report = project.labels(file)
    assert (report.unknown, report.rejected) == (1, 1)
    assert report.rejections[0].startswith("row 2: no request_id")
    with Project.load(root, env={}) as project:
        with pytest.raises(SourceError, match="not found"):
            project.labels(tmp_path / "missing.csv")


def test_dataset_takes_the_models_entities_features_and_timestamp(root: Path, tmp_path: Path) -> None:
    with Project.load(root, env={}) as project:
        by_model = project.dataset(model="late")
        explicit = project.dataset(
            pl.read_parquet(root / "data" / "trips.parquet"), features=["weather:rain"], timestamp="at"
        )
        assert by_model.to_polars().equals(explicit.to_polars())
        with pytest.raises(SchemaError, match="give the features"):
            project.dataset(pl.read_parquet(root / "data" / "trips.parquet"), timestamp="at")


def test_export_events_writes_parquet_and_names_an_unwritable_path(root: Path, tmp_path: Path) -> None:
    with Project.load(root, env={}) as project:
        n = project.export_events(tmp_path / "e.parquet")
        assert n == pl.read_parquet(tmp_path / "e.parquet").height == project.events().num_rows
        with pytest.raises(SourceError, match="cannot write"):
            project.export_events(tmp_path / "no" / "such" / "dir" / "e.parquet")


PROBE = """
import sys
from typer.testing import CliRunner
from fourloops.cli import app
result = CliRunner().invoke(app, sys.argv[2:])
heavy = [m for m in ("fourloops.server", "fourloops.inference.app", "uvicorn") if m in sys.modules]
print(__import__("json").dumps({"code": result.exit_code, "loaded": heavy, "out": result.output[-300:]}))
"""


@pytest.mark.parametrize(
    "args",
    [["models", "late"], ["events", "--json"], ["verify"], ["apply", "--dry-run"], ["models"]],
)
def test_commands_that_do_not_serve_never_import_the_server(root: Path, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "-", *args, "-p", str(root)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, result["out"]
    assert result["loaded"] == [], f"{args} imported {result['loaded']}"


def test_parity_rescores_served_predictions_offline_and_counts_what_it_cannot(root: Path) -> None:
    start = NOW + timedelta(minutes=1)  # after what the other tests log at NOW
    clock = ManualClock(start)
    with Project.load(root, env={}, clock=clock) as project:
        with TestClient(project.app()) as client:
            for i in range(12):
                clock.set(start + timedelta(seconds=i))
                body = {"inputs": {"station": "abc"[i % 3], "load": i / 12}, "request_id": f"par-{i}"}
                assert client.post("/v1/models/late/predict", json=body).status_code == 200
            carried = {"inputs": {"station": "a", "load": 0.5, "rain": 9.0}, "request_id": "par-own"}
            assert client.post("/v1/models/late/predict", json=carried).status_code == 200
        report = project.parity("late", since=start)
    assert report.ok and report.compared == 12, report
    assert report.max_abs_difference is not None and report.max_abs_difference <= 1e-9
    assert report.skipped == {"caller_supplied_features": 1}


def test_training_sees_only_what_the_project_clock_knows(root: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(root, copy)
    early = T0 + timedelta(days=20)
    with Project.load(copy, env={}, clock=ManualClock(early)) as project:
        result = project.train("late", seed=1, register=False)
    assert result.lineage["cutoff"] == early.isoformat()
    assert result.lineage["data"]["time_range"][1] <= str(early)


def test_the_event_log_is_queryable_as_typed_columns_by_the_engine(root: Path, tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from fourloops.cli import app as cli

    copy = tmp_path / "p"
    shutil.copytree(root, copy)
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        with TestClient(project.app()) as client:
            for i in range(5):
                body = {"inputs": {"station": "abc"[i % 3], "load": 0.1 * i}, "request_id": f"q-{i}"}
                assert client.post("/v1/models/late/predict", json=body).status_code == 200
        project.labels([Label("q-0", 1, clock())])
        table = project.query_events(
            "SELECT request_id, station, load, rain, status__weather, prediction, label_number "
            "FROM events WHERE request_id LIKE 'q-%' ORDER BY request_id",
            model="late",
        )
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == [f"q-{i}" for i in range(5)]
    assert str(table.schema.field("load").type) == "double" and rows[1]["load"] == pytest.approx(0.1)
    assert rows[0]["station"] == "a" and rows[0]["status__weather"] == "ok" and rows[0]["rain"] is not None
    assert rows[0]["label_number"] == 1.0 and rows[1]["label_number"] is None
    result = CliRunner().invoke(cli, ["compact", "-p", str(copy), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["events_written"] == 0  # already compacted by the query


def test_every_command_is_a_project_method_and_the_readme_names_the_others() -> None:
    from typer.main import get_command

    from fourloops.cli import app

    text = README.read_text(encoding="utf-8")
    said = text[text.index("The same from Python") : text.index("```python")]
    commands = sorted(get_command(app).commands)  # type: ignore[attr-defined]
    assert {"init", "demo", "list", "serve", "events", "labels"} <= set(commands)
    for command in commands:
        for method in OTHER_NAMES.get(command, [command.replace("-", "_")]):
            assert callable(getattr(fl.Project, method, None)), f"fourloops {command}: no fl.Project.{method}"
            if method != command:
                assert f"`{method}`" in said, f"the README does not say {method} is fourloops {command}"
    for method in ("init", "demo"):  # no project to load first: called on the class
        assert f"`fl.Project.{method}(" in said


def test_init_and_list_definitions_as_methods(tmp_path: Path) -> None:
    with Project.init(tmp_path / "shop 2") as project:
        assert project.name == "shop-2" and (tmp_path / "shop 2" / "fourloops.toml").is_file()
        listing = project.list_definitions()
    assert listing["models"]["delay"]["task"] == "binary"
    assert listing["feature_views"]["weather"] == {
        "entity": "airport",
        "features": listing["feature_views"]["weather"]["features"],
        "ttl": "3h",
    }
    assert listing["entities"]["plane"] == {"join_keys": ["tailnum"]}
