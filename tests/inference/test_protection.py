"""Protection on the request path, through the real app: deadline, cache, back-pressure, their metrics."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from fourloops.errors import ConfigError, StoreError
from fourloops.inference.app import ServerSettings, create_app
from fourloops.project import Project
from fourloops.server import build_app, uvicorn_options
from fourloops.storage.events import PredictionEvent
from trips import T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23)
BODY = {"inputs": {"station": "a", "load": 0.5, "rain": 1.0}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("protect") / "p"
    return prepare_project(root)


def _project(root: Path, **server: str) -> Project:
    env = {f"FOURLOOPS_SERVER_{k.upper()}": v for k, v in server.items()}
    return Project.load(root, env=env, clock=lambda: NOW)


def _post_all(app: Starlette, bodies: Sequence[Mapping[str, Any]]) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            return list(
                await asyncio.gather(*(client.post("/v1/models/late/predict", json=b) for b in bodies))
            )

    return asyncio.run(main())


def _metrics(app: Starlette) -> str:
    async def main() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/metrics")).text

    return asyncio.run(main())


def _logged(project: Project) -> dict[str, dict[str, Any]]:
    store = project.open_event_store()
    try:
        return {e["request_id"]: e for e in store.scan(model="late").to_pylist()}
    finally:
        store.close()


class _Stuck:
    """Wraps a predictor; every call blocks until ``release`` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.feature_names = inner.feature_names
        self.release = threading.Event()

    def predict_one(self, row: Mapping[str, Any]) -> Any:
        self.release.wait(60)
        return self.inner.predict_one(row)


def test_a_model_past_its_deadline_is_answered_by_the_fallback_and_logged(served: Path) -> None:
    with _project(served, timeout_ms="100") as project:
        app = build_app(project)
        service = app.state.services["late"]
        stuck = _Stuck(service.state.predictors[1])
        service.state.predictors[1] = stuck
        try:
            # Without the deadline these would wait 60 s (and the test would time out).
            responses = _post_all(app, [{**BODY, "request_id": f"t-{i}"} for i in range(3)])
        finally:
            stuck.release.set()
        for r in responses:
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["fallback"], body["fallback_reason"], body["prediction"]) == (
                "constant",
                "timeout",
                0.5,
            )
        logged = _logged(project)
        for i in range(3):
            event = logged[f"t-{i}"]
            extra = json.loads(event["extra"])
            assert event["fallback"] is True and extra["fallback_reason"] == "timeout"
            assert json.loads(event["output"]) == 0.5
        text = _metrics(app)
        assert 'fourloops_timeouts_total{model="late"} 3.0' in text
        assert 'fourloops_fallbacks_total{kind="constant",model="late",reason="timeout"} 3.0' in text


def test_a_healthy_model_answers_within_its_deadline(served: Path) -> None:
    with _project(served, timeout_ms="5000") as project:
        app = build_app(project)
        [r] = _post_all(app, [BODY])
        assert r.status_code == 200 and r.json()["fallback"] is None and r.json()["fallback_reason"] is None
        with _project(served, timeout_ms="0") as unbounded:  # no deadline: the same answer
            [same] = _post_all(build_app(unbounded), [BODY])
        assert same.json()["prediction"] == r.json()["prediction"]


def test_the_prediction_cache_answers_repeats_and_still_logs_them(served: Path) -> None:
    with _project(served, cache_ttl="1m") as project:
        app = build_app(project)
        service = app.state.services["late"]
        model = service.state.predictors[1]
        calls = []
        original = model.predict_one
        model.predict_one = lambda row: calls.append(row) or original(row)
        try:
            first = _post_all(app, [{**BODY, "request_id": "c-1"}])[0].json()
            second = _post_all(app, [{**BODY, "request_id": "c-2"}])[0].json()
            other = _post_all(app, [{"inputs": {**BODY["inputs"], "load": 0.9}, "request_id": "c-3"}])[0]
        finally:
            model.predict_one = original
        assert len(calls) == 2  # c-2 came from the cache
        assert second["prediction"] == first["prediction"] and second["fallback"] is None
        assert other.status_code == 200 and other.json()["prediction"] != first["prediction"]
        logged = _logged(project)
        assert json.loads(logged["c-2"]["extra"]) == {"cached": True}
        assert "cached" not in json.loads(logged["c-1"]["extra"])
        assert 'fourloops_cache_hits_total{model="late"} 1.0' in _metrics(app)


def test_no_cache_by_default(served: Path) -> None:
    with _project(served) as project:
        assert build_app(project).state.services["late"].caller.cache is None


class _SlowStore:
    """An event store whose appends take ``delay`` seconds (a slow disk or database)."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.appending = threading.Event()

    def append(self, events: Sequence[PredictionEvent]) -> None:
        self.appending.set()
        time.sleep(self.delay)
        self.inner.append(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _app_logging_to(
    project: Project, wrapper: type[_SlowStore], **settings: Any
) -> tuple[Starlette, Any, Any]:
    """The project's app with its event store wrapped in ``wrapper``; (app, service, wrapped store)."""
    services = build_app(project).state.services
    service = services["late"]
    store = wrapper(service.events, delay=0.3)
    service.events = store
    app = create_app(
        services,
        events=store,  # type: ignore[arg-type]
        registry=project.registry,
        settings=ServerSettings(**settings),
    )
    return app, service, store


@pytest.mark.parametrize("batching", [True, False])
def test_a_slow_event_store_sheds_load_but_never_acknowledges_unlogged(served: Path, batching: bool) -> None:
    with _project(served) as project:
        app, service, slow = _app_logging_to(project, _SlowStore, batching=batching, max_pending=4)
        lags: list[float] = []

        def watch() -> None:
            slow.appending.wait(10)
            time.sleep(0.15)
            lags.append(service.event_log_lag())

        watcher = threading.Thread(target=watch)
        watcher.start()
        prefix = f"bp{int(batching)}"
        responses = _post_all(app, [{**BODY, "request_id": f"{prefix}-{i}"} for i in range(20)])
        watcher.join(10)
        statuses = [r.status_code for r in responses]
        assert set(statuses) == {200, 503}, statuses
        shed = [r for r in responses if r.status_code == 503]
        assert all(r.json()["error"]["type"] == "overloaded" for r in shed)
        acked = [r.json()["request_id"] for r in responses if r.status_code == 200]
        logged = _logged(project)
        assert all(rid in logged for rid in acked)
        assert not any(f"{prefix}-{i}" in logged for i, r in enumerate(responses) if r.status_code == 503)
        # While the store was slow, the lag gauge showed predictions waiting for it; now it is 0.
        assert lags and lags[0] >= 0.1
        assert service.event_log_lag() == 0.0
        text = _metrics(app)
        assert f'fourloops_shed_total{{model="late"}} {float(len(shed))}' in text
        assert 'fourloops_event_log_lag_seconds{model="late"} 0.0' in text
        assert 'fourloops_requests_in_progress{model="late"} 0.0' in text
        assert 'fourloops_event_log_append_seconds_count{model="late"}' in text


class _BrokenStore(_SlowStore):
    """An event store whose appends fail (a full disk, a lost database)."""

    def append(self, events: Sequence[PredictionEvent]) -> None:
        raise StoreError("event store is down: No space left on device")


@pytest.mark.parametrize("batching", [True, False])
def test_a_failing_event_store_answers_503_and_acknowledges_nothing(served: Path, batching: bool) -> None:
    with _project(served) as project:
        app, _, _ = _app_logging_to(project, _BrokenStore, batching=batching)
        prefix = f"down{int(batching)}"
        bodies = [{**BODY, "request_id": f"{prefix}-{i}"} for i in range(5)]
        responses = _post_all(
            app, [*bodies, {"instances": [BODY["inputs"]] * 2, "request_id": f"{prefix}-x"}]
        )
        assert [r.status_code for r in responses] == [503] * 6
        assert {r.json()["error"]["type"] for r in responses} == {"unavailable"}
        assert all("not acknowledged" in r.json()["error"]["message"] for r in responses)
        assert not [rid for rid in _logged(project) if rid.startswith(prefix)]
        assert 'fourloops_event_log_failures_total{model="late"} 6.0' in _metrics(app)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("timeout_ms", "-1", "server.timeout_ms"),
        ("max_pending", "0", "server.max_pending"),
        ("cache_ttl", "soon", "server.cache_ttl"),
        ("cache_max_entries", "0", "server.cache_max_entries"),
        ("rate_limit_on_error", "maybe", "server.rate_limit_on_error"),
    ],
)
def test_bad_protection_settings_are_refused_by_name(
    served: Path, key: str, value: str, message: str
) -> None:
    # Refused when the project loads, naming the variable the value came from.
    with pytest.raises(ConfigError, match=f"environment FOURLOOPS_SERVER_{key.upper()}: {message}"):
        _project(served, **{key: value})


def test_services_are_closed_with_no_stuck_threads_left_behind(served: Path) -> None:
    """The model threads are daemons: a hung model never blocks the process from exiting."""
    with _project(served, timeout_ms="50") as project:
        service = build_app(project).state.services["late"]
        threads = [t for t in threading.enumerate() if t.name.startswith("fourloops-model-late")]
        assert threads and all(t.daemon for t in threads)
        service.caller.close()


@pytest.mark.parametrize(("policy", "status"), [("allow", 200), ("reject", 503)])
def test_a_failing_rate_limiter_lets_requests_through_or_refuses_them_as_configured(
    served: Path, policy: str, status: int
) -> None:
    from fourloops.errors import StoreError

    def broken(model: str, client: str) -> Any:
        raise StoreError("cannot reach the Redis rate limiter 'redis://nowhere': connection refused")

    with _project(served) as project:
        services = build_app(project).state.services
        app = create_app(
            services,
            events=services["late"].events,
            registry=project.registry,
            settings=ServerSettings(limiter_blocks=True, rate_limit_on_error=policy),
            limiter=broken,
        )
        responses = _post_all(app, [BODY, BODY])
        assert [r.status_code for r in responses] == [status, status]
        if status == 503:
            assert responses[0].json()["error"]["type"] == "unavailable"
            assert "rate limiter" in responses[0].json()["error"]["message"]
        assert 'fourloops_rate_limit_errors_total{model="late"} 2.0' in _metrics(app)


@pytest.mark.parametrize(("value", "fsync"), [("", False), ("true", True), ("FALSE", False)])
def test_the_local_event_store_fsyncs_when_configured(served: Path, value: str, fsync: bool) -> None:
    with Project.load(served, env={"FOURLOOPS_STORAGE_EVENTS_FSYNC": value}) as project:
        store = project.open_event_store()
        try:
            assert store.fsync is fsync  # type: ignore[attr-defined]
        finally:
            store.close()


def test_a_bad_fsync_setting_is_refused_by_name(served: Path) -> None:
    with pytest.raises(ConfigError, match="FOURLOOPS_STORAGE_EVENTS_FSYNC: storage.events_fsync"):
        Project.load(served, env={"FOURLOOPS_STORAGE_EVENTS_FSYNC": "sometimes"})


def test_online_feature_lookups_are_counted_by_outcome(served: Path) -> None:
    no_rain = {"inputs": {"station": "b", "load": 0.5}}  # rain is read from the online store
    with _project(served) as project:
        app = build_app(project)
        [r] = _post_all(app, [no_rain])
        assert r.status_code == 200
        assert 'fourloops_feature_lookups_total{model="late",status="ok",view="weather"} 1.0' in _metrics(app)
    later = NOW + timedelta(days=3)  # past the view's 2 h ttl: the stored value is expired
    with Project.load(served, env={}, clock=lambda: later) as project:
        app = build_app(project)
        [r] = _post_all(app, [no_rain])
        assert r.status_code == 200 and r.json()["fallback"] is None
        text = _metrics(app)
        assert 'fourloops_feature_lookups_total{model="late",status="expired",view="weather"} 1.0' in text
        assert 'fourloops_feature_lookups_total{model="late",status="ok"' not in text


def test_server_settings_reach_uvicorn_and_a_bad_shutdown_timeout_is_refused(served: Path) -> None:
    with _project(served, shutdown_timeout="45s", port="9123", access_log="false") as project:
        options = uvicorn_options(project, host="0.0.0.0")
    assert options["timeout_graceful_shutdown"] == 45.0
    assert (options["host"], options["port"], options["access_log"]) == ("0.0.0.0", 9123, False)
    with _project(served) as project:
        assert uvicorn_options(project)["timeout_graceful_shutdown"] == 10.0
    for bad in ("soon", "0s"):
        with pytest.raises(ConfigError, match="server.shutdown_timeout"):
            _project(served, shutdown_timeout=bad)
