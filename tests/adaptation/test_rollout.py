"""A candidate walks shadow -> canary -> full on evidence from served traffic, or backs out on its own."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from fourloops.clock import ManualClock
from fourloops.definitions.lifecycle import Stage
from fourloops.errors import ConfigError, FourloopsError
from fourloops.project import Project
from fourloops.storage.events import Label
from trips import DEFINITIONS, T0, prepare_project

NOW = T0 + timedelta(days=41)
POLICY = (
    'segments=["station"], rollout=fl.Rollout(stages=[fl.Shadow(min_requests=400, max_duration="1d"), '
    'fl.Canary(0.5, min_requests=400, max_duration="2d"), fl.Full()], '
    'checks=[fl.Check("error", margin=0.06), fl.Check("fallback", margin=0.02, critical=True)]),'
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    definitions = DEFINITIONS.replace('segments=["station"],', POLICY)
    return prepare_project(tmp_path_factory.mktemp("rollout") / "p", versions=2, definitions=definitions)


def _traffic(
    project: Project,
    clock: ManualClock,
    *,
    n: int,
    seed: int,
    labels: str = "truth",
    stations: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3),
) -> None:
    """``n`` requests through the app, each unit its own, then their labels an hour later.

    ``labels="truth"`` draws each label from the process that made the data; ``"champion"`` makes
    every label agree with the champion's decision (so any version that disagrees is worse);
    ``"canary wrong in c"`` is the truth except that the canary's answers at station c are always
    wrong (a regression confined to one segment); ``"none"`` sends no labels (they are far away).
    ``stations`` are the stations' shares.
    """
    rng = np.random.default_rng(seed)
    answers = []
    with TestClient(project.app()) as client:
        for i in range(n):
            clock.advance(timedelta(seconds=20))
            station, load, rain = (
                str(rng.choice(["a", "b", "c"], p=list(stations))),
                float(rng.uniform()),
                float(rng.gamma(0.5, 2)),
            )
            body = {"inputs": {"station": station, "load": load, "rain": rain}, "unit_id": f"u-{seed}-{i}"}
            r = client.post("/v1/models/late/predict", json=body)
            assert r.status_code == 200, r.text
            answers.append((r.json(), station, load, rain))
    clock.advance(timedelta(hours=1))
    if labels == "none":
        return
    out = []
    for answer, station, load, rain in answers:
        if labels == "canary wrong in c" and station == "c" and answer["route"] == "canary":
            value = int(answer["prediction"] < 0.5)
        elif labels == "champion":
            value = int(answer["prediction"] >= 0.5) if answer["route"] == "champion" else None
            if value is None:  # label the canary's requests by what the champion would have said
                logit = -2 + 0.8 * rain + 2 * load + 0.7 * (station == "c")
                value = int(logit >= 0)
        else:
            logit = -2 + 0.8 * rain + 2 * load + 0.7 * (station == "c")
            value = int(rng.uniform() < 1 / (1 + np.exp(-logit)))
        out.append(Label(answer["request_id"], value, clock()))
    project.labels(out)


def test_a_candidate_passes_every_stage_and_becomes_champion(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        started = project.rollout("late", 2, reason="test")
        assert started.kind == "rollout_start" and started.evidence["stage"]["kind"] == "shadow"
        assert set(started.evidence["plan"]["checks"]) == {"error", "fallback"}
        routing = project.registry.routing("late")
        assert (routing.shadow, routing.canary, routing.stage) == (2, None, Stage.SHADOW)
        with pytest.raises(ConfigError, match="already has a running rollout"):
            project.rollout("late", 2)

        _traffic(project, clock, n=50, seed=1)
        waiting = project.tick()
        assert [d.kind for d in waiting.decisions] == ["wait"]  # too few pairs yet: no verdict is a pass

        _traffic(project, clock, n=1200, seed=2)
        advanced = project.tick()
        assert [d.kind for d in advanced.decisions] == ["stage"], advanced.decisions[0].reason
        shadow = advanced.decisions[0].evidence["shadow"]
        assert shadow["pairs"] >= 1200 and 0.5 < shadow["agreement"] <= 1.0
        routing = project.registry.routing("late")
        assert (routing.canary, routing.canary_share, routing.shadow, routing.stage) == (
            2,
            0.5,
            None,
            Stage.CANARY,
        )

        _traffic(project, clock, n=6000, seed=3)
        promoted = project.tick()
        assert [d.kind for d in promoted.decisions] == ["promote"], promoted.decisions[0].reason
        assert project.registry.get_version("late", "champion").version == 2
        routing = project.registry.routing("late")
        assert (routing.canary, routing.shadow, routing.stage) == (None, None, Stage.PRODUCTION)
        status = project.rollout_status("late")
        assert status["rollout"]["status"] == "completed"
        assert [h["kind"] for h in status["rollout"]["state"]["history"]] == ["shadow", "canary", "full"]
        journal = [e["action"] for e in project.metadata.audit_entries("model:late", limit=50)]
        for kind in ("rollout_start", "wait", "stage", "promote"):
            assert f"controller:{kind}" in journal
        assert project.tick().decisions == []  # done: nothing left to do


def test_a_worse_canary_is_aborted_and_traffic_goes_back_to_the_champion(
    trained: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    definitions = (
        (copy / "definitions.py").read_text().replace('fl.Shadow(min_requests=400, max_duration="1d"), ', "")
    )
    (copy / "definitions.py").write_text(definitions)
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        project.rollout("late", 2, reason="test")
        assert project.registry.routing("late").canary == 2
        aborted = None
        for seed in range(10, 20):  # labels that agree with the champion: the canary can only be worse
            _traffic(project, clock, n=600, seed=seed, labels="champion")
            decisions = project.tick().decisions
            if decisions and decisions[0].kind == "abort":
                aborted = decisions[0]
                break
            assert decisions[0].kind == "wait"
        assert aborted is not None, "the canary was never aborted"
        assert "check error failed" in aborted.reason
        checks = {c["outcome"]: c for c in aborted.evidence["checks"]}
        assert checks["error"]["verdict"] == "fail" and checks["error"]["high"] < -0.06
        routing = project.registry.routing("late")
        assert (routing.champion, routing.canary, routing.canary_share, routing.stage) == (
            1,
            None,
            0.0,
            Stage.NONE,
        )
        assert project.rollout_status("late")["rollout"]["status"] == "aborted"
        # Every server follows the registry: a new app answers from the champion only.
        with TestClient(project.app()) as client:
            routes = {
                client.post(
                    "/v1/models/late/predict",
                    json={"inputs": {"station": "a", "load": 0.5}, "unit_id": f"x{i}"},
                ).json()["route"]
                for i in range(40)
            }
        assert routes == {"champion"}


def _canary_only(copy: Path, check: str) -> None:
    """The test policy without its shadow stage, with ``check`` in place of the error check."""
    definitions = (copy / "definitions.py").read_text()
    definitions = definitions.replace('fl.Shadow(min_requests=400, max_duration="1d"), ', "")
    (copy / "definitions.py").write_text(definitions.replace('fl.Check("error", margin=0.06)', check))


def _tick_until_decided(project: Project, clock: ManualClock, seeds: range) -> list[Any]:
    """Traffic without labels, then a tick, until a tick decides something other than waiting."""
    decisions: list[Any] = []
    for seed in seeds:
        _traffic(project, clock, n=600, seed=seed, labels="none")
        decisions = project.tick().decisions
        if decisions and decisions[0].kind != "wait":
            break
    return decisions


def test_an_estimated_check_decides_before_any_label_arrives(trained: Path, tmp_path: Path) -> None:
    """Labels far away: the canary is judged on each version's expected error (its calibrated score)."""
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    _canary_only(copy, 'fl.Check("error", margin=0.06, estimate=True)')
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        started = project.rollout("late", 2, reason="test")
        assert "estimated_error" in started.evidence["plan"]["checks"]
        decisions = _tick_until_decided(project, clock, range(30, 40))
        assert [d.kind for d in decisions] == ["promote"], decisions and decisions[0].reason
        checks = {c["check"]: c for c in decisions[0].evidence["checks"]}
        estimated = checks["estimated_error"]
        assert estimated["verdict"] == "pass" and estimated["estimated"] and estimated["outcome"] == "error"
        assert estimated["rows"]["canary"] > 250  # every canary request counted, none labelled


def test_without_estimation_a_labelled_check_waits_for_its_labels(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    _canary_only(copy, 'fl.Check("error", margin=0.06)')
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        project.rollout("late", 2, reason="test")
        decisions = _tick_until_decided(project, clock, range(30, 33))
        assert [d.kind for d in decisions] == ["wait"]
        checks = {c["check"]: c for c in decisions[0].evidence["checks"]}
        assert checks["error"]["rows"] == {"champion": 0, "canary": 0}
        assert checks["error"]["verdict"] == "inconclusive"


def test_an_estimated_check_aborts_a_candidate_that_knows_less(trained: Path, tmp_path: Path) -> None:
    """A one-stump model: its calibrated chances sit near the base rate, so it expects more errors."""
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    _canary_only(copy, 'fl.Check("error", margin=0.02, estimate=True)')
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        weak = project.train(
            "late", seed=9, params={"n_estimators": 1, "max_depth": 1, "learning_rate": 0.01}
        )
        project.rollout("late", weak.version, reason="test", force=True)
        decisions = _tick_until_decided(project, clock, range(40, 50))
        assert [d.kind for d in decisions] == ["abort"], decisions and decisions[0].reason
        assert "check estimated_error failed" in decisions[0].reason
        assert project.registry.routing("late").canary is None


def test_a_canary_worse_in_one_segment_only_is_aborted_and_the_reason_names_it(
    trained: Path, tmp_path: Path
) -> None:
    # A margin wide enough that the overall number alone would let the canary through: station c
    # is a tenth of the traffic, so always being wrong there costs about 0.07 overall (< 0.15).
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    definitions = (
        (copy / "definitions.py")
        .read_text()
        .replace('fl.Shadow(min_requests=400, max_duration="1d"), ', "")
        .replace('fl.Check("error", margin=0.06)', 'fl.Check("error", margin=0.15)')
    )
    (copy / "definitions.py").write_text(definitions)
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        project.rollout("late", 2, reason="test")
        aborted = None
        for seed in range(40, 50):
            _traffic(project, clock, n=600, seed=seed, labels="canary wrong in c", stations=(0.45, 0.45, 0.1))
            decisions = project.tick().decisions
            if decisions and decisions[0].kind == "abort":
                aborted = decisions[0]
                break
            assert decisions[0].kind == "wait", decisions[0].reason
        assert aborted is not None, "the segment's regression was never caught"
        assert "in segment station=c" in aborted.reason
        error = next(c for c in aborted.evidence["checks"] if c["outcome"] == "error")
        assert error["verdict"] == "fail"
        assert error["high"] > -0.15  # overall alone the canary had not failed
        assert "(overall pass)" in aborted.reason or "(overall inconclusive)" in aborted.reason
        assert error["segments"]["station=c"]["verdict"] == "fail"
        assert {error["segments"][k]["verdict"] for k in ("station=a", "station=b")} <= {
            "pass",
            "inconclusive",
        }
        assert error["alpha"] == pytest.approx(0.05 / 2)  # half overall, half shared by three stations
        assert project.registry.routing("late").canary is None


def test_a_stage_without_its_requests_by_its_time_limit_pauses_for_a_human(
    trained: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        project.rollout("late", 2)
        _traffic(project, clock, n=30, seed=30)
        clock.advance(timedelta(days=2))  # past the shadow stage's max_duration of one day
        [decision] = project.tick().decisions
        assert decision.kind in ("pause", "abort")
        # The error check has no labelled pairs: must-have-data makes that a failure, not a pass.
        assert "no data" in decision.reason or "undecided" in decision.reason
        assert project.registry.get_version("late", "champion").version == 1


def test_a_stage_undecided_at_its_time_limit_aborts_when_the_policy_says_so(
    trained: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    definitions = (
        (copy / "definitions.py")
        .read_text()
        .replace(
            'fl.Check("fallback", margin=0.02, critical=True)]),',
            'fl.Check("fallback", margin=0.02, critical=True)], on_timeout="abort"),',
        )
    )
    assert 'on_timeout="abort"' in definitions
    (copy / "definitions.py").write_text(definitions)
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        project.rollout("late", 2)
        _traffic(project, clock, n=30, seed=31)
        clock.advance(timedelta(days=2))  # past the shadow stage's max_duration, checks undecided
        [decision] = project.tick().decisions
        assert decision.kind == "abort" and "undecided" in decision.reason, decision.reason
        routing = project.registry.routing("late")
        assert (routing.shadow, routing.canary, routing.champion) == (None, None, 1)
        assert project.rollout_status("late")["rollout"]["status"] == "aborted"


def test_an_operator_aborts_and_the_journal_says_who(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    with Project.load(copy, env={"FOURLOOPS_ACTOR": "alice"}, clock=ManualClock(NOW)) as project:
        project.rollout("late", 2)
        decision = project.rollout_abort("late", reason="customer complaint")
        assert decision.kind == "abort" and project.registry.routing("late").shadow is None
        entry = project.metadata.audit_entries("model:late", limit=1)[0]
        assert entry["action"] == "controller:abort" and entry["details"]["reason"] == "customer complaint"
        with pytest.raises(ConfigError, match="no rollout in progress"):
            project.rollout_abort("late")
        json.dumps(project.rollout_status("late"))


def test_rollouts_through_the_admin_api_and_their_checks_in_metrics(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    toml = copy / "fourloops.toml"
    toml.write_text(toml.read_text() + '\n[server]\nadmin_token = "s3cret-token-for-tests"\n')
    auth = {"Authorization": "Bearer s3cret-token-for-tests"}
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project, TestClient(project.app()) as client:
        assert client.post("/v1/admin/models/late/rollout", json={"version": 2}).status_code == 401
        started = client.post(
            "/v1/admin/models/late/rollout", json={"version": 2, "reason": "api"}, headers=auth
        )
        assert started.status_code == 200, started.text
        assert started.json()["kind"] == "rollout_start"
        again = client.post("/v1/admin/models/late/rollout", json={"version": 2}, headers=auth)
        assert (
            again.status_code == 409 and "already has a running rollout" in again.json()["error"]["message"]
        )
        bad = client.post("/v1/admin/models/late/rollout", json={"version": "2"}, headers=auth)
        assert bad.status_code == 400
        missing = client.post("/v1/admin/models/late/rollout", json={"version": 99}, headers=auth)
        assert missing.status_code in (404, 409) and missing.json()["error"]["message"]
        status = client.get("/v1/admin/models/late/rollout", headers=auth).json()
        assert status["rollout"]["status"] == "running" and status["routing"]["shadow"] == 2
    with Project.load(copy, env={}, clock=clock) as project:
        _traffic(project, clock, n=200, seed=50)
        project.tick()
    with Project.load(copy, env={}, clock=clock) as project, TestClient(project.app()) as client:
        text = client.get("/metrics").text
        assert 'fourloops_rollout_stage{kind="shadow",model="late",version="2"} 1.0' in text
        assert 'fourloops_rollout_check_verdict{model="late",outcome="fallback",stage="shadow"' in text
        assert "fourloops_rollout_check_margin" in text
        aborted = client.post(
            "/v1/admin/models/late/rollout/abort", json={"reason": "api abort"}, headers=auth
        )
        assert aborted.status_code == 200 and aborted.json()["kind"] == "abort"
        assert client.post("/v1/admin/models/late/rollout/abort", headers=auth).status_code == 409
        assert "fourloops_rollout_stage{" not in client.get("/metrics").text


def test_a_forced_rollout_keeps_its_force_through_every_stage(trained: Path, tmp_path: Path) -> None:
    """A version whose gates failed goes out only with force; the stages after the first need it too
    (found by the simulation: a forced release errored at its canary stage on every tick)."""
    from fourloops.adaptation import rollout
    from fourloops.registry.records import GateReport, GateVerdict

    copy = tmp_path / "p"
    shutil.copytree(trained, copy)
    clock = ManualClock(NOW)
    with Project.load(copy, env={}, clock=clock) as project:
        failing = GateReport.judge([GateVerdict("max_segment_drop", False, "a segment lost too much")])
        project.registry.record_judgement("late", 2, metrics={}, gates=failing, judgement={"why": "test"})
        with pytest.raises(FourloopsError, match="failed its gates"):
            project.rollout("late", 2, reason="test")
        started = project.rollout("late", 2, reason="test", force=True)
        assert started.evidence["forced"] is True
        model = project.model("late")
        record = project.rollout_log.current("late")
        assert record is not None
        for expected in ("stage", "promote"):  # shadow -> canary -> full, as passing checks would
            decision = rollout._advance(project.loop, record, rollout.policy_of(model), model, {})
            assert decision.kind == expected
        assert project.registry.get_version("late", "champion").version == 2
