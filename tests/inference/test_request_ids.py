"""Reused request ids: the ledgers (in-process and Redis) and the server's 409.

The in-process ledger's promise (an id is refused for more than ``window``
and at most ``2 * window`` seconds, and the last ``max_ids / 2`` ids are
always refused) is checked against a brute-force oracle that keeps every
claim with its time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from fourloops.errors import ConfigError, StoreError
from fourloops.inference.request_ids import RedisRequestIds, RequestIdLedger
from fourloops.project import Project
from fourloops.server import build_app
from trips import T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23)


class Ticks:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_claimed_id_is_refused_until_released() -> None:
    ledger = RequestIdLedger(60)
    assert ledger.claim(["a"]) is None
    assert ledger.claim(["a"]) == "a"
    ledger.release(["a"])
    assert ledger.claim(["a"]) is None


def test_a_request_claims_all_its_ids_or_none() -> None:
    ledger = RequestIdLedger(60)
    assert ledger.claim(["b-1"]) is None
    assert ledger.claim(["b-0", "b-1", "b-2"]) == "b-1"
    assert ledger.claim(["b-0"]) is None  # not kept by the refused request
    assert ledger.claim(["b-2"]) is None
    assert len(ledger) == 3


def test_window_bounds_and_seed() -> None:
    ticks = Ticks()
    ledger = RequestIdLedger(10, clock=ticks)
    ledger.seed(["logged-before"])
    ticks.t = 9.9
    assert ledger.claim(["x"]) is None
    ticks.t = 19.8  # x is 9.9 s old: still refused; the seeded id is 19.8 s old
    assert ledger.claim(["x"]) == "x"
    assert ledger.claim(["logged-before"]) == "logged-before"
    ticks.t = 29.9  # x is 20 s old: past twice the window
    assert ledger.claim(["x"]) is None
    ticks.t = 100.0  # a long quiet spell forgets everything
    assert ledger.claim(["x"]) is None
    assert len(ledger) == 1


def test_memory_stays_under_max_ids_and_keeps_the_newest_half() -> None:
    ledger = RequestIdLedger(3600, max_ids=100)
    for i in range(1000):
        assert ledger.claim([f"id{i}"]) is None
        assert len(ledger) <= 100
    assert all(ledger.claim([f"id{i}"]) == f"id{i}" for i in range(950, 1000))


def test_bad_ledger_arguments() -> None:
    with pytest.raises(ValueError, match="window"):
        RequestIdLedger(0)
    with pytest.raises(ValueError, match="max_ids"):
        RequestIdLedger(1, max_ids=1)


steps = st.lists(
    st.tuples(st.floats(0, 25, allow_nan=False), st.sampled_from("abcdefgh"), st.booleans()),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, max_ids=st.integers(2, 12))
def test_ledger_against_a_brute_force_oracle(steps: list[tuple[float, str, bool]], max_ids: int) -> None:
    """Each claim is refused exactly when the oracle says it must be, and accepted when it must be.

    The oracle keeps (time, id) of every accepted claim not released. An id claimed less than
    ``window`` ago and among the last ``max_ids // 2`` distinct ids claimed must be refused; an id
    claimed ``2 * window`` ago or more (or never, or released) must be accepted.
    """
    window = 10.0
    ticks = Ticks()
    ledger = RequestIdLedger(window, max_ids=max_ids, clock=ticks)
    claims: list[tuple[float, str]] = []  # accepted, not released, oldest first
    for dt, rid, release in steps:
        ticks.t += dt
        mine = [n for n, (_, r) in enumerate(claims) if r == rid]
        last = claims[mine[-1]][0] if mine else None
        newer = {r for _, r in claims[mine[-1] + 1 :]} if mine else set()
        got = ledger.claim([rid])
        if last is not None and ticks.t - last < window and len(newer) < max_ids // 2:
            assert got == rid, "an id claimed within the window was accepted again"
        if last is None or ticks.t - last >= 2 * window:
            assert got is None, "an id unclaimed or claimed 2 windows ago was refused"
        if got is None:
            claims.append((ticks.t, rid))
            if release:
                ledger.release([rid])
                claims = [(t, r) for t, r in claims if r != rid]
        assert len(ledger) <= max_ids


def test_redis_ids_are_shared_between_servers(redis_url: str, redis_namespace: str) -> None:
    one = RedisRequestIds(redis_url, 60, namespace=redis_namespace)
    two = RedisRequestIds(redis_url, 60, namespace=redis_namespace)
    other = RedisRequestIds(redis_url, 60, namespace=redis_namespace + "-other")
    try:
        assert one.claim(["r1"]) is None
        assert two.claim(["r1"]) == "r1"  # another server sees the claim
        assert other.claim(["r1"]) is None  # another project does not
        assert two.claim(["r0", "r1", "r2"]) == "r1"
        assert one.claim(["r0", "r2"]) is None  # the refused request gave back what it got
        one.release(["r1"])
        assert two.claim(["r1"]) is None
        assert one.claim([]) is None
        ttl = one._client.pttl(one.key("r1"))
        assert 0 < ttl <= 60_000
    finally:
        for ledger in (one, two, other):
            ledger.close()


def test_redis_ids_unreachable_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="request-id store"):
        RedisRequestIds("redis://127.0.0.1:1/0", 60)


# -- the server ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("rid") / "p")


def _env(**server: str) -> dict[str, str]:
    return {f"FOURLOOPS_SERVER_{k.upper()}": v for k, v in server.items()}


def _client(root: Path, **env: str) -> Iterator[tuple[TestClient, Project]]:
    project = Project.load(root, env=_env(**env), clock=lambda: NOW)
    with TestClient(build_app(project), raise_server_exceptions=False) as c:
        yield c, project
    project.close()


@pytest.fixture
def client(served: Path) -> Iterator[tuple[TestClient, Project]]:
    yield from _client(served)


def _events(project: Project, prefix: str) -> list[str]:
    ids = project.events(model="late").column("request_id").to_pylist()
    return [i for i in ids if i.startswith(prefix)]


ROW = {"station": "a", "load": 0.5}


def test_a_reused_request_id_is_refused_with_409_and_logged_once(client: tuple[TestClient, Any]) -> None:
    c, project = client
    first = c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-1"})
    assert first.status_code == 200, first.text
    again = c.post("/v1/models/late/predict", json={"inputs": {**ROW, "load": 0.9}, "request_id": "dup-1"})
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["type"] == "duplicate_request_id" and "'dup-1'" in error["message"]
    assert error["request_id"] == "dup-1"
    assert _events(project, "dup-1") == ["dup-1"]
    labels = c.post("/v1/labels", json={"request_id": "dup-1", "value": 1}).json()
    assert labels == {"inserted": 1, "duplicates": 0, "unknown": 0}
    metrics = c.get("/metrics").text
    assert 'fourloops_duplicate_request_ids_total{model="late"} 1.0' in metrics


def test_ids_of_multi_row_requests_are_claimed_row_by_row(client: tuple[TestClient, Any]) -> None:
    c, project = client
    many = c.post("/v1/models/late/predict", json={"instances": [ROW, ROW], "request_id": "dup-m"})
    assert many.status_code == 200, many.text
    assert [p["request_id"] for p in many.json()["predictions"]] == ["dup-m-0", "dup-m-1"]
    one = c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-m-1"})
    assert one.status_code == 409 and "'dup-m-1'" in one.json()["error"]["message"]
    station = {"name": "station", "shape": [1], "datatype": "BYTES", "data": ["a"]}
    load = {"name": "load", "shape": [1], "datatype": "FP64", "data": [0.5]}
    infer = {"id": "dup-v2", "inputs": [station, load]}
    assert c.post("/v2/models/late/infer", json=infer).status_code == 200
    assert c.post("/v2/models/late/infer", json=infer).status_code == 409
    fresh = c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-m"})
    assert fresh.status_code == 200  # the base id of a multi-row request names no event
    assert sorted(_events(project, "dup-m")) == ["dup-m", "dup-m-0", "dup-m-1"]
    assert _events(project, "dup-v2") == ["dup-v2"]


def test_a_request_refused_by_the_contract_claims_nothing(client: tuple[TestClient, Any]) -> None:
    c, _ = client
    bad = c.post("/v1/models/late/predict", json={"inputs": {"station": "a"}, "request_id": "dup-bad"})
    assert bad.status_code == 422
    good = c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-bad"})
    assert good.status_code == 200


def test_a_prediction_not_acknowledged_gives_its_id_back(
    client: tuple[TestClient, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, _ = client
    service = c.app.state.services["late"]  # type: ignore[attr-defined]

    def broken(events: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(service.writer, "append", broken)
    failed = c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-retry"})
    assert failed.status_code == 503
    monkeypatch.undo()
    retry = c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-retry"})
    assert retry.status_code == 200, retry.text


def test_a_restarted_server_remembers_the_ids_in_its_log(served: Path) -> None:
    for c, _ in _client(served):
        assert (
            c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-r"}).status_code == 200
        )
    for c, _ in _client(served):
        assert (
            c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-r"}).status_code == 409
        )


def test_checking_can_be_turned_off(served: Path) -> None:
    for c, project in _client(served, request_id_window=""):
        for _ in range(2):
            assert (
                c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-off"}).status_code
                == 200
            )
        assert _events(project, "dup-off") == ["dup-off", "dup-off"]


def test_servers_sharing_redis_refuse_each_others_ids(
    served: Path, redis_url: str, redis_namespace: str
) -> None:
    env = {
        **_env(request_id_store=redis_url, request_id_window="1h"),
        "FOURLOOPS_PROJECT_NAME": redis_namespace,
    }
    one = Project.load(served, env=env, clock=lambda: NOW)
    two = Project.load(served, env=env, clock=lambda: NOW)
    try:
        with TestClient(build_app(one)) as a, TestClient(build_app(two)) as b:
            assert (
                a.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-x"}).status_code
                == 200
            )
            assert (
                b.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": "dup-x"}).status_code
                == 409
            )
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("REQUEST_ID_WINDOW", "soon", "server.request_id_window"),
        ("REQUEST_ID_WINDOW", "0s", "server.request_id_window: must be positive"),
        ("REQUEST_ID_MAX", "1", "server.request_id_max must be >= 2"),
        ("REQUEST_ID_STORE", "localhost:6379", "server.request_id_store must be a Redis URL"),
    ],
)
def test_bad_request_id_settings_fail_at_load(served: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Project.load(served, env={f"FOURLOOPS_SERVER_{key}": value})
