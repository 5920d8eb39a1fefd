"""Adaptive micro-batching: the batcher on its own, then through the ASGI app with a real project."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from fourloops.errors import ContractViolation
from fourloops.inference.app import ServerSettings, create_app
from fourloops.inference.batching import MicroBatcher, Overloaded
from fourloops.project import Project
from fourloops.server import build_app
from trips import T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23, minutes=30)

# -- the batcher alone --------------------------------------------------------------------------


class Recorder:
    """``run`` for a batcher: doubles numbers, fails on negative ones, remembers the batches."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    def __call__(self, jobs: list[int]) -> list[int | BaseException]:
        self.batches.append(list(jobs))
        time.sleep(self.delay)
        return [ValueError(f"negative {j}") if j < 0 else 2 * j for j in jobs]


def test_a_lone_job_is_flushed_at_once_without_waiting() -> None:
    run = Recorder()
    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_wait=10.0)

    async def main() -> tuple[int, float]:
        started = time.perf_counter()
        result = await batcher.submit(21)
        return result, time.perf_counter() - started

    result, elapsed = asyncio.run(main())
    assert result == 42 and run.batches == [[21]]
    assert elapsed < 1.0  # it did not wait for max_wait (10 s)


def test_overlapping_jobs_are_grouped_up_to_max_batch() -> None:
    run = Recorder(delay=0.05)
    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=8, max_wait=10.0, max_inflight=1)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(20))))

    assert asyncio.run(main()) == [2 * i for i in range(20)]
    assert run.batches[0] == [0]  # nothing was running: flushed alone, at once
    assert [len(b) for b in run.batches] == [1, 8, 8, 3]
    assert sorted(j for b in run.batches for j in b) == list(range(20))
    assert batcher.depth == 0 and batcher.inflight == 0


def test_max_wait_flushes_a_second_batch_while_one_runs() -> None:
    run = Recorder(delay=0.3)
    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=32, max_wait=0.01, max_inflight=2)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0)
        second = asyncio.gather(batcher.submit(2), batcher.submit(3))
        await asyncio.sleep(0.1)  # the first batch still runs; max_wait has passed for the others
        assert run.batches == [[1], [2, 3]]
        await first
        await second

    asyncio.run(main())


def test_errors_reach_only_their_own_job() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(Recorder(delay=0.02), max_inflight=1)

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(batcher.submit(i) for i in (1, 2, -3, 4)), return_exceptions=True))

    results = asyncio.run(main())
    assert results[:2] == [2, 4] and results[3] == 8
    assert isinstance(results[2], ValueError)


def test_a_failing_run_fails_every_job_of_its_batch() -> None:
    def run(jobs: list[int]) -> list[int]:
        raise OSError("disk full")

    batcher: MicroBatcher[int, int] = MicroBatcher(run)

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True))

    assert all(isinstance(r, OSError) for r in asyncio.run(main()))
    assert batcher.inflight == 0


def test_a_full_queue_sheds_instead_of_queueing() -> None:
    release = threading.Event()

    def run(jobs: list[int]) -> list[int]:
        release.wait(5)
        return jobs

    batcher: MicroBatcher[int, int] = MicroBatcher(
        run, max_batch=4, max_wait=10.0, max_inflight=1, max_queue=3
    )

    async def main() -> list[Any]:
        running = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0)  # flushed alone; the next ones wait behind it
        waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        assert batcher.depth == 3
        with pytest.raises(Overloaded):
            await batcher.submit(4)
        release.set()
        return [await running, *[await w for w in waiting]]

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch=0)
    assert "max_batch=32" in repr(MicroBatcher(Recorder()))


# -- through the server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batching") / "p"
    return prepare_project(root)


@pytest.fixture
def project(served: Path) -> Iterator[Project]:
    with Project.load(served, env={}, clock=lambda: NOW) as p:
        yield p


def _app(project: Project, **settings: Any) -> Starlette:
    """The server app over the project's services, with these server settings."""
    services = build_app(project).state.services
    events = services["late"].events
    return create_app(services, events=events, registry=project.registry, settings=ServerSettings(**settings))


def _post_all(app: Starlette, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return list(
                await asyncio.gather(*(client.post("/v1/models/late/predict", json=b) for b in bodies))
            )

    return asyncio.run(main())


def _logged(project: Project) -> dict[str, dict[str, Any]]:
    store = project.open_event_store()
    try:
        return {e["request_id"]: e for e in store.scan(model="late").to_pylist()}
    finally:
        store.close()


def _sample(metrics: Any, name: str, **labels: str) -> float:
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


def _inputs(i: int) -> dict[str, Any]:
    inputs: dict[str, Any] = {"station": "abc"[i % 3], "load": (i % 10) / 10}
    if i % 2:
        inputs["rain"] = float(i % 5)  # the others read rain from the online store
    return inputs


def test_concurrent_requests_are_batched_answered_and_logged(project: Project) -> None:
    app = _app(project, batch_max_wait=0.005)
    bodies = [{"inputs": _inputs(i), "request_id": f"b-{i}"} for i in range(50)]
    bodies[25] = {"inputs": {"station": "z", "load": 0.5}, "request_id": "b-bad"}
    responses = _post_all(app, bodies)

    bad = responses[25]
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["violations"] == [{"field": "station", "rule": "category"}]
    service = app.state.services["late"]
    for i, r in enumerate(responses):
        if i == 25:
            continue
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["request_id"] == f"b-{i}" and body["version"] == 1
        [expected], _ = service.predict([_inputs(i)], request_id=f"ref-{i}")  # unbatched
        assert body["prediction"] == expected.prediction

    logged = _logged(project)
    assert all(f"b-{i}" in logged for i in range(50) if i != 25)
    assert "b-bad" not in logged
    metrics = app.state.metrics
    batches = _sample(metrics, "fourloops_micro_batch_size_count", model="late")
    alone = _sample(metrics, "fourloops_micro_batch_size_bucket", model="late", le="1.0")
    assert _sample(metrics, "fourloops_micro_batch_size_sum", model="late") == 50
    assert batches < 50 and alone < batches  # some batches held more than one request
    assert _sample(metrics, "fourloops_queue_depth", model="late") == 0


def test_a_lone_request_does_not_wait_for_max_wait(project: Project) -> None:
    # A max_wait far above any scheduling noise: a request that waited for it takes 5 s, one that
    # did not takes milliseconds (with 0.5 s, a busy CI machine once took 0.31 s without waiting).
    app = _app(project, batch_max_wait=5.0)
    _post_all(app, [{"inputs": _inputs(1)}])  # warm up

    async def one() -> tuple[int, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            started = time.perf_counter()
            r = await client.post("/v1/models/late/predict", json={"inputs": _inputs(2)})
            return r.status_code, time.perf_counter() - started

    status, elapsed = asyncio.run(one())
    assert status == 200
    assert elapsed < 2.5, f"a lone request took {elapsed:.3f}s: it waited for max_wait (5 s)"


def test_too_many_pending_requests_answer_503_and_are_counted(project: Project) -> None:
    app = _app(project, batch_max_size=2, batch_max_wait=1.0, max_pending=3)
    responses = _post_all(app, [{"inputs": _inputs(i), "request_id": f"s-{i}"} for i in range(30)])

    statuses = [r.status_code for r in responses]
    shed = [r for r in responses if r.status_code == 503]
    assert set(statuses) == {200, 503} and shed
    assert all(r.json()["error"]["type"] == "overloaded" for r in shed)
    assert _sample(app.state.metrics, "fourloops_shed_total", model="late") == len(shed)
    logged = _logged(project)
    acked = [r.json()["request_id"] for r in responses if r.status_code == 200]
    assert all(rid in logged for rid in acked)


def test_batching_off_answers_the_same(project: Project) -> None:
    app = _app(project, batching=False)
    responses = _post_all(app, [{"inputs": _inputs(i), "request_id": f"o-{i}"} for i in range(10)])
    assert [r.status_code for r in responses] == [200] * 10
    with pytest.raises(AssertionError):
        _sample(app.state.metrics, "fourloops_micro_batch_size_count", model="late")


def test_predict_batch_keeps_each_requests_error_to_itself(project: Project) -> None:
    from fourloops.inference.service import BatchRequest

    service = build_app(project).state.services["late"]
    results = service.predict_batch(
        [
            BatchRequest([_inputs(1)], "pb-1"),
            BatchRequest([{"station": "a"}], "pb-2"),
            BatchRequest([_inputs(3), _inputs(4)], "pb-3", ["u1", "u2"]),
        ]
    )
    first, second, third = results
    assert not isinstance(first, Exception) and first[0][0].request_id == "pb-1"
    assert isinstance(second, ContractViolation) and second.violations == {"load": "missing"}
    assert not isinstance(third, Exception) and [p.request_id for p in third[0]] == ["pb-3-0", "pb-3-1"]


def test_batching_is_configured_in_the_server_section(tmp_path: Path) -> None:
    from fourloops.config import load_config
    from fourloops.errors import ConfigError

    (tmp_path / "fourloops.toml").write_text(
        '[project]\nname = "x"\n[server]\nbatching = false\nbatch_max_size = 8\nbatch_max_wait_ms = 5\n'
    )
    cfg = load_config(tmp_path, env={}).server
    assert (cfg.batching, cfg.batch_max_size, cfg.batch_max_wait_ms) == (False, 8, 5)
    assert load_config(tmp_path, env={"FOURLOOPS_SERVER_BATCHING": "true"}).server.batching is True
    with pytest.raises(ConfigError, match="true or false"):
        load_config(tmp_path, env={"FOURLOOPS_SERVER_BATCHING": "maybe"})
