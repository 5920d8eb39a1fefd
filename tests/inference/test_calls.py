"""The protected model call (deadline, breaker, cache) and the prediction cache, without a server."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops.inference.cache import PredictionCache
from fourloops.inference.calls import ModelCaller
from fourloops.inference.circuit import CircuitBreaker, CircuitState


class FakeModel:
    """Answers ``x * 2``; blocks on rows with ``block`` until released; raises on ``fail``."""

    feature_names = ["x"]

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.threads: set[str] = set()

    def predict_one(self, row: Mapping[str, Any]) -> float:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if row.get("block"):
            self.release.wait(30)
        if row.get("fail"):
            raise RuntimeError("boom")
        return float(row["x"]) * 2


@pytest.fixture
def model() -> Iterator[FakeModel]:
    m = FakeModel()
    yield m
    m.release.set()  # let any stuck model thread finish


def test_without_a_deadline_the_model_is_called_in_the_callers_thread(model: FakeModel) -> None:
    caller = ModelCaller("m")
    out = caller.call({1: model}, [(1, {"x": 1}), (1, {"x": 2, "fail": True}), (1, {"x": 3})])
    assert [o.output for o in out] == [2.0, None, 6.0]
    assert [o.failure for o in out] == [None, "error", None]
    assert model.threads == {threading.current_thread().name}


def test_with_a_deadline_the_model_runs_on_a_model_thread(model: FakeModel) -> None:
    caller = ModelCaller("m", timeout=5)
    assert caller.call({1: model}, [(1, {"x": 1})])[0].output == 2.0
    [thread] = model.threads
    assert thread.startswith("fourloops-model-m-") and thread != threading.current_thread().name
    caller.close()


def test_a_stuck_model_times_out_and_rows_answered_in_time_keep_their_answers(model: FakeModel) -> None:
    counts: dict[str, int] = {}
    caller = ModelCaller("m", timeout=0.2, count=lambda k, n: counts.__setitem__(k, counts.get(k, 0) + n))
    jobs = [(1, {"x": 1}), (1, {"x": 2, "block": True}), (1, {"x": 3})]
    out = caller.call({1: model}, jobs)  # would wait 30 s without the deadline
    assert out[0].output == 2.0 and out[0].failure is None
    assert [o.failure for o in out[1:]] == ["timeout", "timeout"]
    assert counts == {"timeouts": 2}
    assert caller.breaker.failures == 1  # one stall is one failure
    caller.close()


def test_work_queued_behind_stuck_calls_is_withdrawn_after_its_deadline(model: FakeModel) -> None:
    caller = ModelCaller("m", timeout=0.1, threads=1, breaker=CircuitBreaker(failure_threshold=100))
    assert caller.call({1: model}, [(1, {"x": 1, "block": True})])[0].failure == "timeout"
    calls_before = model.calls
    # The only model thread is stuck: this batch waits in the queue, times out, and is withdrawn.
    assert caller.call({1: model}, [(1, {"x": 5})])[0].failure == "timeout"
    model.release.set()
    # Once the thread is free again, the model answers; the withdrawn batch was never run.
    assert caller.call({1: model}, [(1, {"x": 7})])[0].output == 14.0
    assert model.calls == calls_before + 1
    caller.close()


def test_repeated_timeouts_open_the_circuit_and_the_model_is_not_called(model: FakeModel) -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=60)
    caller = ModelCaller("m", timeout=0.05, breaker=breaker)
    for _ in range(2):
        assert caller.call({1: model}, [(1, {"x": 1, "block": True})])[0].failure == "timeout"
    assert breaker.state is CircuitState.OPEN
    calls = model.calls
    assert caller.call({1: model}, [(1, {"x": 1})])[0].failure == "circuit_open"
    assert model.calls == calls
    caller.close()


def test_the_cache_answers_repeated_vectors_per_version(model: FakeModel) -> None:
    now = [0.0]
    cache = PredictionCache(ttl=10, clock=lambda: now[0])
    caller = ModelCaller("m", cache=cache)
    first = caller.call({1: model, 2: model}, [(1, {"x": 1, "ignored": "a"}), (2, {"x": 1})])
    assert [o.cached for o in first] == [False, False] and model.calls == 2
    again = caller.call({1: model, 2: model}, [(1, {"x": 1, "ignored": "b"}), (1, {"x": 2})])
    # Same vector for the features the model reads (x), same version: a hit; a new x: a miss.
    assert [o.cached for o in again] == [True, False] and again[0].output == 2.0
    assert model.calls == 3
    now[0] = 11.0
    assert caller.call({1: model}, [(1, {"x": 1})])[0].cached is False  # expired


def test_failures_are_not_cached(model: FakeModel) -> None:
    caller = ModelCaller("m", cache=PredictionCache(ttl=10))
    assert caller.call({1: model}, [(1, {"x": 1, "fail": True})])[0].failure == "error"
    assert caller.call({1: model}, [(1, {"x": 1, "fail": True})])[0].failure == "error"
    assert model.calls == 2


def test_cache_evicts_the_least_recently_used_and_skips_unhashable_values() -> None:
    cache = PredictionCache(ttl=60, max_entries=2)
    a, b, c = (PredictionCache.key(1, {"x": v}, ["x"]) for v in (1, 2, 3))
    cache.put(a, "A")
    cache.put(b, "B")
    assert cache.get(a) == (True, "A")  # a is now the most recently used
    cache.put(c, "C")
    assert cache.get(b) == (False, None) and cache.get(a) == (True, "A") and len(cache) == 2
    assert PredictionCache.key(1, {"x": [1, 2]}, ["x"]) is None
    with pytest.raises(ValueError, match="ttl"):
        PredictionCache(ttl=0)
    with pytest.raises(ValueError, match="timeout"):
        ModelCaller("m", timeout=0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4)), max_size=60), st.integers(1, 4))
def test_cache_matches_a_brute_force_lru(ops: list[tuple[int, int]], capacity: int) -> None:
    """Hits and evictions agree with a list-based LRU (no expiry: the clock stands still)."""
    cache = PredictionCache(ttl=1, max_entries=capacity, clock=lambda: 0.0)
    order: list[int] = []  # least recently used first
    for op, x in ops:
        key = PredictionCache.key(1, {"x": x}, ["x"])
        if op < 3:  # get
            hit, value = cache.get(key)
            assert hit == (x in order)
            if hit:
                assert value == x
                order.remove(x)
                order.append(x)
        else:  # put
            cache.put(key, x)
            if x in order:
                order.remove(x)
            order.append(x)
            order = order[-capacity:]
    assert len(cache) == len(order)


def test_doctests() -> None:
    import doctest

    import fourloops.inference.cache

    assert doctest.testmod(fourloops.inference.cache).failed == 0
