from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from fourloops.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_every_command_has_help() -> None:
    code, out, _ = run("--help")
    assert code == 0
    names = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    assert {"demo", "init", "apply", "validate", "materialize", "dataset", "lookup"} <= set(names)
    for name in names:
        code, out, _ = run(name, "--help")
        assert code == 0, name
        assert "Usage" in out and len(out.strip().splitlines()) > 3, name


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fourloops.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "demo" in result.stdout


@pytest.fixture
def initialised(tmp_path: Path) -> Path:
    target = tmp_path / "proj"
    code, out, err = run("init", str(target))
    assert code == 0, err
    return target


def test_init_keeps_the_local_stores_out_of_git(initialised: Path) -> None:
    assert ".fourloops/" in (initialised / ".gitignore").read_text().splitlines()


def test_init_refuses_to_overwrite(initialised: Path) -> None:
    code, _, err = run("init", str(initialised))
    assert code == 2
    assert "already exists" in err and len(err.strip().splitlines()) == 1


def test_missing_project_is_one_line(tmp_path: Path) -> None:
    code, _, err = run("apply", "--project", str(tmp_path))
    assert code == 2
    assert err.strip().startswith("error:") and "fourloops init" in err
    assert "Traceback" not in err


def test_apply_validate_dataset_flow(initialised: Path, tmp_path: Path) -> None:
    p = str(initialised)
    code, out, err = run("apply", "--project", p, "--json")
    assert code == 0, err
    assert {c["action"] for c in json.loads(out)["changes"]} == {"create"}
    code, out, err = run("validate", "planes", "--project", p, "--json")
    assert code == 0, err  # the planes table is clean
    [report] = json.loads(out)
    assert report["rows"] == report["valid"] == 3322
    code, out, err = run("validate", "weather", "--project", p, "--json")
    assert code == 0, err  # quarantining rows is the validator doing its job, not a failure
    [report] = json.loads(out)
    rules = {(f["column"], f["rule"]) for f in report["failures"]}
    assert ("wind_speed", "max") in rules and ("temp", "not_null") in rules
    assert report["rows"] == 26115 and report["valid"] + report["quarantined"] == 26115

    entities = tmp_path / "entities.parquet"
    flights = pl.read_parquet(initialised / "data" / "flights.parquet").head(500)
    flights.select("origin", "sched_dep", "arr_delay").write_parquet(entities)
    out_file = tmp_path / "train.parquet"
    code, out, err = run(
        "dataset",
        "--project",
        p,
        "--entities",
        str(entities),
        "--timestamp",
        "sched_dep",
        "--features",
        "weather:temp,weather:visib",
        "--out",
        str(out_file),
        "--json",
    )
    assert code == 0, err
    frame = pl.read_parquet(out_file)
    assert frame.height == 500 and {"temp", "visib"} <= set(frame.columns)
    assert frame["temp"].null_count() < 50


def test_dataset_refuses_naive_times(initialised: Path, tmp_path: Path) -> None:
    entities = tmp_path / "naive.parquet"
    pl.DataFrame({"origin": ["EWR"], "ts": [datetime(2013, 1, 1, 12)]}).write_parquet(entities)
    code, _, err = run(
        "dataset",
        "--project",
        str(initialised),
        "--entities",
        str(entities),
        "--timestamp",
        "ts",
        "--features",
        "weather:temp",
        "--out",
        str(tmp_path / "o.parquet"),
    )
    assert code == 2
    assert "ts" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dataset", "--features", "weather:nope", "--entities", "x.parquet"], "no feature 'nope'"),
        (["lookup", "--features", "weather:temp", "--key", "origin"], "use name=value"),
        (["materialize", "--end", "yesterday"], "not an ISO-8601 time"),
        (["materialize", "--end", "2013-01-01T00:00:00"], "no time zone"),
        (["validate", "nothing"], "neither a feature view"),
    ],
)
def test_bad_input_is_one_clear_line(initialised: Path, args: list[str], message: str) -> None:
    code, _, err = run(*args, "--project", str(initialised))
    assert code != 0
    assert message in err, err
    assert len(err.strip().splitlines()) == 1


def test_lookup_after_materialize(initialised: Path) -> None:
    p = str(initialised)
    code, _, err = run("materialize", "--project", p, "--end", "2013-06-01T12:30:00Z", "--view", "weather")
    assert code == 0, err
    code, out, err = run(
        "lookup",
        "--project",
        p,
        "--features",
        "weather:temp",
        "--key",
        "origin=JFK",
        "--at",
        "2013-06-01T12:30:00Z",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"]["weather"] == "ok"
    assert 0 < result["age_seconds"]["weather"] <= 3 * 3600
