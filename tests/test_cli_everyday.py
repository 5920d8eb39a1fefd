"""The everyday commands a new user reaches for, and the mistakes they make, each a clear line."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fourloops.cli import app
from fourloops.errors import ConfigError
from fourloops.project import Project
from trips import prepare_project

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 champion and v2 trained, not promoted."""
    return prepare_project(tmp_path_factory.mktemp("everyday") / "p", versions=2, materialize=False)


def test_models_model_version_shows_metrics_gates_with_numbers_and_lineage(trained: Path) -> None:
    code, out, err = run("models", "late", "1", "-p", str(trained))
    assert code == 0, err
    assert "late v1" in out and "champion" in out and "roc_auc" in out
    assert "beats_baseline" in out and "baseline" in out and "sha256" in out and "cutoff" in out
    code, out, _ = run("models", "late", "champion", "-p", str(trained), "--json")
    assert code == 0 and json.loads(out)["version"] == 1
    code, _, err = run("models", "late", "9", "-p", str(trained))
    assert code != 0 and "no version 9" in err and len(err.strip().splitlines()) == 1


def test_compare_two_versions_side_by_side(trained: Path) -> None:
    code, out, err = run("compare", "late", "1", "2", "-p", str(trained), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["versions"] == [1, 2]
    roc = result["metrics"]["roc_auc"]
    assert roc["b_minus_a"] == pytest.approx(roc["b"] - roc["a"])
    assert result["params"] == {"a": {}, "b": {"n_estimators": 10}}
    code, out, _ = run("compare", "late", "champion", "2", "-p", str(trained))
    assert code == 0 and "v1" in out and "v2" in out and "roc_auc" in out


def test_archive_and_tag_are_audited_and_a_serving_version_cannot_be_archived(
    tmp_path: Path,
) -> None:
    root = prepare_project(tmp_path / "p", versions=2, materialize=False)
    code, _, err = run("archive", "late", "1", "-p", str(root))
    assert code != 0 and "serves traffic (champion)" in err
    code, out, err = run("archive", "late", "2", "--reason", "superseded", "-p", str(root))
    assert code == 0, err
    code, out, err = run("tag", "late", "2", "--set", "owner=ops", "--set", "ticket=42", "-p", str(root))
    assert code == 0, err
    code, out, err = run("tag", "late", "2", "--remove", "ticket", "-p", str(root), "--json")
    assert json.loads(out) == {"archived_because": "superseded", "owner": "ops"}
    with Project.load(root, env={}) as project:
        assert project.version("late", 2).stage.value == "archived"
        actions = [e["action"] for e in project.metadata.audit_entries("model:late")]
    assert actions.count("model.tags") >= 3 and "model.stage" in actions


def test_list_and_describe_the_definitions(trained: Path) -> None:
    code, out, err = run("list", "-p", str(trained), "--json")
    assert code == 0, err
    listing = json.loads(out)
    assert listing["models"]["late"]["features"] == ["weather:rain"]
    assert listing["feature_views"]["weather"]["features"] == ["rain"]
    code, out, err = run("describe", "late", "-p", str(trained), "--json")
    [found] = json.loads(out)
    assert found["kind"] == "model" and found["spec"]["task"] == "binary"
    code, _, err = run("describe", "nope", "-p", str(trained))
    assert code != 0 and "no definition named 'nope'" in err


def test_a_refused_promotion_names_the_cli_flag(tmp_path: Path) -> None:
    from fourloops.registry.records import GateReport, GateVerdict

    root = prepare_project(tmp_path / "p", versions=1, materialize=False)
    with Project.load(root, env={}) as project:  # a version whose calibration gate failed
        v1 = project.registry.get_version("late", 1)
        failed = project.registry.create_version(
            "late",
            artifact=v1.artifact,
            format=v1.format,
            gates=GateReport.judge([GateVerdict("max_calibration_error", False, "ece 0.3 (max 0.2)")]),
        ).version
    for alias in ("champion", "challenger"):
        code, _, err = run("promote", "late", str(failed), "--alias", alias, "-p", str(root))
        assert code != 0 and "max_calibration_error" in err and "--force" in err, err
        assert "force=True" not in err and len(err.strip().splitlines()) == 1, err


def test_promote_says_none_for_an_unset_alias(trained: Path) -> None:
    code, out, err = run("promote", "late", "2", "--alias", "challenger", "--force", "-p", str(trained))
    assert code == 0, err
    assert "challenger none -> v2" in out


def test_a_typo_in_a_trainer_parameter_is_caught_before_training_and_costs_no_version(tmp_path: Path) -> None:
    root = prepare_project(tmp_path / "p", versions=1, materialize=False)
    code, _, err = run("train", "late", "--param", "n_estimator=5", "-p", str(root))
    assert code != 0 and "did you mean 'n_estimators'" in err and len(err.strip().splitlines()) == 1
    with Project.load(root, env={}) as project:
        assert [v.version for v in project.versions("late")] == [1]


def test_commands_find_the_project_from_a_folder_inside_it(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = trained / "data"
    code, out, err = run("models", "-p", str(inside), "--json")
    assert code == 0, err
    assert [m["name"] for m in json.loads(out)] == ["late"]
    monkeypatch.delenv("FOURLOOPS_PROJECT", raising=False)
    monkeypatch.chdir(inside)  # no --project at all: the working folder, then its parents (like git)
    code, out, err = run("models", "--json")
    assert code == 0, err
    assert [m["name"] for m in json.loads(out)] == ["late"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train"], "Missing argument 'MODEL'"),
        (["models", "--bogus"], "No such option: --bogus"),
        (["serve", "--port", "eighty"], "Invalid value for '--port'"),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_a_usage_error_is_one_line_like_every_error(args: list[str], words: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and words in err and "--help" in err, err
    assert len(err.strip().splitlines()) == 1 and "Usage:" not in err, err


def test_dataset_of_a_model_takes_its_declared_entities(trained: Path, tmp_path: Path) -> None:
    code, out, err = run("dataset", "--help")
    assert code == 0 and "(default: MODEL's)" in out and "required" not in out.lower()
    frame = tmp_path / "late.parquet"
    code, out, err = run("dataset", "late", "--out", str(frame), "-p", str(trained), "--json")
    assert code == 0, err
    import polars as pl

    written = pl.read_parquet(frame)  # the model's entity rows (data/trips.parquet), its features
    assert written.height == json.loads(out)["rows"] == 4000 and "rain" in written.columns


def test_messages_never_name_internal_columns(trained: Path, tmp_path: Path) -> None:
    import polars as pl

    entities = tmp_path / "no-key.parquet"
    pl.read_parquet(trained / "data" / "trips.parquet").drop("station").write_parquet(entities)
    command = ["dataset", "--entities", str(entities), "--features", "weather:rain", "--timestamp", "at"]
    code, _, err = run(*command, "--out", str(tmp_path / "d.parquet"), "-p", str(trained))
    assert code != 0 and "no column 'station'" in err and "'load'" in err, err
    assert "__fl_" not in err and len(err.strip().splitlines()) == 1


def test_lookup_gives_ages_as_durations_a_person_reads(tmp_path: Path) -> None:
    from trips import T0

    root = prepare_project(tmp_path / "p", versions=0, promote=(), materialize=True)
    at = (T0 + timedelta(days=41)).isoformat()
    code, out, err = run(
        "lookup", "--features", "weather:rain", "--key", "station=a", "--at", at, "-p", str(root)
    )
    assert code == 0, err
    [line] = [line for line in out.splitlines() if line.startswith("weather:")]
    assert line.startswith("weather: expired (age 1.0 days)"), out  # the data ends on day 40


def test_init_names_the_project_after_its_folder(tmp_path: Path) -> None:
    code, _, err = run("init", str(tmp_path / "my shop"))
    assert code == 0, err
    assert Project.load(tmp_path / "my shop", env={}).name == "my-shop"


def test_a_misspelled_environment_variable_is_an_error_naming_it(trained: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"FOURLOOPS_SERVER_TIMEOUT: not a fourloops setting \(did you mean"
    ):
        Project.load(trained, env={"FOURLOOPS_SERVER_TIMEOUT": "5"})
    Project.load(trained, env={"FOURLOOPS_PROJECT": "x", "FOURLOOPS_TEST_REDIS_URL": "redis://"}).close()


def test_validate_fails_only_a_delivery_over_the_users_limit(tmp_path: Path) -> None:
    code, _, err = run("init", str(tmp_path / "p"))
    p = str(tmp_path / "p")
    code, out, err = run("validate", "weather", "-p", p)
    assert code == 0, err  # two real rows quarantined: the validator doing its job
    code, out, err = run("validate", "weather", "--force", "--max-quarantined", "1%", "-p", p)
    assert code == 0, err
    code, out, err = run("validate", "weather", "--force", "--max-quarantined", "0", "-p", p)
    assert code == 4 and "failed delivery" in out
    code, _, err = run("validate", "weather", "--max-quarantined", "lots", "-p", p)
    assert code != 0 and "give a number of rows" in err


def test_serve_refuses_a_bad_port_and_one_in_use_in_one_line(trained: Path) -> None:
    code, _, err = run("serve", "-p", str(trained), "--port", "99999")
    assert code == 2 and "65535" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run("serve", "-p", str(trained), "--port", str(port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1


def test_apply_dry_run_exits_like_apply_on_a_breaking_change(tmp_path: Path) -> None:
    code, _, err = run("init", str(tmp_path / "p"))
    p = tmp_path / "p"
    assert run("apply", "-p", str(p))[0] == 0
    definitions = p / "definitions.py"
    text = definitions.read_text()
    assert "fl.Float(min=-40, max=130" in text
    definitions.write_text(text.replace("fl.Float(min=-40, max=130", "fl.Float(min=-40, max=120", 1))
    code, out, _ = run("apply", "-p", str(p), "--dry-run")
    applied, _, _ = run("apply", "-p", str(p))
    assert code == applied == 3 and "breaking" in out


def _commands() -> list[str]:
    from typer.main import get_command

    return sorted(get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["", *_commands()])
def test_help_shows_no_python_type_noise(command: str) -> None:
    code, out, err = run(*([command] if command else []), "--help")
    assert code == 0, err
    for noise in ("<bool>", "<str>", "<int>", "<path>", "<list", "<float>"):
        assert noise not in out, f"fourloops {command} --help shows {noise}"


def test_output_that_is_not_on_a_terminal_is_not_wrapped(trained: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "fourloops.cli", "models", "late", "1", "-p", str(trained)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    data = [line for line in lines if line.startswith("  data ")]
    assert len(data) == 1 and "cutoff" in data[0] and len(data[0]) > 80, done.stdout
    assert any(line.startswith("  ✓ beats_baseline") and "(need +0.05)" in line for line in lines)


def test_a_console_off_a_terminal_is_wide_unless_columns_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from fourloops.cli import common

    monkeypatch.delenv("COLUMNS", raising=False)
    assert common._console().width == common.UNWRAPPED_WIDTH
    monkeypatch.setenv("COLUMNS", "77")
    assert common._console().width == 77


def test_progress_shows_on_a_terminal_only_and_never_with_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import time

    from rich.console import Console

    from fourloops.cli import common

    shown = {}
    for name, terminal, quiet in [("tty", True, False), ("json", True, True), ("pipe", False, False)]:
        buffer = io.StringIO()
        monkeypatch.setattr(common, "err", Console(file=buffer, force_terminal=terminal, width=100))
        with common.progress(quiet=quiet) as step:
            step("joining the frames")
            time.sleep(0.25)
        shown[name] = "joining the frames" in buffer.getvalue()
    assert shown == {"tty": True, "json": False, "pipe": False}


def test_train_shows_its_steps_on_a_terminal_and_none_with_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training took minutes in silence (issue 10): each step is on the status line of a terminal."""
    import io

    from rich.console import Console

    from fourloops.cli import common

    root = prepare_project(tmp_path / "p", versions=0, promote=(), materialize=False)
    said: list[tuple[str, bool]] = []
    update = common.progress._update

    def recording(self: common.progress, message: str) -> None:
        said.append((message, self._status is not None))
        update(self, message)

    monkeypatch.setattr(common.progress, "_update", recording)
    monkeypatch.setattr(common, "err", Console(file=io.StringIO(), force_terminal=True, width=100))
    code, _, err = run("train", "late", "-p", str(root))
    assert code == 0, err
    shown = [message for message, on_screen in said if on_screen]
    assert "building the point-in-time training frame" in shown and "evaluating on the test rows" in shown
    assert any(message.startswith("training on ") for message in shown), said
    said.clear()
    code, out, err = run("train", "late", "-p", str(root), "--json")
    assert code == 0 and json.loads(out)["version"] == 2, err
    assert said and not any(on_screen for _, on_screen in said)  # the steps happen, nothing is drawn
