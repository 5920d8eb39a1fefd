"""``simulate`` on a small project: injected incidents are caught (each kind), a quiet run stays quiet, and
the same seed gives the same run."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fourloops.cli import app as cli
from fourloops.config import load_config
from fourloops.errors import ConfigError
from fourloops.project import Project
from fourloops.simulation import load_incidents
from trips import DEFINITIONS, T0, write_project

START, END = T0 + timedelta(days=28), T0 + timedelta(days=38)
POLICY = (
    'segments=["station"], rollout=fl.Rollout(stages=[fl.Canary(0.5, min_requests=60, max_duration="6d"), '
    'fl.Full()], checks=[fl.Check("error", margin=0.05), fl.Check("fallback", margin=0.02, critical=True)]),'
)
RETRAIN = ' retrain=fl.Retrain(on_alerts=["performance"], cooldown="2d"),'
INCIDENTS = """
[[incident]]
name = "station c triples"
kind = "covariate_shift"
start = "2013-02-01"
segment = { station = "c" }
factor = 3

[[incident]]
name = "trips at a are late the other way"
kind = "concept_shift"
start = "2013-02-03"
segment = { station = "a" }
flip = 0.7

[[incident]]
name = "rain gauge at b broken"
kind = "broken_field"
start = "2013-02-03"
view = "weather"
field = "rain"
mode = "empty"
segment = { station = "b" }

[[incident]]
name = "a release worse at b"
kind = "bad_release"
start = "2013-01-30"
segment = { station = "b" }
flip = 0.9
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim") / "p"
    write_project(root, trips=12_000)
    # Weather arrives in deliveries (a folder of files), as a broken field needs.
    (root / "data/weather").mkdir()
    (root / "data/weather.parquet").rename(root / "data/weather/part-0.parquet")
    definitions = DEFINITIONS.replace('segments=["station"],', POLICY + RETRAIN).replace(
        '"data/weather.parquet"', '"data/weather/*.parquet"'
    )
    (root / "definitions.py").write_text(definitions)
    toml = root / "fourloops.toml"
    toml.write_text(toml.read_text() + '\n[alerts]\nmin_labels = 90\nsinks = "log"\n')
    (root / "incidents.toml").write_text(INCIDENTS)
    return root


@pytest.fixture(scope="module")
def incident_run(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("simout")
    with Project.load(source, env={}) as project:
        result = project.simulate(
            start=START, end=END, window="2d", out=out, incidents=source / "incidents.toml"
        )
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(json.dumps(result.to_dict(), default=str))
    # Each run is a copy with the project's own settings, stores of its own, and no alert sent.
    copy = load_config(out / "incidents", env={})
    assert copy.alerts.min_labels == 90 and copy.alerts.sink_names == []
    assert copy.root == (out / "incidents").resolve()
    return summary


def _incident(summary: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(i for i in summary["incidents"] if i["kind"] == kind)


def test_the_summary_has_the_documented_keys(incident_run: dict[str, Any]) -> None:
    s = incident_run
    assert {"windows", "alerts", "actions", "incidents"} <= set(s)
    assert len(s["windows"]) == 5 and s["requests"] > 900
    for action in s["actions"]:
        assert {"at", "kind", "model", "version", "reason", "evidence"} <= set(action)
    for incident in s["incidents"]:
        assert {"name", "kind", "start", "detected_at", "responses"} <= set(incident)
    assert s["actions"][0]["kind"] == "promote"  # a first champion, trained on the data before the start
    assert "false_alarms" in s and isinstance(s["control"]["raised"], list)
    # Where the time went, per phase of each run.
    assert {"serving", "monitoring", "controller", "first champion"} <= set(s["timings"])
    assert all(v >= 0 for v in s["timings"].values()) and s["control"]["timings"]["serving"] > 0


def test_a_covariate_shift_is_input_drift_on_the_right_column(incident_run: dict[str, Any]) -> None:
    found = _incident(incident_run, "covariate_shift")
    assert found["detected_at"] is not None, found
    assert "station" in found["detected_by"] or "drift" in found["detected_by"]
    assert found["detected_at"] >= found["start"]


def test_a_concept_shift_is_a_performance_drop_once_labels_mature(incident_run: dict[str, Any]) -> None:
    found = _incident(incident_run, "concept_shift")
    assert found["detected_at"] is not None, found
    assert "performance" in found["detected_by"]
    # In its own segment too, judged on its last windows pooled.
    assert any(s.startswith("alert performance (station=a)") for s in found["signals"]), found["signals"]


def test_a_broken_field_is_caught_at_ingestion(incident_run: dict[str, Any]) -> None:
    found = _incident(incident_run, "broken_field")
    assert found["detected_at"] is not None, found
    assert "quarantine" in found["detected_by"] and "rain" in json.dumps(incident_run["actions"])


def test_a_bad_release_is_aborted_during_its_canary(incident_run: dict[str, Any]) -> None:
    found = _incident(incident_run, "bad_release")
    kinds = [a["kind"] for a in incident_run["actions"]]
    assert "release" in kinds and "rollout_start" in kinds
    assert "abort" in kinds, [a["reason"] for a in incident_run["actions"]]
    assert found["detected_at"] is not None and "abort" in found["detected_by"]
    abort = next(a for a in incident_run["actions"] if a["kind"] == "abort")
    failed = next(c for c in abort["evidence"]["checks"] if c["verdict"] == "fail")
    worst = min(failed["segments"].items(), key=lambda kv: kv[1]["difference"])
    assert worst[0] == "station=b"  # the release is worst in the segment whose labels it learnt wrong
    # Without fourloops acting the release would have answered everything from its start: worse.
    after = [w for w in found["metric"] if w["start"] >= found["detected_at"]]
    assert after and all(w["with"] is not None and w["without"] is not None for w in after)
    assert sum(w["with"] - w["without"] for w in after) / len(after) > 0.02


def test_outcomes_score_every_labelled_answer_with_and_without_acting(incident_run: dict[str, Any]) -> None:
    outcomes = incident_run["outcomes"]
    assert outcomes["metric"] == "roc_auc" and len(outcomes["windows"]) == 5
    for w in outcomes["windows"]:
        assert w["labelled"] > 300 and 0.4 < w["with"] < 1 and 0.4 < w["without"] < 1
    control = incident_run["control"]["outcomes"]["windows"]
    # Nothing happened in the control run before its first retrain: served is the first champion.
    assert control[0]["with"] == pytest.approx(control[0]["without"], abs=1e-9)
    for incident in incident_run["incidents"]:
        assert incident["metric"], incident["name"]
        assert {"start", "with", "without", "control", "labelled"} <= set(incident["metric"][0])
        # The same on the incident's segment alone, in both runs.
        own = incident["metric"][0]["segment"]
        assert {"with", "without", "control", "labelled"} <= set(own) and 0 < own["labelled"]
        assert own["labelled"] < incident["metric"][0]["labelled"]
        assert incident["cost"]["segment"]["windows"] == len(incident["metric"])
    assert set(outcomes["windows"][0]["segments"]) == {"station=a", "station=b", "station=c"}


def test_the_report_tells_each_incident(incident_run: dict[str, Any], source: Path) -> None:
    from fourloops.simulation.report import render

    html = render(incident_run)
    assert html.startswith("<!doctype html>") and "Timeline" in html
    for incident in incident_run["incidents"]:
        assert incident["name"] in html
    # Each incident's cost in its own segment, then over all traffic.
    assert "roc_auc in station = a served averaged" in html and "roc_auc over all traffic" in html
    # A concept shift narrowed by where says which rows changed inside the segment it is judged on.
    narrowed = [
        {**i, "where": {"lane": "1"}} if i["kind"] == "concept_shift" else i
        for i in incident_run["incidents"]
    ]
    html = render({**incident_run, "incidents": narrowed})
    assert "(concept_shift, station = a; where lane = 1)" in html
    assert "Here only the rows where lane = 1 change" in html


def _stable(summary: dict[str, Any]) -> str:
    """The summary without what varies between identical runs: wall time, the latency it measures,
    and the last digits of sums the engine adds up in parallel (numbers to nine significant digits;
    every decision, alert and action must be the same)."""
    trimmed = {k: v for k, v in summary.items() if k not in ("seconds", "timings")}
    trimmed.get("control", {}).pop("timings", None)
    for windows in (trimmed["windows"], trimmed.get("control", {}).get("windows", [])):
        for window in windows:
            window.pop("operations", None)

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.9g}")
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    return json.dumps(rounded(trimmed), sort_keys=True, default=str)


def test_a_quiet_history_stays_quiet(source: Path, tmp_path: Path) -> None:
    with Project.load(source, env={}) as project:
        result = project.simulate(start=START, end=START + timedelta(days=4), window="2d", out=tmp_path)
    quiet = result.to_dict()
    assert quiet["requests"] > 400 and "incidents" not in quiet
    assert [a for a in quiet["raised"] if a["severity"] != "info"] == []
    assert [a["kind"] for a in quiet["actions"]] == ["promote"]


def test_the_same_seed_gives_the_same_run_in_one_process_or_two(source: Path, tmp_path: Path) -> None:
    incidents = load_incidents(source / "incidents.toml")[:1]  # the covariate shift: quick to replay
    runs = []
    for n, parallel in enumerate((True, False)):
        with Project.load(source, env={}) as project:
            result = project.simulate(
                start=START + timedelta(days=2),
                end=START + timedelta(days=5),
                window="1d",
                out=tmp_path / str(n),
                incidents=incidents,
                parallel=parallel,
            )
        runs.append(result.to_dict())
    assert runs[0]["control"]["requests"] < runs[0]["requests"]  # the shift added rows
    assert _stable(runs[0]) == _stable(runs[1])


def test_an_error_in_a_run_is_one_line_naming_it(source: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[incident]]\nkind = "covariate_shift"\nstart = "2013-01-30"\nsegment = { city = "x" }\n')
    with Project.load(source, env={}) as project, pytest.raises(ConfigError, match="segment column 'city'"):
        project.simulate(start=START, end=START + timedelta(days=2), out=tmp_path / "o", incidents=bad)


def test_incident_files_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[incident]]\nkind = "meteor"\nstart = "2013-01-01"\n')
    with pytest.raises(ConfigError, match="kind must be one of"):
        load_incidents(bad)
    bad.write_text('[[incident]]\nkind = "concept_shift"\nstart = "2013-01-01"\nflip = 2\n')
    with pytest.raises(ConfigError, match="flip"):
        load_incidents(bad)
    with pytest.raises(ConfigError, match="no such incidents file"):
        load_incidents(tmp_path / "missing.toml")
    bad.write_text(
        '[[incident]]\nkind = "concept_shift"\nstart = "2013-01-01"\nflip = 0.2\nto_positive = 0.1\n'
    )
    with pytest.raises(ConfigError, match="not both"):
        load_incidents(bad)


def test_a_concept_shift_flips_the_labels_in_the_data_itself_one_way(source: Path, tmp_path: Path) -> None:
    import polars as pl

    from fourloops.simulation.incidents import Incident
    from fourloops.simulation.replay import _shift_entities

    copy = tmp_path / "p"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".fourloops"))
    start = T0 + timedelta(days=30)
    shift = Incident("later at c", "concept_shift", start, {"station": "c"}, to_positive=1.0)
    before = pl.read_parquet(copy / "data/trips.parquet")
    with Project.load(copy, env={}) as project:
        _shift_entities(project, project.model("late"), [shift], seed=0)
    after = pl.read_parquet(copy / "data/trips.parquet")
    assert after.height == before.height
    late = (pl.col("minutes_late") > 10).alias("late")
    was, now = before.select(late, "station", "at"), after.select(late)["late"]
    hit = (was["station"] == "c") & (was["at"] >= start)
    # Every labelled on-time trip at c after the start became late; nothing else changed.
    assert now.filter(hit & was["late"].is_not_null()).all()
    assert now.filter(~hit).to_list() == was["late"].filter(~hit).to_list()
    assert after["minutes_late"].max() == before["minutes_late"].max()  # the column's own extreme


def test_a_concept_shift_narrowed_by_where_flips_only_the_rows_that_match_it(
    source: Path, tmp_path: Path
) -> None:
    """The segment stays where the shift is judged; ``where`` is the part of it whose labels change."""
    import polars as pl

    from fourloops.simulation.incidents import Incident
    from fourloops.simulation.replay import _shift_entities

    copy = tmp_path / "p"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".fourloops"))
    trips = copy / "data/trips.parquet"
    lanes = pl.read_parquet(trips).with_row_index("i")
    lanes.with_columns(lane=(pl.col("i") % 3).cast(pl.String)).drop("i").write_parquet(trips)
    start = T0 + timedelta(days=30)
    shift = Incident(
        "later at c, lane 1", "concept_shift", start, {"station": "c"}, to_positive=1.0, where={"lane": "1"}
    )
    assert shift.to_dict()["where"] == {"lane": "1"} and shift.to_dict()["segment"] == {"station": "c"}
    before = pl.read_parquet(trips)
    with Project.load(copy, env={}) as project:
        _shift_entities(project, project.model("late"), [shift], seed=0)
    after = pl.read_parquet(trips)
    late = (pl.col("minutes_late") > 10).alias("late")
    was, now = before.select(late, "station", "lane", "at"), after.select(late)["late"]
    in_segment = (was["station"] == "c") & (was["at"] >= start)
    hit = in_segment & (was["lane"] == "1")
    assert now.filter(hit & was["late"].is_not_null()).all()
    assert now.filter(~hit).to_list() == was["late"].filter(~hit).to_list()
    # The rest of the segment kept its on-time trips: only the part named by where changed.
    assert (~now.filter(in_segment & ~hit & was["late"].is_not_null())).any()


def test_where_is_checked(source: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    head = '[[incident]]\nstart = "2013-01-30"\nsegment = { station = "c" }\n'
    bad.write_text(head + 'kind = "covariate_shift"\nfactor = 2\nwhere = { station = "c" }\n')
    with pytest.raises(ConfigError, match="where narrows a concept_shift's rows; a covariate_shift has none"):
        load_incidents(bad)
    bad.write_text(head + 'kind = "concept_shift"\nflip = 0.5\nwhere = "lane 1"\n')
    with pytest.raises(ConfigError, match="where must be a table"):
        load_incidents(bad)
    bad.write_text(head + 'kind = "concept_shift"\nflip = 0.5\nwhere = { lane = "1" }\n')
    (shift,) = load_incidents(bad)
    assert shift.where == {"lane": "1"}
    with Project.load(source, env={}) as project, pytest.raises(ConfigError, match="where column 'lane'"):
        project.simulate(start=START, end=START + timedelta(days=2), out=tmp_path / "o", incidents=bad)


def test_the_simulate_command(source: Path, tmp_path: Path) -> None:
    copy = tmp_path / "p"
    shutil.copytree(source, copy)
    out = tmp_path / "out"
    done = CliRunner().invoke(
        cli,
        [
            "simulate",
            "-p",
            str(copy),
            "--start",
            START.isoformat(),
            "--end",
            (START + timedelta(days=2)).isoformat(),
            "--window",
            "1d",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert len(summary["windows"]) == 2 and (out / "report.html").is_file()
    backwards = CliRunner().invoke(
        cli, ["simulate", "-p", str(copy), "--start", END.isoformat(), "--end", START.isoformat()]
    )
    assert backwards.exit_code != 0 and "is not after its start" in backwards.output


def test_the_readmes_incidents_file_is_valid(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Simulation") : readme.index("## Configuration")]
    [block] = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    (tmp_path / "incidents.toml").write_text(block)
    kinds = [i.kind for i in load_incidents(tmp_path / "incidents.toml")]
    assert kinds == ["covariate_shift", "concept_shift", "broken_field", "bad_release"]


def test_the_demo_incidents_file_reads_back_as_the_demo_incidents(tmp_path: Path) -> None:
    """The incidents.toml the demo writes beside its report reproduces its run with `simulate --incidents`."""
    from datetime import UTC, datetime

    from fourloops.demo.autumn import incidents_for, to_toml

    incidents = incidents_for(datetime(2013, 9, 1, tzinfo=UTC), 120)
    path = tmp_path / "incidents.toml"
    path.write_text(to_toml(incidents), encoding="utf-8")
    assert [i.to_dict() for i in load_incidents(path)] == [i.to_dict() for i in incidents]
    assert any(i.where for i in incidents)  # the concept shift follows a feature inside its segment
