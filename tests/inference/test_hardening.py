"""Hostile bodies and unexpected failures: never a 5xx for bad input, always the JSON error shape,
every answer counted in ``/metrics`` under its own status.

On every route that takes a body (predict, infer, labels and the admin routes promote, canary and
ab): bodies nested thousands of levels deep, very wide (thousands of fields, rows, tensors, labels
or split arms), large (up to twice ``server.max_body_bytes``, with or without a content-length),
invalid Unicode (lone UTF-16 surrogates, overlong UTF-8, NUL) in every string a route reads, with
and without the NaN constant that sends a body through the standard library's parser, and version
numbers no database can hold. Every test runs on the embedded stores and, where the machine offers
it, on PostgreSQL (which can store no NUL character).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fourloops.project import Project
from fourloops.registry.records import GateReport, GateVerdict
from fourloops.server import build_app
from trips import T0, prepare_project

TOKEN = "hard-token"
ROUTES = ["/v1/models/late/predict", "/v2/models/late/infer", "/v1/labels"]
ADMIN_KINDS = ["promote", "canary", "ab"]
MAX_BODY = 1_048_576  # server.max_body_bytes by default
F = TypeVar("F")
BAD_STRINGS = [
    b'"\\ud83d"',  # a lone high surrogate
    b'"\\udc00x"',  # a lone low surrogate
    b'"a\\u0000b"',  # NUL (valid JSON: must be judged, not crash)
    b'"\xc0\xaf"',  # an overlong UTF-8 form
    b'"\xed\xa0\x80"',  # a surrogate encoded in UTF-8
    b'"\xff"',  # not UTF-8 at all
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, project_config: str) -> Path:
    return prepare_project(tmp_path_factory.mktemp("hard") / "p", versions=2, config=project_config)


@contextmanager
def serving(app: Starlette) -> Iterator[TestClient]:
    """A client of ``app``; the event store the app opened for itself is closed after it."""
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            yield c
    finally:
        for service in app.state.services.values():
            service.events.close()  # a PostgreSQL connection otherwise left to the garbage collector


@pytest.fixture(scope="module")
def client(served: Path) -> Iterator[TestClient]:
    env = {"FOURLOOPS_SERVER_ADMIN_TOKEN": TOKEN}
    with (
        Project.load(served, env=env, clock=lambda: T0 + timedelta(days=39, hours=23)) as project,
        serving(build_app(project)) as c,
    ):
        yield c


def _deep(depth: int, kind: str) -> bytes:
    inner = b"[" * depth + b"1" + b"]" * depth
    if kind == "predict":
        return b'{"inputs": {"station": "a", "load": ' + inner + b"}}"
    if kind == "infer":
        return b'{"inputs": [{"name": "load", "data": ' + inner + b"}]}"
    if kind == "labels":
        return b'{"labels": [{"request_id": "x", "value": ' + inner + b"}]}"
    if kind == "ab":
        return b'{"split": ' + inner + b"}"
    return b'{"version": 99, "share": 0.1, "reason": ' + inner + b"}"  # promote, canary


def _strings(bad: bytes, kind: str, nan: bool) -> bytes:
    extra = b', "rain": NaN' if nan else b""
    if kind == "predict":
        row = b'{"station": ' + bad + b', "load": 0.5' + extra + b"}"
        return b'{"inputs": ' + row + b', "request_id": ' + bad + b', "unit_id": ' + bad + b"}"
    if kind == "infer":
        return b'{"id": ' + bad + b', "inputs": [{"name": "station", "data": [' + bad + b"]}]}"
    if kind == "labels":
        return b'{"labels": [{"request_id": ' + bad + b', "value": ' + (b"NaN" if nan else bad) + b"}]}"
    force = b', "force": NaN' if nan else b""
    if kind == "ab":
        return b'{"split": {' + bad + b": 0.5}" + force + b', "reason": ' + bad + b"}"
    return b'{"version": 99, "share": 0.1, "alias": ' + bad + b', "reason": ' + bad + force + b"}"


def _wide(n: int, kind: str, rows: bool) -> bytes:
    """``n`` of something: fields or rows (predict), tensors or values (infer), labels, arms, keys."""
    if kind == "predict":
        if rows:
            return b'{"instances": [' + b", ".join([b'{"station": "a", "load": 0.5}'] * n) + b"]}"
        return b'{"inputs": {' + b", ".join(b'"f%d": 1' % i for i in range(n)) + b"}}"
    if kind == "infer":
        if rows:
            loads = b", ".join([b"0.5"] * n)
            stations = b", ".join([b'"a"'] * n)
            return (
                b'{"inputs": [{"name": "load", "data": ['
                + loads
                + b']}, {"name": "station", "data": ['
                + stations
                + b"]}]}"
            )
        return b'{"inputs": [' + b", ".join(b'{"name": "t%d", "data": [1]}' % i for i in range(n)) + b"]}"
    if kind == "labels":
        return (
            b'{"labels": [' + b", ".join(b'{"request_id": "w%d", "value": 1}' % i for i in range(n)) + b"]}"
        )
    if kind == "ab":  # versions that do not exist
        return b'{"split": {' + b", ".join(b'"%d": 0.001' % (1000 + i) for i in range(n)) + b"}}"
    return b'{"version": 99, "share": 0.1, ' + b", ".join(b'"k%d": 1' % i for i in range(n)) + b"}"


def _large(size: int, kind: str) -> bytes:
    """A body of about ``size`` bytes: one long string where the route reads one."""
    text = b'"' + b"a" * size + b'"'
    if kind == "predict":
        return b'{"inputs": {"station": ' + text + b', "load": 0.5}}'
    if kind == "infer":
        return b'{"inputs": [{"name": "station", "data": [' + text + b']}, {"name": "load", "data": [0.5]}]}'
    if kind == "labels":
        return b'{"labels": [{"request_id": ' + text + b', "value": 1}]}'
    if kind == "ab":
        return b'{"split": {"1000": 0.5}, "reason": ' + text + b"}"
    return b'{"version": 99, "share": 0.1, "reason": ' + text + b"}"


def _huge_version(number: int, kind: str) -> bytes:
    """A version number beyond what a database column holds (or below 1)."""
    if kind == "ab":
        return b'{"split": {"%d": 0.5, "1": 0.5}}' % number
    return b'{"version": %d, "share": 0.1}' % number


class Body(bytes):
    """A request body, shown by its length and start in hypothesis' reports (some are megabytes)."""

    def __repr__(self) -> str:
        return f"<{len(self):,} bytes: {bytes(self[:80])!r}...>"


KINDS = st.sampled_from(["predict", "infer", "labels", *ADMIN_KINDS])
hostile = st.one_of(
    st.tuples(KINDS, st.integers(1, 4000)).map(lambda t: (t[0], _deep(t[1], t[0]))),
    st.tuples(KINDS, st.sampled_from(BAD_STRINGS), st.booleans()).map(
        lambda t: (t[0], _strings(t[1], t[0], t[2]))
    ),
    st.tuples(KINDS, st.integers(1, 20_000), st.booleans()).map(lambda t: (t[0], _wide(t[1], t[0], t[2]))),
    st.tuples(KINDS, st.integers(1, 2 * MAX_BODY)).map(lambda t: (t[0], _large(t[1], t[0]))),
    st.tuples(
        st.sampled_from(ADMIN_KINDS), st.integers(2**31 - 5, 2**64 + 10) | st.integers(-(2**64), 0)
    ).map(lambda t: (t[0], _huge_version(t[1], t[0]))),
)
hostile = hostile.map(lambda t: (t[0], Body(t[1])))
PATHS = {
    "predict": ROUTES[0],
    "infer": ROUTES[1],
    "labels": ROUTES[2],
    **{kind: f"/v1/admin/models/late/{kind}" for kind in ADMIN_KINDS},
}


def _requests_counted(client: TestClient) -> dict[tuple[str, str], float]:
    """``fourloops_requests_total`` by (model, status)."""
    text = client.get("/metrics").text
    series = re.findall(
        r'^fourloops_requests_total\{model="([^"]*)",status="([^"]*)"\} ([0-9.e+]+)$', text, re.M
    )
    return {(model, status): float(value) for model, status, value in series}


# The extremes, every run (hypothesis draws mostly small sizes).
EXTREMES = [
    ("predict", _large(MAX_BODY + 10, "predict"), True),  # over the limit, no content-length
    ("labels", _large(600_000, "labels"), False),  # an id PostgreSQL could not index
    ("predict", _wide(20_000, "predict", False), False),
    ("infer", _wide(1001, "infer", True), False),  # one row over server.max_instances
    ("labels", _wide(5000, "labels", False), False),
    ("ab", _huge_version(2**63 + 5, "ab"), False),
    ("promote", _huge_version(2**31, "promote"), False),
    ("predict", _strings(BAD_STRINGS[2], "predict", False), False),  # NUL
    ("canary", _deep(4000, "canary"), True),
]


def _with_extremes(test: F) -> F:
    for kind, body, stream in EXTREMES:
        test = example(case=(kind, Body(body)), stream=stream)(test)
    return test


@_with_extremes
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=hostile, stream=st.booleans())
def test_hostile_bodies_get_a_one_line_4xx_and_are_counted_by_status(
    client: TestClient, case: tuple[str, bytes], stream: bool
) -> None:
    kind, body = case
    before = _requests_counted(client)
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    # Streamed, the body comes without a content-length: the limit is enforced while reading.
    r = client.post(PATHS[kind], content=iter([bytes(body)]) if stream else bytes(body), headers=headers)
    assert r.status_code < 500, (kind, body[:120], r.status_code, r.text[:300])
    if r.status_code >= 400:
        error = r.json()["error"]
        assert error["type"] and error["message"] and "\n" not in error["message"]
    if kind in ADMIN_KINDS:  # no hostile body changes the routing
        assert r.status_code >= 400, (kind, body[:120], r.text[:300])
    if len(body) > MAX_BODY:
        assert r.status_code == 413, (kind, len(body), r.text[:300])
    after = _requests_counted(client)
    model = "-" if kind == "labels" else "late"
    status = "ok" if r.status_code < 300 else str(r.status_code)
    # This answer under its own model and status, and the first /metrics scrape (model "-").
    expected = {(model, status): 1.0}
    expected[("-", "ok")] = expected.get(("-", "ok"), 0.0) + 1.0
    changed = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    assert changed == expected, (kind, r.status_code, changed)


def test_depth_and_unicode_are_named() -> None:
    from fourloops.inference.http import HTTPError, parse_json

    for body, words in [
        (_deep(5000, "predict"), "deeper than 1024"),
        (_strings(BAD_STRINGS[0], "predict", True), "surrogate"),
        (_strings(BAD_STRINGS[0], "predict", False), "surrogate"),
        (b'"\xff"', "not valid UTF-8"),
        (b'{"inputs": {"station": "a\\u0000"}}', r"^inputs\.station holds a NUL character"),
        (
            b'{"labels": [{"request_id": "x", "value": "\\u0000"}], "n": NaN}',
            r"^labels\[0\]\.value holds a NUL",
        ),
        (b'{"a\\u0000\\n": 1}', r"^a key of body \('a\\x00\\n'\) holds a NUL"),
    ]:
        with pytest.raises(HTTPError, match=words):
            parse_json(body)
    assert parse_json(b'{"a": "\\\\u0000"}') == {"a": "\\u0000"}  # an escaped backslash, then text


def test_a_nul_character_is_refused_on_every_route_naming_where(client: TestClient) -> None:
    """PostgreSQL stores no NUL (text or jsonb): refused alike on every backend, never a 503."""
    auth = {"authorization": f"Bearer {TOKEN}"}
    for route, body, field in [
        (
            "/v1/models/late/predict",
            {"inputs": {"station": "a", "load": 0.5}, "request_id": "n\x00"},
            "request_id",
        ),
        ("/v1/models/late/predict", {"inputs": {"station": "a", "load": 0.5}, "unit_id": "u\x00"}, "unit_id"),
        ("/v2/models/late/infer", {"id": "\x00", "inputs": [{"name": "load", "data": [0.5]}]}, "id"),
        ("/v1/labels", {"labels": [{"request_id": "l\x00", "value": 1}]}, "labels[0].request_id"),
        ("/v1/labels", {"request_id": "l", "value": "\x00"}, "value"),
        ("/v1/admin/models/late/promote", {"version": 1, "reason": "r\x00"}, "reason"),
    ]:
        r = client.post(route, json=body, headers=auth)
        error = r.json()["error"]
        assert r.status_code == 400 and error["field"] == field and "NUL" in error["message"], r.text


def test_version_numbers_beyond_the_database_are_not_found(client: TestClient) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    # 2**31: beyond PostgreSQL's integer column; 2**63 + 5: orjson reads it as an integer, SQLite cannot
    for huge in (2**31, 2**63 + 5):
        for route, body in [
            ("promote", {"version": huge}),
            ("canary", {"share": 0.1, "version": huge}),
            ("ab", {"split": {str(huge): 0.5, "1": 0.5}}),
        ]:
            r = client.post(f"/v1/admin/models/late/{route}", json=body, headers=auth)
            message = r.json()["error"]["message"]
            assert r.status_code == 409 and f"no version {huge}" in message, (route, r.text)
    for key in ("1_0", " 1", "-1", "\u0661"):  # int() reads each of these as a number
        r = client.post("/v1/admin/models/late/ab", json={"split": {key: 1.0}}, headers=auth)
        assert r.status_code == 400 and "is not a version number" in r.text, (key, r.text)


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
    with serving(app) as client:
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
    with Project.load(served, env={}) as project, serving(build_app(project)) as client:
        r = client.post("/v1/admin/models/late/pause")
    assert r.status_code == 401 and "admin routes are disabled" in r.json()["error"]["message"]


def test_a_label_naming_an_id_no_prediction_can_have_is_refused(client: TestClient) -> None:
    """Longer than any logged id (and than PostgreSQL indexes): refused, not a 503 on one backend."""
    r = client.post("/v1/labels", json={"labels": [{"request_id": "a" * 257, "value": 1}]})
    error = r.json()["error"]
    assert r.status_code == 400 and "longer than any prediction's (at most 256)" in error["message"], r.text
    assert client.post("/v1/labels", json={"request_id": "b" * 256, "value": 1}).status_code == 200
