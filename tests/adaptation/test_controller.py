"""The controller: retraining triggers with cooldown, cap and refusal; one controller at a time; commands."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fourloops.cli import app as cli
from fourloops.clock import ManualClock
from fourloops.project import Project
from trips import DEFINITIONS, T0, prepare_project

NOW = T0 + timedelta(days=41)
RETRAIN = (
    'segments=["station"], retrain=fl.Retrain(every="7d", on_alerts=["input_drift"], cooldown="2d", '
    "max_per_week=2, rollout=True),"
)


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    definitions = DEFINITIONS.replace('segments=["station"],', RETRAIN)
    return prepare_project(tmp_path_factory.mktemp("controller") / "p", definitions=definitions)


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "p"
    shutil.copytree(source, target)
    return target


def _alert(project: Project, kind: str, column: str, at: datetime) -> None:
    alert = {
        "kind": kind,
        "severity": "warning",
        "column": column,
        "segment": None,
        "window": 0,
        "start": at.isoformat(),
        "end": None,
        "windows": [0],
        "evidence": {},
        "cause": "c",
        "action": "a",
    }
    project.alert_log.record("late", 1, "champion", [alert], at=at)


def test_a_schedule_retrains_and_a_passing_candidate_starts_its_rollout(
    project_dir: Path, tmp_path: Path
) -> None:
    path = _copy(project_dir, tmp_path)
    trained_at = Project.load(path, env={}).registry.get_version("late", 1).created_at
    clock = ManualClock(trained_at + timedelta(days=8))
    with Project.load(path, env={}, clock=clock) as project:
        report = project.tick(holder="a")
        kinds = [d.kind for d in report.decisions]
        assert kinds[0] == "retrain" and "schedule" in report.decisions[0].reason
        assert kinds[1:] in (["rollout_start"], ["candidate_rejected"])
        if kinds[1] == "rollout_start":
            assert project.registry.routing("late").shadow == 2
            again = project.tick(holder="a")
            assert [d.kind for d in again.decisions] == ["wait"]  # the rollout, not a second retraining
        else:
            assert "gates failed" in report.decisions[1].reason


def test_cooldown_and_the_weekly_cap_suppress_a_flapping_trigger(project_dir: Path, tmp_path: Path) -> None:
    path = _copy(project_dir, tmp_path)
    with Project.load(path, env={}) as p:
        trained_at = p.registry.get_version("late", 1).created_at
    clock = ManualClock(trained_at + timedelta(hours=12))
    with Project.load(path, env={}, clock=clock) as project:
        _alert(project, "input_drift", "load", clock())
        [decision] = project.tick(holder="a").decisions
        assert decision.kind == "retrain_suppressed" and "cooldown" in decision.reason
        assert "input_drift on load" in decision.reason
        versions = len(project.registry.versions("late"))
        clock.advance(timedelta(minutes=1))
        assert project.tick(holder="a").decisions == []  # said once: the journal is not a heartbeat
        assert len(project.registry.versions("late")) == versions  # nothing trained while suppressed
        journal = [e["action"] for e in project.metadata.audit_entries("model:late", limit=20)]
        assert (
            journal.count("controller:retrain_suppressed") == 1
            and journal[0] == "controller:retrain_suppressed"
        )


def _quarantined(project: Project, rows: int, quarantined: int) -> None:
    project.metadata.record_validation(
        view="weather",
        source="data/weather.parquet",
        contract_version="test",
        n_rows=rows,
        n_valid=rows - quarantined,
        n_quarantined=quarantined,
        quarantine_path=None,
        report={},
    )


def test_no_retraining_on_data_the_contract_quarantined(project_dir: Path, tmp_path: Path) -> None:
    path = _copy(project_dir, tmp_path)
    with Project.load(path, env={}) as p:
        trained_at = p.registry.get_version("late", 1).created_at
    clock = ManualClock(trained_at + timedelta(days=7))
    with Project.load(path, env={}, clock=clock) as project:
        _quarantined(project, 72, 24)  # a third of a day's weather broke its contract
        clock.advance(timedelta(days=1))
        [decision] = project.tick(holder="a").decisions
        assert decision.kind == "retrain_refused"
        assert "the contract quarantined 24 of 72 rows of view weather" in decision.reason
        assert len(project.registry.versions("late")) == 1
        # Broken for another day: the counts move, the reason does not; said once, not every tick.
        _quarantined(project, 72, 24)
        clock.advance(timedelta(hours=1))
        assert project.tick(holder="a").decisions == []
        # Repaired: no quarantine within the cooldown (2 days) any more: retrain again.
        clock.advance(timedelta(days=2, hours=1))
        _quarantined(project, 72, 0)
        decisions = project.tick(holder="a").decisions
        assert decisions[0].kind == "retrain", decisions[0].reason
        assert len(project.registry.versions("late")) == 2


def test_missing_features_refuse_a_retrain_and_a_quality_alert_alone_does_not(
    project_dir: Path, tmp_path: Path
) -> None:
    path = _copy(project_dir, tmp_path)
    with Project.load(path, env={}) as p:
        trained_at = p.registry.get_version("late", 1).created_at
    clock = ManualClock(trained_at + timedelta(days=8))
    with Project.load(path, env={}, clock=clock) as project:
        _alert(project, "coverage", "weather", clock() - timedelta(days=1))
        [decision] = project.tick(holder="a").decisions
        assert decision.kind == "retrain_refused" and "coverage on weather" in decision.reason
        _quarantined(project, 1000, 5)  # half a per cent: the contract doing its job, not breakage
        clock.advance(timedelta(days=2, hours=1))
        # A nullable column's nulls rising is an alert for people, not a reason to stop adapting.
        _alert(project, "data_quality", "rain", clock() - timedelta(hours=1))
        decisions = project.tick(holder="a").decisions
        assert decisions[0].kind == "retrain", decisions[0].reason


def test_one_controller_at_a_time_and_a_takeover_after_the_lease(project_dir: Path, tmp_path: Path) -> None:
    path = _copy(project_dir, tmp_path)
    clock = ManualClock(NOW)
    with Project.load(path, env={}, clock=clock) as project:
        first = project.tick(holder="a", lease=timedelta(seconds=30))
        assert first.acquired
        second = project.tick(holder="b", lease=timedelta(seconds=30))
        assert not second.acquired and second.holder == "a" and second.decisions == []
        clock.advance(timedelta(seconds=31))  # "a" died: its lease ran out
        assert project.tick(holder="b", lease=timedelta(seconds=30)).acquired
        assert not project.tick(holder="a", lease=timedelta(seconds=30)).acquired


@pytest.mark.slow
def test_a_killed_controller_process_is_taken_over(project_dir: Path, tmp_path: Path) -> None:
    path = _copy(project_dir, tmp_path)
    env = {**os.environ, "FOURLOOPS_PROJECT": str(path)}
    command = [
        sys.executable,
        "-m",
        "fourloops.cli",
        "controller",
        "--interval",
        "1s",
        "--lease",
        "4s",
        "--json",
    ]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()  # its first tick's report
        assert json.loads(line)["acquired"] is True
        second = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            assert second.stdout is not None
            report = json.loads(second.stdout.readline())
            assert report["acquired"] is False  # the first holds the lease
            os.kill(first.pid, signal.SIGKILL)  # dies without releasing it
            deadline = time.monotonic() + 30
            taken = False
            while time.monotonic() < deadline and not taken:
                taken = json.loads(second.stdout.readline())["acquired"]
            assert taken, "the second controller never took over"
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
            assert second.stdout is not None
            second.stdout.close()
        assert second.returncode == 0
    finally:
        if first.poll() is None:
            first.kill()
        first.wait(timeout=30)
        assert first.stdout is not None
        first.stdout.close()


def test_rollout_commands_and_routing_history(project_dir: Path, tmp_path: Path) -> None:
    path = _copy(project_dir, tmp_path)
    with Project.load(path, env={}) as project:
        project.train("late", seed=2, params={"n_estimators": 10})
    runner = CliRunner()
    started = runner.invoke(cli, ["rollout", "late", "2", "-p", str(path), "--reason", "try it"])
    assert started.exit_code == 0, started.output
    assert "rollout_start" in started.stdout and "requests per arm to pass" in started.stdout
    status = runner.invoke(cli, ["rollout", "status", "late", "-p", str(path)])
    assert status.exit_code == 0 and "shadow v2" in status.stdout and "stage 1 of 4 (shadow)" in status.stdout
    as_json = json.loads(runner.invoke(cli, ["rollout", "status", "late", "-p", str(path), "--json"]).stdout)
    assert as_json["rollout"]["status"] == "running" and as_json["routing"]["shadow"] == 2
    ticked = runner.invoke(cli, ["tick", "-p", str(path), "--json"])
    assert ticked.exit_code == 0 and json.loads(ticked.stdout)["decisions"][0]["kind"] == "wait"
    aborted = runner.invoke(cli, ["rollout", "abort", "late", "-p", str(path), "--reason", "enough"])
    assert aborted.exit_code == 0 and "abort" in aborted.stdout
    bad = runner.invoke(cli, ["rollout", "status", "-p", str(path)])
    assert bad.exit_code != 0 and "usage: fourloops rollout status MODEL" in bad.output
    now = datetime.now(UTC)
    at_now = json.loads(
        runner.invoke(cli, ["models", "late", "--at", now.isoformat(), "-p", str(path), "--json"]).stdout
    )
    assert at_now["champion"] == 1 and at_now["shadow"] is None
    with Project.load(path, env={}) as project:
        during = [e for e in project.registry.routing_history("late") if e.spec.shadow == 2]
        assert project.routing_at("late", during[0].at).shadow == 2
    text = runner.invoke(cli, ["models", "late", "--at", during[0].at.isoformat(), "-p", str(path)])
    assert text.exit_code == 0 and "shadow v2" in text.stdout


def test_a_retrain_fits_on_its_own_window_and_split_and_reproduces_them(tmp_path: Path) -> None:
    """fl.Retrain(window=, split=): the controller's retrain sees the last ``window`` of rows and holds
    out its own (shorter) validation and test; both are recorded, and reproduce re-runs them."""
    policy = (
        'segments=["station"], retrain=fl.Retrain(every="7d", cooldown="2d", window="20d", '
        'split=fl.TimeSplit(validation="4d", test="4d")),'
    )
    path = prepare_project(tmp_path / "p", definitions=DEFINITIONS.replace('segments=["station"],', policy))
    clock = ManualClock(T0 + timedelta(days=41))
    with Project.load(path, env={}, clock=clock) as project:
        # What the controller calls when a trigger fires (the tick's triggers are tested above).
        assert project.loop.train("late").version == 2
        lineage = project.registry.get_version("late", 2).lineage
        assert lineage["start"] == (clock() - timedelta(days=20)).isoformat()
        assert lineage["split"] == {"validation": "4d", "test": "4d"}
        assert project.registry.get_version("late", 1).lineage["split"] == {"validation": 0.2, "test": 0.2}
        data = lineage["data"]
        first, last = (datetime.fromisoformat(t) for t in data["time_range"])
        assert first >= clock() - timedelta(days=20)
        parts = data["split"]
        test_start, validation_start = (
            datetime.fromisoformat(parts[k]) for k in ("test_start", "validation_start")
        )
        assert test_start - validation_start == timedelta(days=4)
        assert timedelta(days=3) < last - test_start <= timedelta(days=4)
        again = project.reproduce("late", 2)
        assert again["reproduced"] and again["metrics_match"], again  # on the same split, not the model's
