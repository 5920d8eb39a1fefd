"""The offers example, end to end against its known environment: training and the counterfactual gate,
serving with exploration over HTTP, the event log, off-policy estimates against the truth, the canary
compared with its promise."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import polars as pl
import pytest
from starlette.testclient import TestClient

from fourloops.adaptation.policy_evaluation import estimate_policy
from fourloops.errors import SchemaError
from fourloops.project import Project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "offers"

pytestmark = pytest.mark.slow


def _environment() -> ModuleType:
    spec = importlib.util.spec_from_file_location("offers_environment", EXAMPLE / "environment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


env = _environment()


@pytest.fixture(scope="module")
def offers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The example copied, v1 trained and promoted."""
    root = tmp_path_factory.mktemp("offers") / "offers"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".fourloops", "__pycache__"))
    project = Project.load(root, env={})
    first = project.train("offers", seed=1)
    assert first.passed, first.gates
    project.promote("offers", 1, reason="test")
    yield project
    project.close()


def _context(rng: np.random.Generator) -> dict[str, Any]:
    row = env.sample_contexts(1, rng).row(0, named=True)
    return {"segment": row["segment"], "tenure": int(row["tenure"]), "score": float(row["score"])}


def test_the_shipped_rounds_are_what_the_script_writes() -> None:
    shipped = pl.read_parquet(EXAMPLE / "data" / "rounds.parquet")
    again = env.simulate(6000, 7)
    assert shipped.equals(again)
    assert (EXAMPLE / "data" / "rounds.parquet").stat().st_size < 200_000
    truth = env.logging_policy(shipped)
    assert np.allclose(shipped["propensity"].to_numpy(), truth[np.arange(shipped.height), [
        env.ACTIONS.index(a) for a in shipped["action"]]])  # fmt: skip


def test_training_judges_the_policy_off_policy(offers: Project) -> None:
    v1 = offers.registry.get_version("offers", 1)
    test = v1.metrics["test"]
    assert test["policy_value_low"] <= test["policy_value"] <= test["policy_value_high"]
    assert test["logged_value"] < test["policy_value"]
    [lift] = [v.to_dict() for v in v1.gates.verdicts if v.gate == "off_policy_lift"]
    numbers = lift["numbers"]
    assert lift["passed"] and numbers["against"] == "the logging policy"
    assert numbers["low"] - numbers["against_value"] == pytest.approx(numbers["lift_low"])
    # The truth on the same test rows (known in closed form): the estimate's interval holds it.
    frame = pl.read_parquet(EXAMPLE / "data" / "rounds.parquet").tail(test["rounds"])
    scorer = offers.load_model("offers", 1)
    scores = scorer.predict(scorer.encoder.frame(frame))
    probabilities, _ = offers.model("offers").exploration.matrix(scores, frame.to_dicts())  # type: ignore[union-attr]
    true_value = env.policy_value(probabilities, frame)
    assert test["policy_value_low"] <= true_value <= test["policy_value_high"]
    assert true_value > env.policy_value(env.logging_policy(frame), frame)


def test_the_gate_refuses_a_worse_candidate_and_passes_a_better_one(offers: Project) -> None:
    # A reward model that cannot split predicts one number for every action: it always offers "none".
    worse = offers.train("offers", seed=2, params={"min_child_samples": 100_000})
    [lift] = [g for g in worse.gates if g["gate"] == "off_policy_lift"]
    assert not worse.passed and not lift["passed"]
    assert (
        lift["numbers"]["against"] == "champion v1"
        and lift["numbers"]["high"] < lift["numbers"]["against_value"]
    )
    # With that worse policy as champion, a normal candidate beats it by its lower bound.
    offers.promote("offers", worse.version, force=True, reason="test: a worse champion")
    better = offers.train("offers", seed=3)
    [lift] = [g for g in better.gates if g["gate"] == "off_policy_lift"]
    assert better.passed and lift["numbers"]["against"] == f"champion v{worse.version}"
    assert lift["numbers"]["lift_low"] > 0
    offers.promote("offers", 1, force=True, reason="test: back to v1")


def test_serving_draws_logs_and_compacts_decisions(offers: Project) -> None:
    rng = np.random.default_rng(5)
    explore = offers.model("offers").exploration
    assert explore is not None
    with TestClient(offers.app()) as client:
        answers = []
        for i in range(300):
            context = _context(rng)
            r = client.post("/v1/models/offers/predict", json={"inputs": context, "request_id": f"serve-{i}"})
            assert r.status_code == 200, r.text
            answers.append((context, r.json()))
        spec = client.get("/openapi.json").json()
    body = answers[0][1]
    assert set(body) >= {"action", "propensity", "exploration_rate", "prediction", "version", "route"}
    assert body["prediction"] == body["action"] and body["action"] in env.ACTIONS
    schema = spec["components"]["schemas"]
    assert any(
        s.get("properties", {}).get("prediction", {}).get("enum") == env.ACTIONS for s in schema.values()
    )
    events = {e["request_id"]: e for e in offers.events(model="offers").to_pylist()}
    scorer = offers.load_model("offers", 1)
    explored = 0
    for i, (context, answer) in enumerate(answers):
        event = events[f"serve-{i}"]
        decision = json.loads(event["extra"])["policy"]
        # Independently: the probabilities from the scores, with the floor and the vip cap.
        probabilities, rate, greedy = explore.distribution(scorer.predict_one(context), context)
        chosen = env.ACTIONS.index(answer["action"])
        assert event["propensity"] == pytest.approx(probabilities[chosen], abs=1e-12) == answer["propensity"]
        assert decision["distribution"] == pytest.approx(dict(zip(env.ACTIONS, probabilities, strict=True)))
        assert decision["rate"] == rate == answer["exploration_rate"] and decision["version"] == 1
        assert decision["route_propensity"] == 1.0 and decision["greedy"] == env.ACTIONS[greedy]
        assert min(probabilities) >= explore.floor
        if context["segment"] == "vip":
            assert 1 - probabilities[greedy] <= 0.08 + 1e-12
        explored += answer["action"] != decision["greedy"]
    assert 0 < explored < 100
    offers.compact_events()
    table = offers.query_events(
        "SELECT request_id, action, propensity, distribution, distribution_rest, exploration_rate, "
        "route_propensity, prediction FROM events WHERE request_id LIKE 'serve-%'",
        model="offers",
        compact=False,
    ).to_pylist()
    assert len(table) == 300
    for row in table:
        assert row["action"] in env.ACTIONS
        assert json.loads(row["distribution"])[row["action"]] == pytest.approx(row["propensity"], rel=1e-12)
        assert (
            row["distribution_rest"] == 0.0
            and row["route_propensity"] == 1.0
            and row["prediction"] is not None
        )


def test_a_canary_explores_with_its_own_policy_and_is_checked_against_its_estimate(offers: Project) -> None:
    """v3 (the better candidate) as a canary: its events, then its realised reward against its estimate."""
    candidate = max(v.version for v in offers.registry.versions("offers") if v.gates.passed)
    assert candidate > 1
    offers.rollout("offers", candidate, reason="test")
    assert offers.registry.routing("offers").canary == candidate
    rng = np.random.default_rng(11)
    served: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    with TestClient(offers.app()) as client:
        for i in range(3000):
            context = _context(rng)
            body = {"inputs": context, "request_id": f"canary-{i}", "unit_id": f"customer-{i}"}
            answer = client.post("/v1/models/offers/predict", json=body).json()
            served.append((f"canary-{i}", context, answer))
    routes = {a["route"] for _, _, a in served}
    assert routes == {"champion", "canary"}
    events = {e["request_id"]: e for e in offers.events(model="offers").to_pylist()}
    for rid, _, answer in served[:200]:
        decision = json.loads(events[rid]["extra"])["policy"]
        share = 0.2 if answer["route"] == "canary" else 0.8
        assert (
            decision["route_propensity"] == pytest.approx(share) and decision["version"] == answer["version"]
        )
    # Rewards drawn from the true purchase probability of the action served: consistent with the estimate.
    labels = []
    for rid, context, answer in served:
        mu = env.expected_reward(
            np.array([context["segment"]]), np.array([context["tenure"]]), np.array([context["score"]]),
            np.array([answer["action"]]),
        )[0]  # fmt: skip
        labels.append({"request_id": rid, "label": int(rng.uniform() < mu)})
    path = offers.root / "rewards.csv"
    pl.DataFrame(labels).write_csv(path)
    assert offers.labels(path).inserted == len(labels)
    offers.compact_events()
    status = offers.rollout_status("offers")["counterfactual"]
    assert status["status"] == "consistent", status
    assert status["rewards"] > 400 and status["realised_low"] <= status["estimate_high"]
    # Off-policy evaluation on the event log: the actions served, their propensities, checked distributions.
    target = pl.DataFrame({"action": env.ACTIONS, "probability": [0.0, 1.0, 0.0, 0.0]})  # always a discount
    result = offers.ope("offers", target, replicates=200)
    assert result.verdict.value == "ok" and result.rounds >= len(labels)


def test_a_gap_between_the_canary_and_its_estimate_is_journaled_and_alerted(offers: Project) -> None:
    from fourloops.adaptation import counterfactual

    record = offers.rollout_log.latest("offers")
    assert record is not None and record.open
    model = offers.model("offers")
    check = counterfactual.check_canary(offers.loop, model, record.version)
    assert check.status == "consistent"
    # A logging bug: rewards of a later batch all recorded as 0 (the canary seems to sell nothing).
    rng = np.random.default_rng(12)
    with TestClient(offers.app()) as client:
        rids = []
        for i in range(2000):
            body = {"inputs": _context(rng), "request_id": f"broken-{i}", "unit_id": f"other-{i}"}
            if client.post("/v1/models/offers/predict", json=body).json()["route"] == "canary":
                rids.append(f"broken-{i}")
    path = offers.root / "zeros.csv"
    pl.DataFrame({"request_id": rids, "label": [0] * len(rids)}).write_csv(path)
    offers.labels(path)
    offers.compact_events()
    checks = counterfactual.watch(offers.loop)
    [gap] = [c for c in checks if c.model == "offers"]
    assert gap.status == "gap" and gap.realised_high is not None and gap.realised_high < gap.estimate_low, gap
    alerts = [a for a in offers.alert_log.alerts("offers") if a["kind"] == "counterfactual_gap"]
    assert len(alerts) == 1 and "do not overlap" in alerts[0]["cause"]
    counterfactual.watch(offers.loop)  # the same episode: alerted once
    assert len([a for a in offers.alert_log.alerts("offers") if a["kind"] == "counterfactual_gap"]) == 1


def test_the_event_log_refuses_a_broken_distribution(offers: Project) -> None:
    from datetime import UTC, datetime

    from fourloops.storage.events import PredictionEvent

    store = offers.open_event_store()
    bad = PredictionEvent(
        "guard-1", None, datetime(2024, 3, 1, tzinfo=UTC), "offers", 1, "champion", {}, "bundle", 0.5,
        extra={"policy": {"distribution": {"none": 0.5, "bundle": 0.3}, "rest": 0.0}},
    )  # fmt: skip
    with pytest.raises(SchemaError, match=r"event 'guard-1' of model 'offers': sums_to_one"):
        store.append([bad])
    store.close()
    assert "guard-1" not in {e["request_id"] for e in offers.events(model="offers").to_pylist()}


@pytest.mark.parametrize("rounds", [1000])
def test_off_policy_estimates_cover_the_true_value_at_their_nominal_rate(rounds: int) -> None:
    """300 seeded simulations of the example's logging policy; the target: epsilon-greedy (0.1) around the
    truly best offer. Its true value on each simulation's contexts is computed from the environment.

    Measured (400 runs, 200 replicates): DR 0.945, IPS 0.9425, SNIPS 0.935; DM 0.75 (its tabular reward
    model ignores the context, so it is biased here: the reason DR corrects it).
    """
    simulations = 300
    covered = {"dr": 0, "ips": 0, "snips": 0}
    for seed in range(simulations):
        logs = env.simulate(rounds, seed)
        table = env.reward_table(logs)
        target = np.full(table.shape, 0.1 / len(env.ACTIONS))
        target[np.arange(len(table)), table.argmax(axis=1)] += 0.9
        truth = env.policy_value(target, logs)
        result = estimate_policy(
            logs.select("action", "reward", "propensity"), target, env.ACTIONS, replicates=200, seed=seed
        )
        assert result.verdict.value == "ok"
        for name in covered:
            e = result.estimates[name]
            assert e.low is not None and e.high is not None
            covered[name] += e.low <= truth <= e.high
    rates = {name: hits / simulations for name, hits in covered.items()}
    assert all(0.91 <= rate <= 0.98 for rate in rates.values()), rates


def test_init_scaffolds_the_offers_example(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fourloops.cli import app

    result = CliRunner().invoke(app, ["init", str(tmp_path / "shop"), "--example", "offers"])
    assert result.exit_code == 0, result.output
    with Project.load(tmp_path / "shop", env={}) as project:
        assert project.model("offers").actions == env.ACTIONS
    unknown = CliRunner().invoke(app, ["init", str(tmp_path / "x"), "--example", "nope"])
    assert unknown.exit_code != 0 and "'nope' is not bundled" in unknown.output
