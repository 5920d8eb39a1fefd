"""The server's pieces, each tested alone (no app, no model): body shapes, ids, rate limits, errors."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from starlette.requests import Request
from starlette.responses import Response

from fourloops.errors import StoreError
from fourloops.inference.http import HTTPError, JSONResponse, json_errors
from fourloops.inference.throttle import RateLimitCheck
from fourloops.inference.v1 import Predict, client_request_id
from fourloops.inference.v2 import Infer


def _request(headers: dict[str, str] | None = None, model: str = "m") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "headers": raw, "path_params": {"model": model}, "method": "POST"})


def _status(call: Any) -> int:
    with pytest.raises(HTTPError) as info:
        call()
    return info.value.response.status_code


def test_predict_bodies_are_read_into_rows_or_refused_by_shape() -> None:
    predict = Predict(None, None, max_body_bytes=100, max_instances=2)  # type: ignore[arg-type]
    assert predict.instances({"inputs": {"a": 1}}) == ([{"a": 1}], True)
    assert predict.instances({"instances": [{"a": 1}, {"a": 2}]}) == ([{"a": 1}, {"a": 2}], False)
    for body, status in [
        ({"inputs": {}, "instances": []}, 400),
        ({"inputs": [1]}, 400),
        ({"instances": []}, 400),
        ({"instances": {"a": 1}}, 400),
        ({"instances": [{}, {}, {}]}, 413),
        ({"rows": []}, 400),
    ]:
        assert _status(lambda b=body: predict.instances(b)) == status, body


def test_infer_tensors_become_rows_of_the_same_length() -> None:
    infer = Infer(None, None, max_body_bytes=100, max_instances=3)  # type: ignore[arg-type]
    body = {"inputs": [{"name": "a", "data": [1, 2]}, {"name": "b", "data": ["x", "y"]}]}
    assert infer.instances(body) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    for bad, status in [
        ({"inputs": [{"name": "a", "data": [1]}, {"name": "b", "data": [1, 2]}]}, 400),
        ({"inputs": [{"name": "a", "data": []}]}, 400),
        ({"inputs": [{"name": "a"}]}, 400),
        ({"inputs": [{"name": "a", "data": [1, 2, 3, 4]}]}, 413),
        ([], 400),
    ]:
        assert _status(lambda b=bad: infer.instances(b)) == status, bad


def test_client_request_ids() -> None:
    assert client_request_id(None, "request_id") is None
    assert client_request_id("r-1", "request_id") == "r-1"
    for bad in ("", 7, "x" * 10_000, "r-1:shadow"):
        assert _status(lambda b=bad: client_request_id(b, "request_id")) == 400


class _Metrics:
    def __init__(self) -> None:
        registry = CollectorRegistry()
        self.rate_limit_errors = Counter("e", "e", ["model"], registry=registry)
        self.rate_limited = Counter("l", "l", ["model", "limit"], registry=registry)


def test_rate_limit_check_answers_429_with_retry_after_and_follows_its_failure_policy() -> None:
    metrics = _Metrics()
    refuse = RateLimitCheck(
        lambda model, client: SimpleNamespace(allowed=client != "greedy", retry_after=0.2, limit="client"),
        metrics,  # type: ignore[arg-type]
    )
    asyncio.run(refuse(_request({"X-Client-Key": "calm"}), "m"))
    with pytest.raises(HTTPError) as info:
        asyncio.run(refuse(_request({"X-Client-Key": "greedy"}), "m"))
    assert info.value.response.status_code == 429 and info.value.response.headers["Retry-After"] == "1"
    assert metrics.rate_limited.labels("m", "client")._value.get() == 1

    def broken(model: str, client: str) -> Any:
        raise StoreError("redis down")

    asyncio.run(RateLimitCheck(broken, metrics, on_error="allow")(_request(), "m"))  # type: ignore[arg-type]
    with pytest.raises(HTTPError) as info:
        asyncio.run(RateLimitCheck(broken, metrics, on_error="reject", blocks=True)(_request(), "m"))  # type: ignore[arg-type]
    assert info.value.response.status_code == 503
    assert metrics.rate_limit_errors.labels("m")._value.get() == 2


def test_json_errors_answers_the_error_body() -> None:
    async def handler(request: Request) -> Response:
        if request.path_params["model"] == "bad":
            raise HTTPError(422, "contract_violation", "no", field="x")
        return JSONResponse({"ok": True})

    wrapped = json_errors(handler)
    assert asyncio.run(wrapped(_request())).status_code == 200
    answer = asyncio.run(wrapped(_request(model="bad")))
    assert answer.status_code == 422 and b'"field":"x"' in answer.body
