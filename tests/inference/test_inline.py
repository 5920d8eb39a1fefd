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

from fourloops.inference.batching import MicroBatcher
from fourloops.inference.inline import PROOF_CALLS, InlineGate
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


def test_the_gate_needs_a_streak_of_quick_answers_and_shuts_on_a_slow_one() -> None:
    gate = InlineGate(0.002, capable=True, proof=3)
    for _ in range(2):
        gate.record(0.001)
    assert not gate.open()
    gate.record(0.001)
    assert gate.open()
    gate.record(0.01)  # one slow answer
    assert not gate.open()
    assert not InlineGate(0.002, capable=False, proof=0).open()  # network I/O on the path
    assert not InlineGate(0.0, capable=True, proof=0).open()  # inline_max_ms = 0


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
        for _ in range(PROOF_CALLS):
            service.inline.record(0.0001)
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
        for _ in range(PROOF_CALLS):
            service.inline.record(0.0)
        assert not service.can_answer_inline()


def test_overlapping_jobs_switch_the_loop_path_off_so_they_batch() -> None:
    inline_calls: list[int] = []
    thread_calls: list[int] = []

    def run(jobs: list[int]) -> list[int]:
        thread_calls.append(len(jobs))
        time.sleep(0.002)
        return jobs

    def on_loop(jobs: list[int]) -> list[int]:
        inline_calls.append(len(jobs))
        return jobs

    async def main() -> None:
        batcher = MicroBatcher(run, inline=lambda: True, inline_run=on_loop, max_wait=0.001)
        for i in range(40):  # one at a time: on the loop, but for the probes
            await batcher.submit(i)
        assert len(inline_calls) == 40 - 40 // 16 and len(thread_calls) == 40 // 16
        inline_calls.clear()
        thread_calls.clear()
        await asyncio.gather(*(batcher.submit(i) for i in range(200)))  # 200 at once
        assert max(thread_calls) > 1  # they were batched
        assert len(inline_calls) <= 15  # at most the lone ones before the first probe saw the crowd

    asyncio.run(main())
