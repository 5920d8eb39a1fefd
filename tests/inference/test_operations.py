"""Readiness, request-size limits and the registry refresher, in process.

``/readyz`` answers 503 naming what is missing (a model without a champion, an
event store that does not answer) and 200 once everything is there; requests
with too many rows get 413 on both protocols; a registry that fails during
the periodic refresh is logged and the server keeps serving what it has.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fourloops.errors import StoreError
from fourloops.project import Project
from fourloops.server import build_app
from trips import T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23)
ROW = {"station": "a", "load": 0.5, "rain": 1.0}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 trained, no champion yet."""
    root = tmp_path_factory.mktemp("ops") / "p"
    return prepare_project(root, promote=(), materialize=False)


@pytest.fixture
def project(trained: Path) -> Iterator[Project]:
    env = {"FOURLOOPS_SERVER_MAX_INSTANCES": "3", "FOURLOOPS_SERVER_REFRESH_INTERVAL": "200ms"}
    with Project.load(trained, env=env, clock=lambda: NOW) as p:
        yield p


def _v2(rows: int) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "station", "datatype": "BYTES", "shape": [rows], "data": ["a"] * rows},
            {"name": "load", "datatype": "FP64", "shape": [rows], "data": [0.5] * rows},
        ]
    }


def test_readiness_names_a_model_without_champion_until_one_is_promoted(project: Project) -> None:
    with TestClient(build_app(project), raise_server_exceptions=False) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "not_ready", "problems": {"late": "no champion loaded"}}
        predict = client.post("/v1/models/late/predict", json={"inputs": ROW})
        assert predict.status_code == 503 and predict.json()["error"]["type"] == "not_ready"
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        project.promote("late", 1, force=True, reason="test")
        try:
            deadline = time.monotonic() + 10
            while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)  # the refresher picks the champion up within its interval
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["models"]["late"]["champion"] == 1
            assert client.post("/v1/models/late/predict", json={"inputs": ROW}).status_code == 200
        finally:
            project.registry.delete_alias("late", "champion", actor="test", reason="reset")


def test_readiness_fails_while_the_event_store_does_not_answer(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.promote("late", 1, force=True, reason="test")
    try:
        app = build_app(project)
        with TestClient(app, raise_server_exceptions=False) as client:
            events = app.state.services["late"].events

            def down() -> None:
                raise StoreError("connection refused")

            def whole_log(*args: object, **kwargs: object) -> object:
                raise AssertionError("a readiness probe must not read the log")

            monkeypatch.setattr(events, "ping", down)
            r = client.get("/readyz")
            assert r.status_code == 503 and r.json()["problems"] == {"event_store": "connection refused"}
            monkeypatch.undo()
            # Constant time: the probe never counts or scans events, however many there are.
            monkeypatch.setattr(events, "count", whole_log)
            monkeypatch.setattr(events, "scan", whole_log)
            assert client.get("/readyz").status_code == 200
    finally:
        project.registry.delete_alias("late", "champion", actor="test", reason="reset")


def test_too_many_rows_get_413_on_both_protocols_and_the_limit_itself_passes(project: Project) -> None:
    project.promote("late", 1, force=True, reason="test")
    try:
        with TestClient(build_app(project), raise_server_exceptions=False) as client:
            ok = client.post("/v1/models/late/predict", json={"instances": [ROW] * 3})
            assert ok.status_code == 200 and len(ok.json()["predictions"]) == 3
            over = client.post("/v1/models/late/predict", json={"instances": [ROW] * 4})
            assert over.status_code == 413 and over.json()["error"]["type"] == "too_many_instances"
            assert client.post("/v2/models/late/infer", json=_v2(3)).status_code == 200
            v2_over = client.post("/v2/models/late/infer", json=_v2(4))
            assert v2_over.status_code == 413 and v2_over.json()["error"]["type"] == "too_many_instances"
            empty = client.post("/v2/models/late/infer", json=_v2(0))
            assert empty.status_code == 400 and "no rows" in empty.json()["error"]["message"]
    finally:
        project.registry.delete_alias("late", "champion", actor="test", reason="reset")


def test_a_failing_registry_is_logged_and_the_server_keeps_serving(
    project: Project, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    project.promote("late", 1, force=True, reason="test")
    try:
        app = build_app(project)
        service = app.state.services["late"]

        def unreachable() -> bool:
            raise StoreError("registry database is unreachable")

        with caplog.at_level(logging.WARNING, logger="fourloops"):
            with TestClient(app, raise_server_exceptions=False) as client:
                monkeypatch.setattr(service, "refresh", unreachable)
                time.sleep(0.6)  # three refresh intervals
                r = client.post("/v1/models/late/predict", json={"inputs": ROW})
                assert r.status_code == 200 and r.json()["version"] == 1
                assert client.get("/readyz").status_code == 200
        assert any("refresh failed" in m and "unreachable" in m for m in caplog.messages), caplog.messages
    finally:
        project.registry.delete_alias("late", "champion", actor="test", reason="reset")
