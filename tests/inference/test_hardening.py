"""Hostile bodies and unexpected failures: never a 5xx for bad input, always the JSON error shape,
every answer counted in ``/metrics``.

Bodies nested thousands of levels deep, very wide, invalid Unicode (lone UTF-16 surrogates,
overlong UTF-8, NUL) in every string a route reads, with and without the NaN constant that sends
a body through the standard library's parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from fourloops.project import Project
from fourloops.registry.records import GateReport, GateVerdict
from fourloops.server import build_app
from trips import T0, prepare_project

TOKEN = "hard-token"
ROUTES = ["/v1/models/late/predict", "/v2/models/late/infer", "/v1/labels"]
BAD_STRINGS = [
    b'"\\ud83d"',  # a lone high surrogate
    b'"\\udc00x"',  # a lone low surrogate
    b'"a\\u0000b"',  # NUL (valid JSON: must be judged, not crash)
    b'"\xc0\xaf"',  # an overlong UTF-8 form
    b'"\xed\xa0\x80"',  # a surrogate encoded in UTF-8
    b'"\xff"',  # not UTF-8 at all
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("hard") / "p", versions=2)


@pytest.fixture(scope="module")
def client(served: Path) -> Iterator[TestClient]:
    env = {"FOURLOOPS_SERVER_ADMIN_TOKEN": TOKEN}
    project = Project.load(served, env=env, clock=lambda: T0 + timedelta(days=39, hours=23))
    with TestClient(build_app(project), raise_server_exceptions=False) as c:
        yield c
    project.close()


def _deep(depth: int, kind: str) -> bytes:
    inner = b"[" * depth + b"1" + b"]" * depth
    if kind == "predict":
        return b'{"inputs": {"station": "a", "load": ' + inner + b"}}"
    if kind == "infer":
        return b'{"inputs": [{"name": "load", "data": ' + inner + b"}]}"
    return b'{"labels": [{"request_id": "x", "value": ' + inner + b"}]}"


def _strings(bad: bytes, kind: str, nan: bool) -> bytes:
    extra = b', "rain": NaN' if nan else b""
    if kind == "predict":
        row = b'{"station": ' + bad + b', "load": 0.5' + extra + b"}"
        return b'{"inputs": ' + row + b', "request_id": ' + bad + b', "unit_id": ' + bad + b"}"
    if kind == "infer":
        return b'{"id": ' + bad + b', "inputs": [{"name": "station", "data": [' + bad + b"]}]}"
    return b'{"labels": [{"request_id": ' + bad + b', "value": ' + (b"NaN" if nan else bad) + b"}]}"


KINDS = st.sampled_from(["predict", "infer", "labels"])
hostile = st.one_of(
    st.tuples(KINDS, st.integers(1, 4000)).map(lambda t: (t[0], _deep(t[1], t[0]))),
    st.tuples(KINDS, st.sampled_from(BAD_STRINGS), st.booleans()).map(
        lambda t: (t[0], _strings(t[1], t[0], t[2]))
    ),
    st.integers(1, 20_000).map(
        lambda n: ("predict", b'{"inputs": {' + b", ".join(b'"f%d": 1' % i for i in range(n)) + b"}}")
    ),
)
PATHS = {"predict": ROUTES[0], "infer": ROUTES[1], "labels": ROUTES[2]}


def _requests_total(client: TestClient) -> float:
    text = client.get("/metrics").text
    return sum(float(v) for v in re.findall(r"^fourloops_requests_total\{[^}]*\} ([0-9.e+]+)$", text, re.M))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=hostile)
def test_hostile_bodies_get_a_one_line_4xx_and_are_counted(
    client: TestClient, case: tuple[str, bytes]
) -> None:
    kind, body = case
    before = _requests_total(client)
    r = client.post(PATHS[kind], content=body, headers={"content-type": "application/json"})
    assert r.status_code < 500, (kind, body[:120], r.status_code, r.text[:300])
    if r.status_code >= 400:
        error = r.json()["error"]
        assert error["type"] and error["message"] and "\n" not in error["message"]
    # The /metrics scrape itself is counted too (model "-"): this request and the scrape.
    assert _requests_total(client) == before + 2


def test_depth_and_unicode_are_named() -> None:
    from fourloops.inference.http import HTTPError, parse_json

    for body, words in [
        (_deep(5000, "predict"), "deeper than 1024"),
        (_strings(BAD_STRINGS[0], "predict", True), "surrogate"),
        (_strings(BAD_STRINGS[0], "predict", False), "surrogate"),
        (b'"\xff"', "not valid UTF-8"),
    ]:
        with pytest.raises(HTTPError, match=words):
            parse_json(body)


def test_unknown_routes_and_methods_answer_the_json_error_shape(client: TestClient) -> None:
    for method, path, status, kind in [
        ("GET", "/nope", 404, "not_found"),
        ("POST", "/v1/models/late/nope", 404, "not_found"),
        ("GET", "/v1/models/late/predict", 405, "method_not_allowed"),
        ("DELETE", "/v1/labels", 405, "method_not_allowed"),
    ]:
        r = client.request(method, path)
        assert r.status_code == status and r.json()["error"]["type"] == kind, (method, path, r.text)
    assert 'fourloops_requests_total{model="-",status="404"}' in client.get("/metrics").text


def test_an_unexpected_error_is_a_counted_json_500(served: Path) -> None:
    project = Project.load(served, env={}, clock=lambda: T0 + timedelta(days=39, hours=23))
    app = build_app(project)
    service = app.state.services["late"]

    def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    service._predict_batch = bug  # type: ignore[method-assign]
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.5}})
        assert r.status_code == 500 and r.json()["error"]["type"] == "internal"
        assert "a bug" not in r.text  # details go to the log, not to the client
        assert 'fourloops_requests_total{model="late",status="500"} 1.0' in client.get("/metrics").text
    project.close()


def test_labels_name_what_was_sent(client: TestClient) -> None:
    for body, field, words in [
        ([{"request_id": "a", "value": 1}], None, None),  # a top-level array of labels is fine
        ({"id": "a", "label": 1}, "labels[0].request_id", "keys sent: 'id', 'label'"),
        ({"request_id": "a", "value": [1]}, "labels[0].value", "got an array"),
        ({"request_id": "a", "value": None}, "labels[0].value", "got null"),
        ({"request_id": 7, "value": 1}, "labels[0].request_id", "got a number"),
        (["not an object"], "labels[0]", "got a string 'not an object'"),
    ]:
        r = client.post("/v1/labels", json=body)
        if field is None:
            assert r.status_code == 200, r.text
            continue
        error = r.json()["error"]
        assert r.status_code == 400 and error["field"] == field and words in error["message"], r.text


def test_every_path_to_traffic_applies_the_gate_rule_through_the_admin_api(
    served: Path, client: TestClient
) -> None:
    with Project.load(served, env={}) as project:  # a third version whose gates failed
        v2 = project.registry.get_version("late", 2)
        failed = project.registry.create_version(
            "late",
            artifact=v2.artifact,
            format=v2.format,
            gates=GateReport.judge([GateVerdict("max_calibration_error", False, "ece 0.3 (max 0.2)")]),
        ).version
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for route, body in [
        ("ab", {"split": {"1": 0.5, str(failed): 0.5}}),
        ("canary", {"share": 0.1, "version": failed}),
        ("promote", {"version": failed}),
        ("promote", {"version": failed, "alias": "shadow"}),
    ]:
        r = client.post(f"/v1/admin/models/late/{route}", json=body, headers=auth)
        assert r.status_code == 409, (route, r.text)
        assert "max_calibration_error" in r.text and "--force" in r.text, r.text
    r = client.post(
        "/v1/admin/models/late/ab",
        json={"split": {"1": 0.5, str(failed): 0.5}, "force": True, "reason": "owner accepts"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    with Project.load(served, env={}) as project:
        last = project.registry.routing_history("late")[-1]
        assert last.reason == "owner accepts [forced past failed gates]" and last.actor == "admin-api"
    assert client.post("/v1/admin/models/late/ab", json={"split": None}, headers=auth).status_code == 200


def test_the_open_inference_protocol_routes_and_the_model_list(client: TestClient) -> None:
    models = client.get("/v1/models").json()["models"]
    assert [(m["name"], m["task"], m["ready"]) for m in models] == [("late", "binary", True)]
    assert models[0]["routing"]["champion"] == 1
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2/models/late").json()
    assert meta["name"] == "late" and meta["versions"] == ["1"] and meta["platform"] == "fourloops"
    inputs = {t["name"]: t["datatype"] for t in meta["inputs"]}
    assert inputs == {"station": "BYTES", "load": "FP64", "rain": "FP64"}
    assert client.get("/v2/models/late/ready").json() == {"name": "late", "ready": True}
    missing = client.get("/v2/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    ("tensors", "words"),
    [
        ([{"name": "load", "data": [0.5]}, {"name": "load", "data": [0.4]}], "given twice"),
        ([{"name": "load", "shape": [2], "data": [0.5]}], "shape [2] does not fit its 1 values"),
        ([{"name": "load", "datatype": "BYTES", "data": [0.5]}], "datatype 'BYTES' does not suit a Float"),
        ([{"name": "station", "datatype": "FP64", "data": ["a"]}], "does not suit a Category"),
    ],
)
def test_infer_checks_shape_datatype_and_names(
    client: TestClient, tensors: list[dict[str, Any]], words: str
) -> None:
    r = client.post("/v2/models/late/infer", json={"inputs": tensors})
    assert r.status_code == 400 and words in r.json()["error"]["message"], r.text
    ok = client.post(
        "/v2/models/late/infer",
        json={
            "inputs": [
                {"name": "station", "datatype": "BYTES", "shape": [1], "data": ["a"]},
                {"name": "load", "datatype": "FP32", "shape": [1, 1], "data": [0.5]},
            ]
        },
    )
    assert ok.status_code == 200, ok.text


def test_admin_without_a_configured_token_says_admin_is_disabled(served: Path) -> None:
    with Project.load(served, env={}) as project, TestClient(build_app(project)) as client:
        r = client.post("/v1/admin/models/late/pause")
    assert r.status_code == 401 and "admin routes are disabled" in r.json()["error"]["message"]
