"""Each kind of fallback answering for a failing champion: constant, rule, previous version, none.

The champion is v2, promoted after v1, so v1 is the version a rollback would
restore (the "previous version"). The champion is broken by replacing its
predictor's ``predict_one``; the fallback's answer, the response and the logged
event are checked against what the fallback should give.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import fourloops as fl
from fourloops.project import Project
from fourloops.server import build_app
from trips import T0, prepare_project

ROW = {"station": "b", "load": 0.4, "rain": 2.0}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fallbacks") / "p"
    return prepare_project(root, versions=2, promote=(1, 2))


@pytest.fixture
def app(served: Path) -> Iterator[tuple[TestClient, Any, Project]]:
    project = Project.load(served, env={}, clock=lambda: T0 + timedelta(days=39, hours=23))
    with TestClient(build_app(project), raise_server_exceptions=False) as client:
        service = client.app.state.services["late"]  # type: ignore[attr-defined]
        assert service.state.table.champion == 2 and service.state.previous == 1
        yield client, service, project
    project.close()


def _break(service: Any, version: int) -> None:
    def broken(row: Any) -> float:
        raise RuntimeError(f"v{version} crashed")

    service.state.predictors[version].predict_one = broken


def _event(project: Project, request_id: str) -> dict[str, Any]:
    store = project.open_event_store()
    try:
        [event] = [e for e in store.scan(model="late").to_pylist() if e["request_id"] == request_id]
    finally:
        store.close()
    return event


def _predict(client: TestClient, request_id: str) -> Any:
    return client.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": request_id})


def test_previous_version_answers_with_its_own_prediction(
    app: tuple[TestClient, Any, Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, service, project = app
    monkeypatch.setattr(service.model, "fallback", fl.Fallback(previous_version=True))
    expected = service.state.predictors[1].predict_one({**ROW, "rain": 2.0})
    _break(service, 2)
    r = _predict(client, "prev-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["fallback"], body["fallback_reason"], body["version"]) == ("previous_version", "error", 1)
    assert body["prediction"] == pytest.approx(expected, rel=1e-12)
    event = _event(project, "prev-1")
    assert event["version"] == 1 and event["fallback"] is True
    extra = json.loads(event["extra"])
    assert extra["fallback"] == "previous_version" and extra["routed_version"] == 2


def test_a_rule_answers_from_the_request_row(
    app: tuple[TestClient, Any, Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, service, project = app
    monkeypatch.setattr(
        service.model, "fallback", fl.Fallback(rule=lambda row: 0.9 if row["rain"] > 1 else 0.1)
    )
    _break(service, 2)
    body = _predict(client, "rule-1").json()
    assert (body["fallback"], body["prediction"], body["version"]) == ("rule", 0.9, 0)
    extra = json.loads(_event(project, "rule-1")["extra"])
    assert extra["fallback"] == "rule" and extra["routed_version"] == 2


@pytest.mark.parametrize(
    "fallback",
    [
        None,
        fl.Fallback(rule=lambda row: row["no such field"]),  # the rule itself fails
        fl.Fallback(previous_version=True),  # ...and so does the previous version
    ],
    ids=["none", "failing-rule", "failing-previous"],
)
def test_without_a_working_fallback_the_answer_is_503_and_nothing_is_acknowledged(
    app: tuple[TestClient, Any, Project], monkeypatch: pytest.MonkeyPatch, fallback: fl.Fallback | None
) -> None:
    client, service, project = app
    monkeypatch.setattr(service.model, "fallback", fallback)
    _break(service, 2)
    _break(service, 1)
    r = _predict(client, "dead-1")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["type"] == "model_unavailable"
    store = project.open_event_store()
    try:
        assert not [e for e in store.scan(model="late").to_pylist() if e["request_id"] == "dead-1"]
    finally:
        store.close()
    # The server keeps serving: another request gets the same clear answer, not a crash.
    assert _predict(client, "dead-2").status_code == 503
    failed_fallbacks = 0 if fallback is None else 2
    assert (
        f'fourloops_fallback_errors_total{{model="late"}} {failed_fallbacks:.1f}'
        in client.get("/metrics").text
    )
