"""The prediction server, in process (Starlette's test client) and as a real uvicorn process."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from fourloops.project import Project
from fourloops.server import build_app
from fourloops.testing import ThreadedServer
from trips import T0, prepare_project, served_process

TOKEN = "s3cret"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with v1 (champion) and v2 trained, and the online store materialised."""
    root = tmp_path_factory.mktemp("serve") / "p"
    config = f'[project]\nname = "trips"\n[server]\nadmin_token = "{TOKEN}"\nrefresh_interval = "1s"\n'
    return prepare_project(root, versions=2, config=config)


@pytest.fixture
def client(served: Path) -> Iterator[TestClient]:
    project = Project.load(served, env={}, clock=lambda: T0 + timedelta(days=39, hours=23, minutes=30))
    app = build_app(project)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    project.close()


def test_predict_with_online_features_logs_an_event(client: TestClient, served: Path) -> None:
    r = client.post(
        "/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.4}, "request_id": "req-1"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] == "req-1" and body["model"] == "late" and body["version"] == 1
    assert body["route"] == "champion" and body["fallback"] is None
    assert 0.0 <= body["prediction"] <= 1.0
    with Project.load(served, env={}) as project:
        store = project.open_event_store()
        rows = [e for e in store.scan(model="late").to_pylist() if e["request_id"] == "req-1"]
        store.close()
    [event] = rows
    assert event["version"] == 1 and event["route"] == "champion"
    features = json.loads(event["features"])
    assert features["station"] == "a" and features["rain"] is not None  # read from the online store


def test_features_given_in_the_request_are_used(client: TestClient) -> None:
    a = client.post("/v1/models/late/predict", json={"inputs": {"station": "c", "load": 0.9, "rain": 0.0}})
    b = client.post("/v1/models/late/predict", json={"inputs": {"station": "c", "load": 0.9, "rain": 9.0}})
    assert a.status_code == b.status_code == 200
    assert a.json()["prediction"] != b.json()["prediction"]


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_request"),
        (b'{"inputs": 3}', 400, "invalid_request"),
        (b'{"instances": []}', 400, "invalid_request"),
        (b'{"inputs": {"station": "a"}}', 422, "load:missing"),
        (b'{"inputs": {"station": "a", "load": 0.5, "colour": "red"}}', 422, "colour:unknown_field"),
        (b'{"inputs": {"station": "z", "load": 0.5}}', 422, "station:category"),
        (b'{"inputs": {"station": "a", "load": "heavy"}}', 422, "load:type"),
        (b'{"inputs": {"station": "a", "load": NaN}}', 422, "load:nan"),
        (b'{"inputs": {"station": "a", "load": 2.5}}', 422, "load:max"),
        (b'{"inputs": {"station": "a", "load": 0.5}, "request_id": 5}', 400, "invalid_request"),
        (b'{"inputs": {"station": "a", "load": 0.5}, "unit_id": false}', 400, "invalid_request"),
        (b'{"inputs": {"station": "a", "load": 0.5}, "unit_id": [1]}', 400, "invalid_request"),
        (b'{"inputs": {"station": "a", "load": 0.5}, "unit_id": 1.5}', 400, "invalid_request"),
        (b'{"inputs": {"station": "a", "load": 0.5}, "request_id": "r1:shadow"}', 400, "invalid_request"),
        (b'{"inputs": {"station": "a", "load": 0.5}, "instances": []}', 400, "invalid_request"),
    ],
)
def test_bad_input_gets_a_4xx_naming_field_and_rule(
    client: TestClient, body: bytes, status: int, expected: str
) -> None:
    r = client.post("/v1/models/late/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    if ":" in expected:
        field, rule = expected.split(":")
        assert {"field": field, "rule": rule} in error["violations"]
        assert field in error["message"]
    else:
        assert error["type"] == expected


def test_oversized_and_unknown_model(client: TestClient) -> None:
    big = b'{"inputs": {"station": "' + b"a" * 2_000_000 + b'"}}'
    r = client.post("/v1/models/late/predict", content=big)
    assert r.status_code == 413
    assert client.post("/v1/models/nope/predict", json={"inputs": {}}).status_code == 404


def test_instances_and_open_inference_protocol(client: TestClient) -> None:
    r = client.post(
        "/v1/models/late/predict",
        json={
            "instances": [{"station": "a", "load": 0.1}, {"station": "b", "load": 0.9}],
            "request_id": "batch",
        },
    )
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [p["request_id"] for p in preds] == ["batch-0", "batch-1"]
    v2 = client.post(
        "/v2/models/late/infer",
        json={
            "id": "x",
            "inputs": [
                {"name": "station", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
                {"name": "load", "shape": [2], "datatype": "FP64", "data": [0.1, 0.9]},
            ],
        },
    )
    assert v2.status_code == 200, v2.text
    out = v2.json()["outputs"][0]
    assert out["shape"] == [2] and out["data"] == [p["prediction"] for p in preds]
    bad = client.post(
        "/v2/models/late/infer",
        json={"inputs": [{"name": "load", "data": [1, 2]}, {"name": "station", "data": ["a"]}]},
    )
    assert bad.status_code == 400


def test_each_row_of_a_multi_row_infer_request_is_labelled_by_the_clients_id_and_its_row(
    client: TestClient, served: Path
) -> None:
    """The scheme the README and /v2's docstring give: row i of request ``id`` is ``<id>-<i>``."""
    r = client.post(
        "/v2/models/late/infer",
        json={
            "id": "flight-batch-7",
            "inputs": [
                {"name": "station", "shape": [3], "datatype": "BYTES", "data": ["a", "b", "c"]},
                {"name": "load", "shape": [3], "datatype": "FP64", "data": [0.1, 0.5, 0.9]},
            ],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    ids = ["flight-batch-7-0", "flight-batch-7-1", "flight-batch-7-2"]
    assert body["id"] == "flight-batch-7" and body["parameters"]["request_ids"] == ids
    assert body["parameters"]["feature_status"] == [{"weather": "ok"}] * 3  # one per row
    labels = [
        {"request_id": "flight-batch-7-2", "value": True},
        {"request_id": "flight-batch-7-0", "value": 0},
    ]
    assert client.post("/v1/labels", json={"labels": labels}).json() == {
        "inserted": 2,
        "duplicates": 0,
        "unknown": 0,
    }
    with Project.load(served, env={}) as project:
        joined = {
            e["request_id"]: e for e in project.events(model="late").to_pylist() if e["request_id"] in ids
        }
    assert set(joined) == set(ids)
    assert [joined[i]["label"] for i in ids] == ["0", None, "true"], joined


def test_labels_are_idempotent_and_counted(client: TestClient) -> None:
    client.post(
        "/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.4}, "request_id": "lab-1"}
    )
    r = client.post("/v1/labels", json={"labels": [{"request_id": "lab-1", "value": 1}]})
    assert r.json() == {"inserted": 1, "duplicates": 0, "unknown": 0}
    r = client.post(
        "/v1/labels",
        json={"labels": [{"request_id": "lab-1", "value": 0}, {"request_id": "never-seen", "value": 1}]},
    )
    assert r.json() == {"inserted": 0, "duplicates": 1, "unknown": 1}
    assert client.post("/v1/labels", json={"labels": [{"value": 1}]}).status_code == 400
    for bad in ({"request_id": "lab-2", "value": None}, {"request_id": "", "value": 1}):
        r = client.post("/v1/labels", json={"labels": [bad]})
        assert r.status_code == 400 and r.json()["error"]["field"].startswith("labels[0]."), r.text


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    client.post("/v1/models/late/predict", json={"inputs": {"station": "a", "load": 2.0}})
    client.post("/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.2}})
    text = client.get("/metrics").text
    assert 'fourloops_rejections_total{model="late",rule="max"}' in text
    assert 'fourloops_predictions_total{model="late",route="champion",version="1"}' in text
    assert 'fourloops_request_seconds_count{model="late",route="champion",version="1"} 1.0' in text


def version_answering(client: TestClient) -> int:
    r = client.post("/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.3}})
    return int(r.json()["version"])


def test_admin_routes_need_the_token_and_move_the_champion(client: TestClient) -> None:
    r = client.post("/v1/admin/models/late/promote", json={"version": 2, "force": True})
    assert r.status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (
        client.post(
            "/v1/admin/models/late/promote",
            json={"version": 2, "force": True},
            headers={"Authorization": "Bearer wrong"},
        ).status_code
        == 401
    )
    r = client.post("/v1/admin/models/late/promote", json={"version": 2, "force": True}, headers=auth)
    assert r.status_code == 200 and r.json()["current"] == 2
    assert (
        client.post("/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.3}}).json()[
            "version"
        ]
        == 2
    )
    r = client.post("/v1/admin/models/late/rollback", headers=auth)
    assert r.status_code == 200 and r.json()["current"] == 1
    assert (
        client.post("/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.3}}).json()[
            "version"
        ]
        == 1
    )


def test_an_integral_number_unit_id_is_the_same_unit_as_the_integer(client: TestClient, served: Path) -> None:
    for rid, unit in (("unit-int", 7), ("unit-float", 7.0), ("unit-str", "7")):
        r = client.post(
            "/v1/models/late/predict",
            json={"inputs": {"station": "a", "load": 0.5}, "unit_id": unit, "request_id": rid},
        )
        assert r.status_code == 200, r.text
    with Project.load(served, env={}) as project:
        store = project.open_event_store()
        units = {e["request_id"]: e["unit_id"] for e in store.scan(model="late").to_pylist()}
        store.close()
    assert units["unit-int"] == units["unit-float"] == units["unit-str"] == "7"


def test_the_response_never_waits_for_the_shadow(served: Path) -> None:
    """A shadow that is stuck delays neither its own request nor the next one on the connection."""
    with Project.load(served, env={}) as admin:
        admin.registry.set_alias("late", "shadow", 2, actor="t", reason="shadow latency")
    project = Project.load(served, env={}, clock=lambda: T0 + timedelta(days=39, hours=23, minutes=30))
    try:
        app = build_app(project)
        shadow = app.state.services["late"].state.predictors[2]
        original = shadow.predict_one
        started, release = threading.Event(), threading.Event()

        def stuck(row: Any) -> Any:
            started.set()
            release.wait(30)
            return original(row)

        shadow.predict_one = stuck
        body = {"inputs": {"station": "a", "load": 0.5}}
        with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
            first = http.post("/v1/models/late/predict", json={**body, "request_id": "sh-1"})
            assert first.status_code == 200 and first.json()["version"] == 1
            assert started.wait(10)  # the shadow is being scored, and stays stuck...
            second = http.post("/v1/models/late/predict", json={**body, "request_id": "sh-2"})
            assert second.status_code == 200  # ...while the same connection is answered again
            assert "sh-1:shadow" not in _logged_ids(project)
            release.set()
        # Shutting the server down drains the background work: both shadow scores are logged.
        assert {"sh-1:shadow", "sh-2:shadow"} <= _logged_ids(project)
    finally:
        project.registry.delete_alias("late", "shadow", actor="t", reason="done")
        project.close()


def _logged_ids(project: Project) -> set[str]:
    store = project.open_event_store()
    try:
        return {e["request_id"] for e in store.scan(model="late").to_pylist()}
    finally:
        store.close()


def test_canary_is_sticky_per_unit_and_shadow_never_answers(client: TestClient, served: Path) -> None:
    with Project.load(served, env={}) as project:
        project.registry.set_alias("late", "canary", 2, actor="t", reason="canary")
        project.registry.set_alias("late", "shadow", 2, actor="t", reason="shadow")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/v1/admin/models/late/canary", json={"share": 0.5}, headers=auth).status_code == 200
    seen: dict[str, set[int]] = {}
    for i in range(60):
        unit = f"user-{i % 20}"
        r = client.post(
            "/v1/models/late/predict", json={"inputs": {"station": "b", "load": 0.5}, "unit_id": unit}
        )
        body = r.json()
        seen.setdefault(unit, set()).add(body["version"])
        assert body["route"] in ("champion", "canary")
    assert all(len(v) == 1 for v in seen.values())  # sticky
    assert {v for s in seen.values() for v in s} == {1, 2}
    assert client.post("/v1/admin/models/late/pause", headers=auth).json()["paused"] is True
    assert {
        client.post(
            "/v1/models/late/predict", json={"inputs": {"station": "b", "load": 0.5}, "unit_id": f"user-{i}"}
        ).json()["route"]
        for i in range(20)
    } == {"champion"}
    with Project.load(served, env={}) as project:
        store = project.open_event_store()
        routes = {e["route"] for e in store.scan(model="late").to_pylist()}
        store.close()
        project.registry.delete_alias("late", "canary", actor="t", reason="done")
        project.registry.delete_alias("late", "shadow", actor="t", reason="done")
    assert {"shadow", "canary", "champion"} <= routes
    text = client.get("/metrics").text
    for route, version in (("champion", 1), ("canary", 2)):
        assert f'fourloops_request_seconds_count{{model="late",route="{route}",version="{version}"}}' in text


def test_an_ab_split_set_through_the_admin_api_routes_units_stably(client: TestClient, served: Path) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ab = "/v1/admin/models/late/ab"
    assert client.post(ab, json={"split": {"1": 0.5, "2": 0.5}}).status_code == 401  # no token
    for bad, status in [
        ({"split": {"1": 0.5, "2": 0.4}}, 400),  # shares must sum to 1
        ({"split": {"one": 1.0}}, 400),
        ({"split": {"1": "half", "2": 0.5}}, 400),
        ({}, 400),
        ({"split": {"1": 0.5, "9": 0.5}}, 409),  # no version 9
    ]:
        r = client.post(ab, json=bad, headers=auth)
        assert r.status_code == status, (bad, r.text)
    r = client.post(ab, json={"split": {"1": 0.25, "2": 0.75}}, headers=auth)
    assert r.status_code == 200 and r.json()["ab_split"] == {"1": 0.25, "2": 0.75}
    try:
        seen: dict[str, set[tuple[int, str]]] = {}
        propensity: dict[int, float] = {}
        for i in range(400):
            unit = f"ab-user-{i % 200}"
            body = client.post(
                "/v1/models/late/predict",
                json={"inputs": {"station": "c", "load": 0.5}, "unit_id": unit, "request_id": f"ab-{i}"},
            ).json()
            seen.setdefault(unit, set()).add((body["version"], body["route"]))
        assert all(len(v) == 1 for v in seen.values())  # the same unit always gets the same arm
        arms = [next(iter(v)) for v in seen.values()]
        assert {route for _, route in arms} == {"ab:1", "ab:2"}
        share_2 = sum(version == 2 for version, _ in arms) / len(arms)
        assert 0.6 < share_2 < 0.9  # 0.75 of 200 units: binomial sd ~0.03
        with Project.load(served, env={}) as project:
            store = project.open_event_store()
            events = [e for e in store.scan(model="late").to_pylist() if e["request_id"].startswith("ab-")]
            store.close()
            for e in events:
                propensity[e["version"]] = e["propensity"]
            audit = [e for e in project.metadata.audit_entries("model:late") if e["action"] == "routing.set"]
            journal = project.registry.routing_history("late")
        assert propensity == {1: 0.25, 2: 0.75}  # logged for off-policy evaluation
        assert audit[0]["actor"] == "admin-api"  # newest first
        assert audit[0]["details"]["to"]["ab"] == {"1": 0.25, "2": 0.75}
        assert journal[-1].spec.ab == {1: 0.25, 2: 0.75} and journal[-1].actor == "admin-api"
    finally:
        cleared = client.post(ab, json={"split": None}, headers=auth)
    assert cleared.status_code == 200 and cleared.json()["ab_split"] is None
    after = client.post("/v1/models/late/predict", json={"inputs": {"station": "c", "load": 0.5}}).json()
    assert after["route"] == "champion"


def test_a_failing_model_is_answered_by_the_fallback(client: TestClient) -> None:
    service = client.app.state.services["late"]  # type: ignore[attr-defined]
    predictor = service.state.predictors[1]

    def broken(row):  # type: ignore[no-untyped-def]
        raise RuntimeError("model crashed")

    original = predictor.predict_one
    predictor.predict_one = broken
    try:
        r = client.post("/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.3}})
    finally:
        predictor.predict_one = original
    assert r.status_code == 200
    assert r.json()["fallback"] == "constant" and r.json()["prediction"] == 0.5


def test_real_server_process_answers_over_http(served: Path) -> None:
    with served_process(served) as (proc, base):
        with httpx.Client(base_url=base, timeout=10) as http:
            r = http.post(
                "/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.5, "rain": 1.0}}
            )
            assert r.status_code == 200 and r.json()["version"] == 1
            assert http.post("/v1/models/late/predict", content=b"garbage").status_code == 400
            spec = http.get("/openapi.json").json()
            schema = spec["components"]["schemas"]["late.inputs"]
            assert schema["properties"]["load"]["maximum"] == 1 and "station" in schema["required"]
            assert "/v1/models/late/predict" in spec["paths"]
            assert http.get("/docs").status_code == 200
            _malformed_requests_get_4xx_and_the_server_keeps_serving(http, base)
    assert proc.returncode == 0  # SIGTERM: drained and exited cleanly


def _malformed_requests_get_4xx_and_the_server_keeps_serving(http: httpx.Client, base: str) -> None:
    route = "/v1/models/late/predict"
    headers = {"content-type": "application/json"}
    cases = {
        b'{"inputs": {"station": "a", "load": NaN}}': (422, "contract_violation"),
        b'{"inputs": {"station": "a", "load": 0.5}': (400, "invalid_json"),
        b'{"inputs": {"station": "\xff\xfe", "load": 0.5}}': (400, "invalid_json"),
        b"": (400, "invalid_json"),
    }
    for body, (status, kind) in cases.items():
        r = http.post(route, content=body, headers=headers)
        assert (r.status_code, r.json()["error"]["type"]) == (status, kind), (body, r.text)

    def chunks() -> Iterator[bytes]:  # no content-length: the limit applies while reading
        yield b'{"inputs": {"station": "'
        for _ in range(40):
            yield b"a" * 65_536
        yield b'"}}'

    r = http.post(route, content=chunks(), headers=headers)
    assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"
    assert http.get(route).status_code == 405
    # A request that is not HTTP at all is refused by the HTTP parser; the server stays up.
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"NOT-HTTP \x00\x01\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    r = http.post(route, json={"inputs": {"station": "b", "load": 0.2}})
    assert r.status_code == 200


def test_rate_limit_answers_429_with_retry_after(served: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "limited"
    shutil.copytree(served, root)
    text = (root / "fourloops.toml").read_text().replace("[server]\n", "[server]\nclient_rate = 2\n")
    (root / "fourloops.toml").write_text(text)
    project = Project.load(root, env={})
    try:
        with TestClient(build_app(project), raise_server_exceptions=False) as c:
            body = {"inputs": {"station": "a", "load": 0.5, "rain": 1.0}}
            codes = [
                c.post("/v1/models/late/predict", json=body, headers={"X-Client-Key": "k1"}) for _ in range(5)
            ]
            assert [r.status_code for r in codes][:2] == [200, 200]
            limited = [r for r in codes if r.status_code == 429]
            assert limited and int(limited[0].headers["Retry-After"]) >= 1
            assert limited[0].json()["error"]["type"] == "rate_limited"
            # Another client has its own budget.
            assert (
                c.post("/v1/models/late/predict", json=body, headers={"X-Client-Key": "k2"}).status_code
                == 200
            )
            assert 'fourloops_rate_limited_total{limit="client",model="late"}' in c.get("/metrics").text
    finally:
        project.close()
