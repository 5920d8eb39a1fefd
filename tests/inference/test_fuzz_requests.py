"""Property: whatever a client sends, the server answers with a status below 500 and, for a 4xx, a
one-line JSON error that says what is wrong (never a crash, never a 5xx for bad input); every
answer matches the response documented in ``/openapi.json`` for its route and status, and the
server and the documented schema agree on every prediction request: what the schema accepts is
answered, what it refuses is refused (requests are read strictly by their JSON types; a contract
may opt into lenient reading).

Bodies are drawn three ways: arbitrary JSON, near-valid requests (the model's real fields with
values of every JSON type, plus unknown fields) and raw bytes that are mostly not JSON at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from starlette.testclient import TestClient

from fourloops.project import Project
from fourloops.server import build_app
from trips import T0, prepare_project

TOKEN = "fuzz-token"
ROUTES = ["/v1/models/late/predict", "/v2/models/late/infer", "/v1/labels"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.floats(-1, 2).map(str)  # numeric strings: the server reads them, the schema does not
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(["station", "load", "rain", "colour", ""])
DELETE = object()


def _mutate(row: dict[str, Any], edits: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(row)
    for name, value in edits:
        if value is DELETE:
            out.pop(name, None)
        else:
            out[name] = value
    return out


# A valid row with up to two fields deleted, replaced by any JSON value or added, so that many
# requests pass validation and the rest fail it in one specific place.
valid_rows = st.fixed_dictionaries(
    {"station": st.sampled_from(["a", "b", "c"]), "load": st.floats(0, 1)},
    optional={"rain": st.floats(0, 50)},
)
edits = st.lists(st.tuples(field_names, st.just(DELETE) | json_values), max_size=2)
rows = st.builds(_mutate, valid_rows, st.just([]) | edits)
predict_bodies = st.fixed_dictionaries(
    {},
    optional={
        "inputs": rows | rows | json_values,
        "instances": st.lists(rows, min_size=1, max_size=3) | json_values,
        "request_id": st.text(max_size=8) | json_values,
        "unit_id": st.text(max_size=8) | json_values,
    },
)


def _tensors(columns: dict[str, list[Any]], datatypes: dict[str, str], extra: list[dict[str, Any]]) -> Any:
    n = max((len(v) for v in columns.values()), default=0)
    tensors = [
        {"name": name, "shape": [n], "datatype": datatypes.get(name, "FP64"), "data": data}
        for name, data in columns.items()
    ]
    return tensors + extra


v2_tensor = st.fixed_dictionaries(
    {},
    optional={
        "name": field_names | json_values,
        "shape": st.lists(st.integers(-2, 3), max_size=3) | json_values,
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL", "??"]) | json_values,
        "data": st.lists(json_scalars, max_size=3) | json_values,
    },
)
v2_inputs = st.integers(1, 3).flatmap(
    lambda n: st.builds(
        _tensors,
        st.fixed_dictionaries(
            {
                "station": st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
                "load": st.lists(st.floats(0, 1), min_size=n, max_size=n + 1),
            }
        ),
        st.fixed_dictionaries(
            {"station": st.sampled_from(["BYTES", "FP64"])},
            optional={"load": st.sampled_from(["FP32", "BYTES"])},
        ),
        st.lists(v2_tensor, max_size=1),
    )
)
v2_bodies = st.fixed_dictionaries(
    {}, optional={"id": json_values, "inputs": v2_inputs | v2_inputs | st.lists(v2_tensor, max_size=3)}
)
one_label = st.fixed_dictionaries(
    {},
    optional={
        "request_id": st.text(max_size=8) | json_values,
        "value": st.booleans() | st.floats(0, 1) | json_values,
    },
)
label_bodies = (
    st.fixed_dictionaries({}, optional={"labels": st.lists(one_label, max_size=3) | json_values}) | one_label
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("fuzz") / "p"
    prepare_project(root)
    env = {"FOURLOOPS_SERVER_ADMIN_TOKEN": TOKEN}
    project = Project.load(root, env=env, clock=lambda: T0 + timedelta(days=39, hours=23))
    with TestClient(build_app(project), raise_server_exceptions=False) as c:
        yield c
    project.close()


class Spec(dict[str, Any]):
    """The served ``/openapi.json``; shown by name, not whole, in hypothesis' failure reports."""

    def __repr__(self) -> str:
        return "<the server's /openapi.json>"


@pytest.fixture(scope="module")
def spec(client: TestClient) -> Spec:
    spec = Spec(client.get("/openapi.json").json())
    validate_openapi(spec)  # a valid OpenAPI 3.1 document
    return spec


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _conforms(spec: dict[str, Any], value: Any, *pointer: str) -> str | None:
    """None when ``value`` matches the schema at ``pointer`` in ``spec``, else what is wrong."""
    schema = {**spec, "$ref": _pointer(*pointer)}  # the spec's own "#/components/..." refs resolve
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    return None if error is None else f"{error.json_path}: {error.message}"


def _check(client: TestClient, spec: dict[str, Any], route: str, content: bytes) -> int:
    """The status of ``content`` sent to ``route``, after checking the answer (see the module docstring).

    A request id drawn twice is refused the second time (409 ``duplicate_request_id``): that is
    returned as ``DUPLICATE_ID``, a valid request whose id is taken (uniqueness is no schema rule).
    """
    r = client.post(route, content=content, headers={"content-type": "application/json"})
    assert r.status_code < 500, (route, content[:200], r.status_code, r.text[:300])
    body = r.json()
    if r.status_code >= 400:
        error = body["error"]
        assert isinstance(error["type"], str) and error["type"]
        assert isinstance(error["message"], str) and error["message"]
        assert "\n" not in error["message"], error["message"]
        assert "Traceback" not in r.text
    elif route.endswith("/predict"):
        answers = body["predictions"] if "predictions" in body else [body]
        for answer in answers:
            assert answer["model"] == "late" and isinstance(answer["version"], int)
            assert isinstance(answer["request_id"], str) and answer["request_id"]
    wrong = _undocumented(spec, route, "post", r.status_code, body)
    assert wrong is None, (route, content[:200], r.status_code, r.text[:300], wrong)
    if r.status_code == 409 and body["error"]["type"] == "duplicate_request_id":
        return DUPLICATE_ID
    return r.status_code


#: What :func:`_check` returns for a request refused only because its id was used before.
DUPLICATE_ID = -409


def _undocumented(spec: dict[str, Any], route: str, method: str, status: int, body: Any) -> str | None:
    """None when ``status`` is documented for the route and ``body`` matches its schema, else what is not."""
    if str(status) not in spec["paths"][route][method]["responses"]:
        return f"status {status} is not documented"
    pointer = ("paths", route, method, "responses", str(status), "content", "application/json", "schema")
    return _conforms(spec, body, *pointer)


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(route=st.sampled_from(ROUTES), body=json_values)
def test_any_json_body_gets_an_answer_below_500(
    client: TestClient, spec: dict[str, Any], route: str, body: Any
) -> None:
    _check(client, spec, route, _dump(body))


@FUZZ
@given(body=predict_bodies)
def test_near_valid_predict_requests_never_5xx_and_what_the_schema_accepts_is_answered(
    client: TestClient, spec: dict[str, Any], body: dict[str, Any]
) -> None:
    route = "/v1/models/late/predict"
    status = _check(client, spec, route, _dump(body))
    request_schema = ("paths", route, "post", "requestBody", "content", "application/json", "schema")
    wrong = _conforms(spec, body, *request_schema)
    # Only a request the schema accepts gets as far as claiming its id (a refused one claims nothing).
    assert (wrong is None) == (status in (200, DUPLICATE_ID)), (body, status, wrong)


@FUZZ
@given(
    case=st.tuples(st.just("/v2/models/late/infer"), v2_bodies)
    | st.tuples(st.just("/v1/labels"), label_bodies)
)
def test_near_valid_infer_and_label_requests_never_5xx(
    client: TestClient, spec: dict[str, Any], case: tuple[str, Any]
) -> None:
    route, body = case
    _check(client, spec, route, _dump(body))


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode),
)
def test_raw_bytes_never_5xx(client: TestClient, spec: dict[str, Any], route: str, raw: bytes) -> None:
    _check(client, spec, route, raw)


ADMIN = ["promote", "canary", "ab"]  # the admin routes that read a body (rollback and pause read none)
admin_bodies = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from([1, 2, 99]) | st.integers(2**31 - 2, 2**64) | json_values,
        "alias": st.sampled_from(["champion", "canary", "shadow", ""]) | json_values,
        "reason": json_values,
        "force": json_values,
        "share": st.floats(0, 1) | json_values,
        "split": st.none()
        | st.dictionaries(
            st.sampled_from(["1", "2", "x", "1_0", " 1"]) | st.integers(-(2**64), 2**64).map(str),
            st.floats(0, 1),
        )
        | json_values,
    },
)


@pytest.fixture(scope="module")
def admin_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A server of its own (v1 champion, v2 trained), whose routing the admin fuzzing may change."""
    root: Path = tmp_path_factory.mktemp("fuzz-admin") / "p"
    prepare_project(root, versions=2, materialize=False)
    project = Project.load(root, env={"FOURLOOPS_SERVER_ADMIN_TOKEN": TOKEN})
    with TestClient(build_app(project), raise_server_exceptions=False) as c:
        yield c
    project.close()


@FUZZ
@given(action=st.sampled_from(ADMIN), body=admin_bodies | json_values)
def test_admin_bodies_never_5xx_and_a_refused_change_changes_nothing(
    admin_client: TestClient, spec: Spec, action: str, body: Any
) -> None:
    client = admin_client
    route = f"/v1/admin/models/late/{action}"
    before = client.get("/readyz").json()["models"]["late"]
    r = client.post(route, content=_dump(body), headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code < 500, (body, r.status_code, r.text[:300])
    wrong = _undocumented(spec, route, "post", r.status_code, r.json())
    assert wrong is None, (body, r.text, wrong)
    if r.status_code != 200:
        assert client.get("/readyz").json()["models"]["late"] == before, (body, r.text)
    elif action == "promote":  # only well-formed requests change anything
        assert isinstance(body["version"], int), body
        for key, kind in (("force", bool), ("alias", str), ("reason", str)):  # null counts as absent
            assert body.get(key) is None or isinstance(body[key], kind), (key, body)


@pytest.mark.parametrize(
    ("method", "route", "body", "token", "status"),
    [
        ("GET", "/healthz", None, None, 200),
        ("GET", "/readyz", None, None, 200),
        ("POST", "/v1/admin/models/late/pause", None, TOKEN, 200),
        ("POST", "/v1/admin/models/late/ab", {"split": None}, TOKEN, 200),
        ("POST", "/v1/admin/models/late/canary", {"share": 2}, TOKEN, 400),
        ("POST", "/v1/admin/models/late/promote", {"version": 1}, None, 401),
        ("POST", "/v1/admin/models/late/promote", {"version": 1}, "wrong", 401),
        ("POST", "/v1/admin/models/late/promote", {"version": 99}, TOKEN, 409),
        ("POST", "/v1/admin/models/late/promote", {"version": 1, "force": "false"}, TOKEN, 400),
        ("POST", "/v1/admin/models/late/promote", {"version": 1, "alias": True}, TOKEN, 400),
        ("POST", "/v1/admin/models/late/rollback", None, TOKEN, 409),
    ],
)
def test_operational_and_admin_answers_match_the_spec(
    client: TestClient,
    spec: dict[str, Any],
    method: str,
    route: str,
    body: Any,
    token: str | None,
    status: int,
) -> None:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = client.request(method, route, json=body, headers=headers)
    assert r.status_code == status, r.text
    if body is not None:
        request_schema = ("paths", route, "post", "requestBody", "content", "application/json", "schema")
        assert (_conforms(spec, body, *request_schema) is None) == (status != 400), body
    wrong = _undocumented(spec, route, method.lower(), status, r.json())
    assert wrong is None, (route, r.text, wrong)


def test_metrics_and_every_model_route_are_described(client: TestClient, spec: dict[str, Any]) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200 and "fourloops_requests" in r.text
    served = {route.path.replace("{model}", "late") for route in client.app.routes}  # type: ignore[attr-defined]
    described = set(spec["paths"])
    assert served - {"/openapi.json", "/docs", "/docs/assets"} <= described  # the page and its files
    for action in ("promote", "rollback", "canary", "pause", "ab", "rollout", "rollout/abort"):
        assert spec["paths"][f"/v1/admin/models/late/{action}"]["post"]["security"] == [{"bearer": []}]
