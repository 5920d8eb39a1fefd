"""Calling the model under protection: a deadline, the circuit breaker and the prediction cache.

:class:`ModelCaller` answers a batch of ``(version, row)`` jobs with one
:class:`Outcome` each: the model's output, or why there is none (``timeout``,
``error``, ``circuit_open``) so that the caller's fallback answers instead.

A Python call cannot be interrupted, so the deadline works by handing the
batch to a small pool of model threads and waiting for it at most
``timeout`` seconds. Rows answered in time keep their answers; the others
time out. A call that hangs keeps its thread busy until it returns; when every
model thread is stuck, new batches wait in the pool's queue, time out and are
withdrawn, so a hung model costs its deadline per request and never piles up
work. After ``failure_threshold`` consecutive failures (timeouts count) the
circuit breaker opens and the model is not called at all until it probes.
The model threads are daemon threads: a hung model never blocks shutdown.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from fourloops.inference.cache import PredictionCache
from fourloops.inference.circuit import CircuitBreaker

__all__ = ["ModelCaller", "Outcome", "finite_or_none"]

log = logging.getLogger("fourloops.server")

#: Model threads per served model (batches called at the same time, stuck calls included).
DEFAULT_MODEL_THREADS = 4

TIMEOUT = "timeout"
ERROR = "error"
CIRCUIT_OPEN = "circuit_open"


def finite_or_none(value: Any) -> Any:
    """``value``, with a non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class Outcome:
    """The model's answer for one job, or the reason it has none (``failure``)."""

    output: Any = None
    failure: str | None = None  # None, "timeout", "error" or "circuit_open"
    seconds: float = 0.0  # time spent in the model for this row
    cached: bool = False


class _DaemonPool:
    """Run callables on ``size`` daemon threads; each call returns a Future."""

    def __init__(self, size: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(size)
        ]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, fn))
        return future

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            future, fn = item
            if not future.set_running_or_notify_cancel():
                continue  # withdrawn after its deadline passed while it waited
            try:
                future.set_result(fn())
            except BaseException as err:  # handed to the waiter, never lost in the thread
                future.set_exception(err)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


class ModelCaller:
    """Answer ``(version, row)`` jobs with loaded predictors, under a deadline, a breaker and a cache.

    ``timeout`` is in seconds (None: call in the caller's thread, no deadline).
    ``counters(name, n)`` is told about timeouts, errors, circuit refusals and
    cache hits.
    """

    def __init__(
        self,
        name: str,
        *,
        breaker: CircuitBreaker | None = None,
        timeout: float | None = None,
        cache: PredictionCache | None = None,
        threads: int = DEFAULT_MODEL_THREADS,
        count: Callable[[str, int], None] | None = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"model timeout must be > 0 seconds, got {timeout}")
        self.name = name
        self.breaker = breaker or CircuitBreaker()
        self.timeout = timeout
        self.cache = cache
        self._count = count or (lambda _name, _n: None)
        self._pool = _DaemonPool(threads, f"fourloops-model-{name}") if timeout is not None else None

    def __repr__(self) -> str:
        return f"ModelCaller({self.name!r}, timeout={self.timeout}, cache={self.cache!r})"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def call(
        self,
        predictors: Mapping[int, Any],
        jobs: Sequence[tuple[int, Mapping[str, Any]]],
        *,
        direct: bool = False,
    ) -> list[Outcome]:
        """One outcome per job, in order.

        ``direct`` calls the model on this thread (the event loop, for a lone
        request to a proven-quick model): the call cannot be cut off, but an
        answer that comes back past the deadline is replaced by a timeout, so
        the fallback answers as it would have on a model thread.
        """
        outcomes: list[Outcome | None] = [None] * len(jobs)
        todo: list[int] = []
        keys: dict[int, Any] = {}
        for i, (version, row) in enumerate(jobs):
            if self.cache is not None:
                key = self.cache.key(version, row, getattr(predictors[version], "feature_names", None))
                if key is not None:
                    hit, output = self.cache.get(key)
                    if hit:
                        outcomes[i] = Outcome(output, cached=True)
                        continue
                    keys[i] = key
            if not self.breaker.allow():
                outcomes[i] = Outcome(failure=CIRCUIT_OPEN)
                continue
            todo.append(i)
        if todo:
            self._call_model(predictors, jobs, todo, outcomes, direct=direct)
        done: list[Outcome] = []
        for i, outcome in enumerate(outcomes):
            assert outcome is not None
            done.append(outcome)
            if outcome.failure is None and not outcome.cached and i in keys:
                assert self.cache is not None
                self.cache.put(keys[i], outcome.output)
        hits = sum(o.cached for o in done)
        if hits:
            self._count("cache_hits", hits)
        refused = sum(o.failure == CIRCUIT_OPEN for o in done)
        if refused:
            self._count("circuit_refusals", refused)
        return done

    def _call_model(
        self,
        predictors: Mapping[int, Any],
        jobs: Sequence[tuple[int, Mapping[str, Any]]],
        todo: list[int],
        outcomes: list[Outcome | None],
        *,
        direct: bool = False,
    ) -> None:
        answers: list[Outcome | None] = [None] * len(todo)

        def run() -> None:
            for slot, i in enumerate(todo):
                version, row = jobs[i]
                started = time.perf_counter()
                try:
                    output = finite_or_none(predictors[version].predict_one(row))
                    answers[slot] = Outcome(output, seconds=time.perf_counter() - started)
                except Exception as err:  # the model failed on valid input: the fallback answers
                    answers[slot] = Outcome(failure=ERROR, seconds=time.perf_counter() - started)
                    log.warning(
                        "model %s v%s failed: %s: %s",
                        self.name,
                        version,
                        type(err).__name__,
                        err,
                        extra={"model": self.name, "version": version, "failure": ERROR},
                    )

        if self._pool is None:
            run()
        elif direct:
            started = time.perf_counter()
            run()
            if time.perf_counter() - started > (self.timeout or math.inf):
                answers = [None] * len(todo)  # too late: answered as a timeout, like on a model thread
        else:
            future = self._pool.submit(run)
            try:
                future.result(timeout=self.timeout)
            except FutureTimeout:
                future.cancel()  # withdrawn if it never started; a running call finishes on its own
        # Read each slot once: an answer that lands after this read is ignored.
        timed_out = 0
        for slot, i in enumerate(todo):
            answer = answers[slot]
            if answer is None:
                answer = Outcome(failure=TIMEOUT, seconds=self.timeout or 0.0)
                timed_out += 1
            elif answer.failure is None:
                self.breaker.record_success()
            else:
                self.breaker.record_failure()
                self._count("model_errors", 1)
            outcomes[i] = answer
        if timed_out:
            self.breaker.record_failure()  # one stall is one failure, however many rows it held
            self._count("timeouts", timed_out)
            log.warning(
                "model %s: %d rows past the %.0f ms deadline",
                self.name,
                timed_out,
                (self.timeout or 0) * 1000,
                extra={"model": self.name, "failure": TIMEOUT, "rows": timed_out},
            )
