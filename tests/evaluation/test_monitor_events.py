"""``Project.monitor``: the monitor on a project's own event log, against the version's reference."""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from fourloops.clock import ManualClock
from fourloops.engines import DuckDBEngine
from fourloops.errors import ConfigError
from fourloops.evaluation.reference import ModelReference
from fourloops.project import Project
from fourloops.project.monitoring import REFERENCE_CACHE
from fourloops.storage import tables
from fourloops.storage.events import Label
from trips import T0, prepare_project

START = T0 + timedelta(days=33)
DAYS = 6
PER_DAY = 240


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six days of traffic through the app: three normal days, then three where ``load`` runs high.

    Labels arrive an hour after each prediction, for every request but the last day's.
    """
    root = prepare_project(tmp_path_factory.mktemp("monitor") / "p")
    rng = np.random.default_rng(7)
    clock = ManualClock(START)
    labels: list[Label] = []
    with Project.load(root, env={}, clock=clock) as project, TestClient(project.app()) as client:
        for day in range(DAYS):
            for i in range(PER_DAY):
                clock.set(START + timedelta(days=day, minutes=6 * i))
                load = float(rng.uniform(0.6, 1.0) if day >= 3 else rng.uniform(0, 1))
                station = str(rng.choice(["a", "b", "c"]))
                rain = float(rng.gamma(0.5, 2.0))
                rid = f"d{day}-{i}"
                # The caller sends the weather itself: a replayed past finds no online value for its time.
                body = {"inputs": {"station": station, "load": load, "rain": rain}, "request_id": rid}
                answer = client.post("/v1/models/late/predict", json=body)
                assert answer.status_code == 200, answer.text
                if day < DAYS - 1:
                    logit = -2 + 0.8 * rain + 2 * load + 0.7 * (station == "c")  # as the training data
                    late = rng.uniform() < 1 / (1 + np.exp(-logit))
                    labels.append(Label(rid, int(late), clock() + timedelta(hours=1)))
        clock.set(START + timedelta(days=DAYS, hours=2))
        project.labels(labels)
    return root


def test_the_reference_is_profiled_and_stored_when_a_version_is_trained(served: Path) -> None:
    with Project.load(served, env={}) as project:
        version = project.registry.get_version("late", 1)
        assert "reference_profile" in version.lineage
        reference = project.reference("late", 1)
    assert reference.task == "binary" and reference.primary == "roc_auc"
    assert set(reference.profile.columns) == {"station", "load", "rain", "prediction"}
    assert reference.profile.rows == version.metrics["test_rows"] if "test_rows" in version.metrics else True
    assert reference.importance and set(reference.importance) == {"station", "load", "rain"}
    assert reference.profile.summaries.scores[(0, None, None)].labelled > 0
    assert set(reference.profile.segments) == {"station"}


def test_monitor_finds_the_shift_in_the_served_traffic(served: Path) -> None:
    clock = ManualClock(START + timedelta(days=DAYS, hours=2))
    with Project.load(served, env={}, clock=clock) as project:
        result = project.monitor("late", window="1d")
    assert [w.bounds.start for w in result.windows] == [
        START.replace(hour=0) + timedelta(days=d) for d in range(DAYS)
    ]
    assert all(w.bounds.rows == PER_DAY for w in result.windows)
    drifted = [w.drift["load"].drifted for w in result.windows]
    assert drifted == [False, False, False, True, True, True]
    assert [w.prediction_drift is not None and w.prediction_drift.drifted for w in result.windows][3:] == [
        True
    ] * 3
    kinds = {(a.kind, a.column, a.window) for a in result.alerts}
    assert ("input_drift", "load", 3) in kinds and ("prediction_drift", "prediction", 3) in kinds
    assert not [a for a in result.alerts if a.window < 3]  # nothing before the shift
    assert not [a for a in result.alerts if a.kind == "performance"]  # P(y | x) never changed
    roc = [w.metrics["roc_auc"] for w in result.windows]
    assert [r.maturity for r in roc] == ["mature"] * 5 + ["pending"]  # the last day's labels never came
    assert all(r.value.rows == PER_DAY for r in roc[:5]) and roc[5].value.value is None
    assert result.windows[5].estimated["roc_auc"].value is not None
    assert result.settings["version"] == 1 and result.settings["route"] == "champion"
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["windows"][3]["drift"]["load"]["drifted"] is True


def test_the_monitor_reading_the_log_a_day_at_a_time_judges_as_reading_it_whole(served: Path) -> None:
    """Parts of at most 100 events (a third of a day each: 240 events a day, read 8 hours at a time,
    each part joined with the labels compaction filed under those hours) give the monitor the same
    every number."""
    clock = ManualClock(START + timedelta(days=DAYS, hours=2))
    results, parts = [], []
    for chunk_events in (10**9, 100):
        with Project.load(served, env={}, clock=clock) as project:
            engine = DuckDBEngine(threads=1, chunk_events=chunk_events)
            project.engine = engine  # type: ignore[misc]
            results.append(project.monitor("late", window="1d", record=False).to_dict())
            with engine.open_events(project.event_tables, model="late") as scan:  # compacted by now
                assert scan.joined is not None
                parts.append(len(scan.joined.parts))
    assert parts == [1, 3 * DAYS]
    # every count, verdict and text equal; sums over the parts merged in another order may differ in
    # their last bit
    assert _same(results[0], results[1])


def _same(a: object, b: object) -> bool:
    """Equal, floats to 1e-12 relative."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_the_projects_alert_settings_are_the_monitors_policy(served: Path, tmp_path: Path) -> None:
    copy = tmp_path / "p"
    shutil.copytree(served, copy)
    toml = copy / "fourloops.toml"
    toml.write_text(toml.read_text() + "\n[alerts]\nconsecutive = 3\npool = 4\nsegment_alpha = 0.01\n")
    clock = ManualClock(START + timedelta(days=DAYS, hours=2))
    with Project.load(copy, env={}, clock=clock) as project:
        result = project.monitor("late", window="1d", record=False)
    # The shift began on day 3: with three windows in a row needed, it alerts on day 5 only.
    drift = sorted({a.window for a in result.alerts if (a.kind, a.column) == ("input_drift", "load")})
    assert drift == [5] and result.settings["alerts"]["consecutive"] == 3
    assert (result.settings["alerts"]["pool"], result.settings["alerts"]["segment_alpha"]) == (4, 0.01)


def test_labels_not_yet_due_keep_a_window_pending(served: Path) -> None:
    # Seen from the middle of day 2, day 2's window is not over: it is incomplete, its labels pending.
    clock = ManualClock(START + timedelta(days=2, hours=12))
    with Project.load(served, env={}, clock=clock) as project:
        result = project.monitor("late", window="1d", until=START + timedelta(days=2, hours=12))
    last = result.windows[-1]
    assert last.status.value == "incomplete" and last.metrics["roc_auc"].maturity == "pending"


def test_a_version_without_a_stored_reference_gets_one_fitted_and_cached(
    served: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "p"
    shutil.copytree(served, copy)
    with Project.load(copy, env={}) as project:
        stored = project.reference("late", 1)
        original = project.registry.get_version

        def without_profile(name: str, version: object) -> object:
            recorded = original(name, version)  # type: ignore[arg-type]
            recorded.lineage.pop("reference_profile", None)
            return recorded

        project.registry.get_version = without_profile  # type: ignore[method-assign]
        fitted = project.reference("late", 1)
        cached = list((copy / REFERENCE_CACHE).glob("late-v1-*.json"))
        again = project.reference("late", 1)
    assert len(cached) == 1
    assert isinstance(again, ModelReference)
    assert fitted.profile.columns == stored.profile.columns
    assert fitted.profile.rows == stored.profile.rows


def test_monitor_command_on_the_event_log(served: Path) -> None:
    from typer.testing import CliRunner

    from fourloops.cli import app as cli

    out = served.parent / "report.html"
    result = CliRunner().invoke(
        cli, ["monitor", "late", "-p", str(served), "--window", "1d", "--json", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert len(d["windows"]) == DAYS and d["settings"]["model"] == "late"
    assert out.read_text().startswith("<!doctype html>")


def test_budgets_and_feature_coverage_are_checked_on_the_served_traffic(served: Path, tmp_path: Path) -> None:
    from trips import DEFINITIONS

    copy = tmp_path / "p"
    shutil.copytree(served, copy)
    budgeted = DEFINITIONS.replace(
        'segments=["station"],', 'segments=["station"], budget=fl.Budget(p99_ms=0.0001, fallback_rate=0.5),'
    )
    (copy / "definitions.py").write_text(budgeted)
    day = T0 + timedelta(days=45)  # after the last weather reading: every value has expired
    clock = ManualClock(day)
    with Project.load(copy, env={}, clock=clock) as project, TestClient(project.app()) as client:
        for i in range(100):  # no rain sent: looked up, and the online store has nothing for this time
            clock.set(day + timedelta(minutes=i))
            body = {"inputs": {"station": "abc"[i % 3], "load": 0.5}, "request_id": f"x-{i}"}
            assert client.post("/v1/models/late/predict", json=body).status_code == 200
        clock.set(day + timedelta(days=1))
        result = project.monitor("late", window="1d", since=day)
    [window] = [w for w in result.windows if w.bounds.rows]
    ops = window.extra["operations"]
    assert ops["requests"] == 100 and ops["fallback_rate"] == 0.0
    assert ops["coverage"]["weather"]["ok"] == 0.0 and ops["coverage"]["weather"]["ok"] + sum(
        ops["coverage"]["weather"][k] for k in ("missing", "expired")
    ) == pytest.approx(1.0)
    kinds = {(a.kind, a.column) for a in result.alerts}
    assert ("coverage", "weather") in kinds
    budget = [a for a in result.alerts if a.kind == "budget"]
    assert [a.evidence["measure"] for a in budget] == ["latency p99 (ms)"]  # the fallback rate is within
    assert budget[0].evidence["declared"] is True and budget[0].evidence["actual"] > 0.0001


def test_alerts_are_kept_once_sent_once_and_can_be_snoozed(
    served: Path, tmp_path: Path, hook: tuple[str, object]
) -> None:
    url, handler = hook
    copy = tmp_path / "p"
    shutil.copytree(served, copy)
    toml = copy / "fourloops.toml"
    toml.write_text(toml.read_text() + f'\n[alerts]\nsinks = "log,webhook"\nwebhook = "{url}"\n')
    clock = ManualClock(START + timedelta(days=DAYS, hours=2))
    with Project.load(copy, env={}, clock=clock) as project:
        with project.metadata.transaction() as conn:  # forget what earlier tests' runs kept
            conn.execute(sa.delete(tables.alerts))
        first = project.monitor("late", window="1d")
        assert first.settings["new_alerts"] == len(first.alerts) > 0
        again = project.monitor("late", window="1d")
        assert again.settings["new_alerts"] == 0  # the same episodes: kept, not sent twice
        stored = project.alerts("late", limit=len(first.alerts))
        assert {(a["kind"], a["column"], a["window_start"]) for a in stored} == {
            (a.kind, a.column, a.start) for a in first.alerts
        }
        until = project.snooze("late", "input_drift", duration="2d", column="load", reason="known campaign")
        assert until == clock() + timedelta(days=2)
        snoozed = project.monitor("late", window="1d")
        assert not [a for a in snoozed.alerts if a.kind == "input_drift" and a.column == "load"]
        with pytest.raises(ConfigError, match="unknown alert kind"):
            project.snooze("late", "drift", duration="1d")
        audit = project.metadata.audit_entries("model:late")
        assert audit[0]["action"] == "snooze" and audit[0]["details"]["column"] == "load"
    [body] = handler.bodies  # closing the project drained the sender: one post, for the first run
    assert len(body["alerts"]) == len(first.alerts)


def test_alerts_and_snooze_commands(served: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fourloops.cli import app as cli

    copy = tmp_path / "p"
    shutil.copytree(served, copy)
    runner = CliRunner()
    assert runner.invoke(cli, ["monitor", "late", "-p", str(copy), "--json"]).exit_code == 0
    listed = runner.invoke(cli, ["alerts", "late", "-p", str(copy), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert {"input_drift", "prediction_drift"} <= {r["kind"] for r in rows}
    table = runner.invoke(cli, ["alerts", "-p", str(copy)])
    assert table.exit_code == 0 and "input_drift" in table.stdout and "load" in table.stdout
    done = runner.invoke(
        cli, ["snooze", "late", "input_drift", "--for", "3d", "--column", "load", "-p", str(copy)]
    )
    assert done.exit_code == 0 and "snoozed until" in done.stdout
    bad = runner.invoke(cli, ["snooze", "late", "drift", "--for", "3d", "-p", str(copy)])
    assert bad.exit_code != 0 and "unknown alert kind 'drift'" in bad.output
    worse = runner.invoke(cli, ["snooze", "late", "input_drift", "--for", "soon", "-p", str(copy)])
    assert worse.exit_code != 0 and "Traceback" not in worse.output


def test_both_doors_give_the_same_json_on_the_same_rows(served: Path) -> None:
    """The event log's door and the two-files door, on the same rows, judge the same way."""
    import fourloops as fl
    from fourloops.adaptation.training import prepare_data
    from fourloops.evaluation.reference import reference_table
    from fourloops.registry.loading import load_version

    until = START + timedelta(days=DAYS)
    clock = ManualClock(until + timedelta(hours=2))
    with Project.load(served, env={}, clock=clock) as project:
        events_door = project.monitor("late", window="1d", until=until, multivariate=False, record=False)
        version = project.registry.get_version("late", 1)
        model = project.model("late")
        data = prepare_data(
            model,
            root=project.root,
            views=project.feature_views,
            join=project._join,
            cutoff=datetime.fromisoformat(version.lineage["cutoff"]),
        )
        predictor = load_version(project.artifacts, version, task="binary")
        reference = reference_table(
            data.split.test, data.encoder.names, predictor.predict(data.X_test), data.y_test, task="binary"
        )
        current = project.query_events(
            'SELECT "at", station, "load", rain, prediction, label_number FROM events '
            "WHERE version = 1 AND route = 'champion' ORDER BY \"at\"",
            model="late",
        )
    files_door = fl.monitor(
        reference,
        current,
        timestamp="at",
        window="1d",
        label="label_number",
        score="prediction",
        segments=["station"],
        until=until,
        multivariate=False,
    )
    a, b = events_door.to_dict(), files_door.to_dict()
    assert a["reference"]["rows"] == b["reference"]["rows"]
    assert len(a["windows"]) == len(b["windows"]) == DAYS
    for x, y in zip(a["windows"], b["windows"], strict=True):
        for key in (
            "index",
            "start",
            "end",
            "rows",
            "status",
            "drift",
            "prediction_drift",
            "health",
            "metrics",
            "estimated",
            "segments",
        ):
            assert x[key] == y[key], key


def test_contract_rejections_and_server_cpu_are_counted_per_window_and_alerted(
    served: Path, tmp_path: Path
) -> None:
    """The server counts what the event log cannot hold; the monitor sums it per window and alerts."""
    from trips import DEFINITIONS

    copy = tmp_path / "p"
    shutil.copytree(served, copy)
    budgeted = DEFINITIONS.replace(
        'segments=["station"],', 'segments=["station"], budget=fl.Budget(cpu_ms_per_1000=0.001),'
    )
    (copy / "definitions.py").write_text(budgeted)
    day = T0 + timedelta(days=45)
    clock = ManualClock(day)
    with Project.load(copy, env={}, clock=clock) as project:
        with TestClient(project.app()) as client:
            for i in range(100):
                clock.set(day + timedelta(minutes=i))
                body = {
                    "inputs": {"station": "abc"[i % 3], "load": 0.5, "rain": 0.2},
                    "request_id": f"ok-{i}",
                }
                assert client.post("/v1/models/late/predict", json=body).status_code == 200
                if i % 10 == 0:  # a caller that started sending the load as text
                    bad = {"inputs": {"station": "a", "load": "high", "rain": 0.2}, "request_id": f"bad-{i}"}
                    answer = client.post("/v1/models/late/predict", json=bad)
                    assert answer.status_code == 422, answer.text
        # The server stored its counts when it shut down (and at every refresh before).
        stored = project.serving_periods.totals("late", since=day, until=day + timedelta(days=1))
        assert (stored.predictions, stored.rejected) == (100, 10) and stored.cpu_seconds > 0
        clock.set(day + timedelta(days=1))
        result = project.monitor("late", window="1d", since=day)
    [window] = [w for w in result.windows if w.bounds.rows]
    ops = window.extra["operations"]
    assert ops["requests"] == 100 and ops["rejected"] == 10
    assert ops["rejection_rate"] == pytest.approx(10 / 110)
    [(field, rules)] = ops["rejections"].items()
    assert field == "load" and sum(rules.values()) == 10
    assert ops["cpu_ms_per_1000"] == pytest.approx(stored.cpu_seconds * 1e6 / 100)
    [rejected] = [a for a in result.alerts if a.kind == "data_quality" and a.column == "load"]
    assert rejected.evidence["rejected"] == 10 and "contract rejected 9.1%" in rejected.cause
    budget = [a for a in result.alerts if a.kind == "budget"]
    assert [a.evidence["measure"] for a in budget] == ["CPU ms per 1,000 predictions"]
    assert json.loads(json.dumps(result.to_dict()))  # the new figures are plain JSON
    # Days later a compaction rolls the counts up by hour: the window's figures stay. (The test's
    # server stored one row; two more processes served that day too, one of them every minute.)
    from fourloops.storage.serving_periods import ServingPeriod

    extra = [
        ServingPeriod("late", f"h:{2 + m % 2}", day + timedelta(minutes=m), day + timedelta(minutes=m + 1),
                      3, {"rain": {"max": m % 2}}, 0.002)
        for m in range(0, 180)
    ]  # fmt: skip
    clock.set(day + timedelta(days=4))
    with Project.load(copy, env={}, clock=clock) as project:
        project.serving_periods.record(extra)
        before = project.serving_periods.totals("late", since=day, until=day + timedelta(days=1))
        report = project.compact_events()
        after = project.serving_periods.totals("late", since=day, until=day + timedelta(days=1))
        again = project.monitor("late", window="1d", since=day, until=day + timedelta(days=1))
    # Every row is merged into its hour's: hours 0, 1, 2 and 3 (the row ending at 3:00).
    assert report.serving_rows_rolled_up == len(extra) + stored.periods
    assert report.to_dict()["serving_rows_rolled_up"] == report.serving_rows_rolled_up
    assert (before.periods, after.periods) == (len(extra) + stored.periods, 4)
    assert (after.predictions, after.rejected, after.rejections) == (
        before.predictions,
        before.rejected,
        before.rejections,
    )
    [window] = [w for w in again.windows if w.bounds.rows]
    assert window.extra["operations"]["rejected"] == before.rejected == 10 + 90
    assert window.extra["operations"]["rejections"] == before.rejections


def test_a_replay_keeps_real_time_out_of_its_monitor(served: Path, tmp_path: Path) -> None:
    """An app built for a simulation stores no serving periods (CPU time is not reproducible)."""
    copy = tmp_path / "p"
    shutil.copytree(served, copy)
    clock = ManualClock(T0 + timedelta(days=46))
    with Project.load(copy, env={}, clock=clock) as project:
        before = project.serving_periods.totals("late", since=T0, until=T0 + timedelta(days=400)).periods
        with TestClient(project.app(record_periods=False)) as client:
            body = {"inputs": {"station": "a", "load": 0.5, "rain": 0.2}}
            assert client.post("/v1/models/late/predict", json=body).status_code == 200
        after = project.serving_periods.totals("late", since=T0, until=T0 + timedelta(days=400)).periods
    assert after == before
