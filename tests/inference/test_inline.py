"""Lone requests answered on the event loop: only when proven quick and local, never past the deadline."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fourloops.errors import StoreError
from fourloops.inference import batching, inline
from fourloops.inference.batching import MicroBatcher
from fourloops.inference.inline import PAUSE_S, PROOF_CALLS, InlineGate
from fourloops.project import Project
from fourloops.server import build_app
from trips import T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23)
ROW = {"station": "a", "load": 0.5, "rain": 1.0}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("inline") / "p")


def _project(root: Path, **server: str) -> Project:
    env = {f"FOURLOOPS_SERVER_{k.upper()}": v for k, v in server.items()}
    return Project.load(root, env=env, clock=lambda: NOW)


async def _predict(app: Any, n: int, prefix: str) -> list[httpx.Response]:
    """``n`` requests one after the other (each is alone in flight)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
        return [
            await client.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": f"{prefix}-{i}"})
            for i in range(n)
        ]


def _prove(service: Any, seconds: float = 0.0) -> None:
    """Open ``service``'s inline gate: the proof it asks for, every answer taking ``seconds``."""
    for _ in range(PROOF_CALLS):
        service.inline.record(seconds)


def _sample(app: Any, name: str) -> float:
    for family in app.state.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("model") == "late":
                return float(sample.value)
    raise AssertionError(f"no sample {name}")


def test_the_gate_needs_its_proof_and_shuts_when_slow_answers_are_too_many() -> None:
    gate = InlineGate(0.002, capable=True, proof=10, slow_allowed=2)
    for _ in range(9):
        gate.record(0.001)
    assert not gate.open()  # not proven yet
    gate.record(0.001)
    assert gate.open()
    gate.record(0.01)  # a slow answer now and then (a busy machine) is tolerated...
    gate.record(0.01)
    assert gate.open()
    gate.record(0.01)  # ...one too many in the last ten shuts the gate
    assert not gate.open()
    for _ in range(10):
        gate.record(0.001)
    assert not gate.open()  # proven again, but still in its pause
    assert not InlineGate(0.002, capable=False, proof=0).open()  # network I/O on the path
    assert not InlineGate(0.0, capable=True, proof=0).open()  # inline_max_ms = 0


def test_slow_answers_age_out_of_the_window() -> None:
    gate = InlineGate(0.002, capable=True, proof=10, slow_allowed=1)
    for _ in range(50):  # one slow answer in every ten: never two in the last ten
        for _ in range(9):
            gate.record(0.001)
        gate.record(0.01)
    assert gate.open()


def test_an_answer_past_the_stall_bound_shuts_the_gate_at_once() -> None:
    gate = InlineGate(0.002, capable=True, proof=10, slow_allowed=5, stall_seconds=0.05)
    for _ in range(10):
        gate.record(0.001)
    assert gate.open()
    gate.record(0.06)  # past the deadline: however few slow answers came before
    assert not gate.open()
    assert "slow_allowed=5/10" in repr(gate)


def test_the_pause_doubles_while_answers_stay_slow_and_resets_once_proven(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(inline.time, "monotonic", lambda: now[0])
    gate = InlineGate(0.002, capable=True, proof=4, slow_allowed=0)
    gate.record(0.01)
    assert gate._shut_until == 1000.0 + PAUSE_S
    gate.record(0.01)  # slow again before it was proven: twice the pause
    assert gate._shut_until == 1000.0 + 2 * PAUSE_S
    for _ in range(4):
        gate.record(0.001)
    now[0] += 10
    assert gate.open()
    gate.record(0.01)  # proven in between: back to the shortest pause
    assert gate._shut_until == now[0] + PAUSE_S


def test_the_batcher_answers_a_lone_job_on_the_loop_only_when_asked() -> None:
    threads: list[str] = []

    def run(jobs: list[int]) -> list[int]:
        threads.append(threading.current_thread().name)
        return [j * 2 for j in jobs]

    async def main(inline: bool) -> int:
        batcher = MicroBatcher(run, inline=lambda: inline)
        return await batcher.submit(21)

    assert asyncio.run(main(True)) == 42 and threads[-1] == threading.main_thread().name
    assert asyncio.run(main(False)) == 42 and threads[-1] != threading.main_thread().name


def test_a_quick_model_goes_inline_after_its_proof_and_answers_the_same(served: Path) -> None:
    # A generous bound, so that a busy test machine cannot break the proof streak.
    with _project(served, inline_max_ms="1000") as project:
        app = build_app(project)
        service = app.state.services["late"]
        assert service.inline.capable  # local event log, local online store
        seen: list[bool] = []
        original = service.predict_batch

        def spy(requests: Any, *, inline: bool = False) -> Any:
            if inline:
                seen.append(threading.current_thread() is threading.main_thread())
            return original(requests, inline=inline)

        service.predict_batch = spy
        responses = asyncio.run(_predict(app, PROOF_CALLS + 20, "q"))
        assert all(r.status_code == 200 for r in responses)
        assert 0 < len(seen) <= 20 and all(seen)  # only after the proof, on the loop's thread
        assert len({r.json()["prediction"] for r in responses}) == 1  # the same row, the same answer
        logged = {e["request_id"] for e in project.events(model="late").to_pylist()}
        assert {f"q-{i}" for i in range(PROOF_CALLS + 20)} <= logged  # every answer logged


def test_an_inline_call_past_the_deadline_is_answered_by_the_fallback_and_shuts_the_gate(
    served: Path,
) -> None:
    with _project(served, timeout_ms="50") as project:
        app = build_app(project)
        service = app.state.services["late"]
        _prove(service, 0.0001)
        assert service.can_answer_inline()
        predictor = service.state.predictors[1]
        original = predictor.predict_one

        def slow(row: Any) -> Any:
            time.sleep(0.2)
            return original(row)

        predictor.predict_one = slow
        try:
            [late] = asyncio.run(_predict(app, 1, "late"))
            assert not service.can_answer_inline()  # the next ones go to the model threads
            started = time.perf_counter()
            [next_one] = asyncio.run(_predict(app, 1, "next"))
            elapsed = time.perf_counter() - started
        finally:
            predictor.predict_one = original
        body = late.json()
        assert (body["fallback"], body["fallback_reason"], body["prediction"]) == ("constant", "timeout", 0.5)
        assert next_one.json()["fallback_reason"] == "timeout" and elapsed < 0.19  # cut at the deadline
        event = next(e for e in project.events(model="late").to_pylist() if e["request_id"] == "late-0")
        assert json.loads(event["extra"])["fallback_reason"] == "timeout"


def test_network_or_fsynced_io_keeps_requests_off_the_loop(served: Path) -> None:
    with _project(served) as project:
        service = build_app(project).state.services["late"]

        class Remote:
            local_appends = False

            def __getattr__(self, name: str) -> Any:
                return getattr(service.events, name)

        service.events = Remote()  # type: ignore[assignment]
        assert not service.inline.capable
    with Project.load(served, env={"FOURLOOPS_STORAGE_EVENTS_FSYNC": "true"}, clock=lambda: NOW) as project:
        assert not build_app(project).state.services["late"].inline.capable
    with _project(served, inline_max_ms="0") as project:
        service = build_app(project).state.services["late"]
        _prove(service)
        assert not service.can_answer_inline()


class Calls:
    """``run`` (on a worker thread) and ``inline_run`` (on the loop) of a batcher, counted apart."""

    def __init__(self) -> None:
        self.on_loop: list[int] = []
        self.on_thread: list[int] = []

    def run(self, jobs: list[int]) -> list[int]:
        assert threading.current_thread() is not threading.main_thread()
        self.on_thread.append(len(jobs))
        time.sleep(0.002)
        return jobs

    def inline_run(self, jobs: list[int]) -> list[int]:
        assert threading.current_thread() is threading.main_thread()
        self.on_loop.append(len(jobs))
        return jobs


def test_lone_jobs_run_on_the_loop_and_overlapping_ones_batch_on_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batching, "BUSY_HOLD_S", 3600.0)  # however slow the machine, still within it
    calls = Calls()

    async def main() -> None:
        batcher = MicroBatcher(calls.run, inline=lambda: True, inline_run=calls.inline_run, look_every=1)
        for i in range(40):  # one at a time: every one on the loop, none on a thread
            assert await batcher.submit(i) == i
        assert calls.on_loop == [1] * 40 and calls.on_thread == []
        calls.on_loop.clear()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(200)))  # 200 at once
        assert list(results) == list(range(200))
        # The first one looked before running on the loop, saw the others and batched with them.
        assert calls.on_loop == [] and sum(calls.on_thread) == 200 and max(calls.on_thread) > 1
        calls.on_thread.clear()
        assert await batcher.submit(7) == 7  # alone again, but within the hold after the crowd: a thread
        assert calls.on_loop == [] and calls.on_thread == [1]
        assert batcher.depth == 0 and batcher.inflight == 0

    asyncio.run(main())


def test_one_lone_job_in_look_every_looks_for_others() -> None:
    calls = Calls()

    async def main() -> None:
        batcher = MicroBatcher(calls.run, inline=lambda: True, inline_run=calls.inline_run, look_every=4)
        for i in range(6):  # the first looked and found none; the next ones do not look
            await batcher.submit(i)
        await asyncio.gather(*(batcher.submit(i) for i in range(50)))
        # Jobs 7 and 8 ran on the loop, one by one (the crowd waited behind each); the 9th looked.
        assert calls.on_loop == [1] * 8 and sum(calls.on_thread) == 48 and max(calls.on_thread) > 1

    asyncio.run(main())
    with pytest.raises(ValueError, match="look_every"):
        MicroBatcher(calls.run, look_every=0)


def test_a_job_cancelled_while_it_looks_leaves_no_job_behind() -> None:
    batches: list[list[int]] = []

    def run(jobs: list[int]) -> list[int]:
        batches.append(jobs)
        return jobs

    async def main() -> None:
        batcher = MicroBatcher(run, inline=lambda: True, max_wait=0.001)
        first = asyncio.ensure_future(batcher.submit(1))
        second = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)  # the first holds the batcher for its look; the second queues
        assert batcher.depth == 1
        first.cancel()
        assert await second == 2  # flushed at max_wait, though the one it waited behind left
        assert batches == [[2]] and batcher.inflight == 0

    asyncio.run(main())


def test_concurrent_requests_batch_once_the_gate_is_open_and_all_are_logged(served: Path) -> None:
    with _project(served) as project:
        app = build_app(project)
        service = app.state.services["late"]
        _prove(service)
        assert service.can_answer_inline()
        on_loop: list[int] = []
        original = service.predict_batch

        def spy(requests: Any, *, inline: bool = False) -> Any:  # reached from the loop path only
            on_loop.append(len(requests))
            return original(requests, inline=inline)

        service.predict_batch = spy

        async def together() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
                return list(
                    await asyncio.gather(
                        *(
                            client.post(
                                "/v1/models/late/predict", json={"inputs": ROW, "request_id": f"c-{i}"}
                            )
                            for i in range(40)
                        )
                    )
                )

        responses = asyncio.run(together())
        assert [r.status_code for r in responses] == [200] * 40
        assert on_loop == []  # none on the loop...
        flushes = _sample(app, "fourloops_micro_batch_size_count")
        assert _sample(app, "fourloops_micro_batch_size_sum") == 40 and flushes < 40  # ...they batched
        logged = {e["request_id"] for e in project.events(model="late").to_pylist()}
        assert {f"c-{i}" for i in range(40)} <= logged


def test_a_lone_request_on_the_loop_is_counted_and_never_acknowledged_unlogged(served: Path) -> None:
    with _project(served) as project:
        app = build_app(project)
        service = app.state.services["late"]
        _prove(service)
        inner = service.events
        on_loop: list[bool] = []

        class Broken:
            """The project's event store, its appends failing (a full disk) and noting their thread."""

            def append(self, events: Any) -> None:
                on_loop.append(threading.current_thread() is threading.main_thread())
                raise StoreError("No space left on device")

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        [ok] = asyncio.run(_predict(app, 1, "ok"))
        service.events = Broken()  # type: ignore[assignment]
        assert service.can_answer_inline()  # still local I/O
        [refused] = asyncio.run(_predict(app, 1, "down"))
        assert on_loop == [True]  # the failing append was made on the loop, before any answer
        assert ok.status_code == 200 and refused.status_code == 503
        assert "not acknowledged" in refused.json()["error"]["message"]
        logged = {e["request_id"] for e in project.events(model="late").to_pylist()}
        assert "ok-0" in logged and "down-0" not in logged
        assert _sample(app, "fourloops_event_log_failures_total") == 1
        assert _sample(app, "fourloops_micro_batch_size_count") == 2  # both counted, as batches of one
