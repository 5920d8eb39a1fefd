"""``Project.ope``: the estimators on a project's own event log; the action is the route that answered."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from fourloops.cli import app as cli
from fourloops.clock import ManualClock
from fourloops.errors import NotFoundError, SchemaError
from fourloops.project import Project
from fourloops.storage.events import Label
from trips import T0, prepare_project

START = T0 + timedelta(days=33)
REQUESTS = 400
#: The chance of a positive label when each version answers.
RATES = {1: 0.3, 2: 0.6}
POLICY = pl.DataFrame({"route": ["ab:1", "ab:2"], "probability": [0.2, 0.8]})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    """An A/B test of versions 1 and 2 (50/50), labels posted for all but the last 40 requests."""
    root = prepare_project(tmp_path_factory.mktemp("ope") / "p", versions=2, promote=(1,))
    rng = np.random.default_rng(3)
    clock = ManualClock(START)
    answered: list[dict[str, object]] = []
    labels: list[Label] = []
    with Project.load(root, env={}, clock=clock) as project:
        project.registry.set_routing("late", ab={1: 0.5, 2: 0.5}, force=True, reason="ope test")
        with TestClient(project.app()) as client:
            for i in range(REQUESTS):
                clock.set(START + timedelta(minutes=i))
                body = {
                    "inputs": {"station": "abc"[i % 3], "load": float(rng.uniform()), "rain": 0.5},
                    "request_id": f"ope-{i}",
                }
                answer = client.post("/v1/models/late/predict", json=body)
                assert answer.status_code == 200, answer.text
                version = int(answer.json()["version"])
                label = int(rng.uniform() < RATES[version])
                answered.append({"request_id": f"ope-{i}", "version": version, "label": label})
                if i < REQUESTS - 40:
                    labels.append(Label(f"ope-{i}", label, clock() + timedelta(hours=1)))
        clock.set(START + timedelta(days=1))
        project.labels(labels)
    return root, answered


def test_ope_on_the_event_log_weights_each_route_by_its_split(
    tmp_path: Path, served: tuple[Path, list]
) -> None:
    root, answered = served
    with Project.load(root, env={}) as project:
        result = project.ope("late", POLICY, replicates=200)
    labelled = answered[: REQUESTS - 40]
    target = {1: 0.2, 2: 0.8}
    weights = np.array([target[int(a["version"])] / 0.5 for a in labelled])
    rewards = np.array([a["label"] for a in labelled], dtype=float)
    assert {int(a["version"]) for a in labelled} == {1, 2}
    assert result.rounds == len(labelled)
    assert result.logged_value == pytest.approx(rewards.mean())
    assert result.estimates["ips"].value == pytest.approx((weights * rewards).mean(), rel=1e-12)
    assert result.estimates["snips"].value == pytest.approx((weights * rewards).sum() / weights.sum())
    truth = 0.2 * RATES[1] + 0.8 * RATES[2]
    for name in ("ips", "snips", "dr", "dm"):
        e = result.estimates[name]
        assert e.low is not None and e.high is not None and e.low < truth < e.high
    assert result.verdict.value == "ok" and result.diagnostics.unsupported_mass == 0.0
    assert "40 of 400 served requests have no 'label_number' yet: left out" in result.notes
    assert result.settings["model"] == "late"
    policy_file = tmp_path / "routes.csv"
    POLICY.write_csv(policy_file)
    with Project.load(root, env={}) as project:
        again = project.ope("late", policy_file, replicates=200)
    assert again.to_dict() == result.to_dict()


def test_a_route_never_served_is_unsupported_mass(served: tuple[Path, list]) -> None:
    root, _ = served
    policy = pl.DataFrame({"route": ["ab:1", "ab:2", "canary"], "probability": [0.1, 0.1, 0.8]})
    with Project.load(root, env={}) as project:
        result = project.ope("late", policy, replicates=50)
    assert result.diagnostics.unsupported_mass == pytest.approx(0.8)
    assert result.verdict.value == "inconclusive" and "never contain" in str(result.reason)


def test_event_log_errors(served: tuple[Path, list]) -> None:
    root, _ = served
    with Project.load(root, env={}) as project:
        with pytest.raises(NotFoundError, match="no model 'nope'"):
            project.ope("nope", POLICY)
        with pytest.raises(SchemaError, match="no column 'clicks' for the reward"):
            project.ope("late", POLICY, reward="clicks")
        with pytest.raises(
            SchemaError, match=r"the logs' action 'ab:\d' \(first at row 0\) is not in the policy"
        ):
            project.ope("late", pl.DataFrame({"route": ["champion"], "probability": [1.0]}))
        with pytest.raises(SchemaError, match="no served request with a 'label_number'"):
            project.ope("late", POLICY, since=START + timedelta(days=2))


def test_the_command_on_the_event_log(tmp_path: Path, served: tuple[Path, list]) -> None:
    root, _ = served
    policy_file = tmp_path / "routes.csv"
    POLICY.write_csv(policy_file)
    args = ["ope", "--model", "late", "-p", str(root), "--policy", str(policy_file), "--replicates", "200"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["rounds"] == REQUESTS - 40 and d["verdict"] == "ok"
    human = CliRunner().invoke(cli, args)
    assert human.exit_code == 0, human.output
    assert "IPS" in human.stdout and "verdict: ok" in human.stdout
