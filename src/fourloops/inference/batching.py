"""Adaptive micro-batching with group commit for concurrent single requests.

:class:`MicroBatcher` sits between the request handlers (asyncio) and a
synchronous ``run(jobs)`` function that answers a list of jobs in one
worker-thread call (for the server: :meth:`ModelService.predict_batch`, which
validates each job on its own, calls the model and appends the events of the
whole batch with one ``events.append``). A job's awaitable is only resolved
after ``run`` has returned, so no response is released before its event is
logged.

When a job is submitted:

* nothing is running and nothing is waiting -> it is flushed at once, alone
  (concurrency 1 pays no wait); when ``inline()`` says the work is quick and
  no jobs have overlapped for a second, ``run`` is called right there on the
  event loop, sparing the round trip to a worker thread (which costs more than
  a fast model call). A job on the loop keeps later requests from being read,
  so it would hide concurrency: one lone job in :data:`PROBE_EVERY` runs on a
  thread anyway, and a job that arrives while another runs switches the loop
  path off for :data:`BUSY_HOLD_S` (the jobs batch instead);
* otherwise it waits, and the waiting jobs are flushed together when
  ``max_batch`` of them are waiting, when ``max_wait`` has passed since the
  first of them arrived, or when a running batch finishes, whichever comes
  first; at most ``max_inflight`` batches run at the same time.

The wait queue is bounded (``max_queue`` jobs): beyond it :meth:`submit`
raises :class:`Overloaded` at once (the server answers 503) instead of queueing
without limit.

Example::

    batcher = MicroBatcher(lambda jobs: [j * 2 for j in jobs], max_batch=32, max_wait=0.002)
    assert await batcher.submit(21) == 42
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from fourloops.errors import FourloopsError

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_MAX_WAIT", "MicroBatcher", "Overloaded"]

#: Jobs flushed together at most.
DEFAULT_MAX_BATCH = 32
#: Seconds the first waiting job waits at most for others to join it.
DEFAULT_MAX_WAIT = 0.002
#: Batches running at the same time (one worker thread each).
DEFAULT_MAX_INFLIGHT = 2
#: The wait queue holds this many batches' worth of jobs per running batch.
QUEUE_BATCHES = 4
#: Every this many lone jobs one runs on a worker thread even when ``inline()`` allows the loop, so
#: that jobs arriving meanwhile show whether requests overlap (a job on the loop hides them).
PROBE_EVERY = 16
#: Seconds after overlapping jobs were seen during which no job runs on the loop (they batch).
BUSY_HOLD_S = 1.0

J = TypeVar("J")
R = TypeVar("R")


class Overloaded(FourloopsError):
    """The batcher's queue is full: the request is shed (answered 503), not queued."""


@dataclass
class _Waiting(Generic[J, R]):
    job: J
    future: asyncio.Future[R]


class MicroBatcher(Generic[J, R]):
    """Group concurrent jobs into batches answered by ``run`` in one worker-thread call.

    ``run(jobs)`` returns one result per job, in order; a result that is an
    exception is raised to that job's caller only. An exception raised by
    ``run`` itself fails every job of the batch. ``on_flush(size)`` is called
    on the event loop for every batch (for metrics).
    """

    def __init__(
        self,
        run: Callable[[list[J]], Sequence[R | BaseException]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = DEFAULT_MAX_WAIT,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        max_queue: int | None = None,
        on_flush: Callable[[int], None] | None = None,
        inline: Callable[[], bool] | None = None,
        inline_run: Callable[[list[J]], Sequence[R | BaseException]] | None = None,
    ) -> None:
        if max_batch < 1 or max_inflight < 1 or max_wait < 0:
            raise ValueError("max_batch and max_inflight must be >= 1 and max_wait >= 0")
        self.run = run
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_inflight = max_inflight
        self.max_queue = max_queue if max_queue is not None else QUEUE_BATCHES * max_batch * max_inflight
        if self.max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self.on_flush = on_flush
        self.inline = inline
        self.inline_run = inline_run or run
        self._waiting: list[_Waiting[J, R]] = []
        self._inflight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy_until = 0.0
        self._alone_jobs = 0

    def __repr__(self) -> str:
        return (
            f"MicroBatcher(max_batch={self.max_batch}, max_wait={self.max_wait}, "
            f"max_inflight={self.max_inflight}, max_queue={self.max_queue})"
        )

    @property
    def depth(self) -> int:
        """Jobs waiting to be flushed (not counting the running batches)."""
        return len(self._waiting)

    @property
    def inflight(self) -> int:
        """Batches running now."""
        return self._inflight

    async def submit(self, job: J) -> R:
        """The result of ``job``, answered in a batch with whatever else is waiting."""
        if len(self._waiting) >= self.max_queue:
            raise Overloaded(f"the prediction queue is full ({self.max_queue} waiting); try again")
        loop = asyncio.get_running_loop()
        if self._inflight == 0 and not self._waiting:
            return await self._alone(job, loop)
        self._busy_until = loop.time() + BUSY_HOLD_S  # jobs overlap: batch them, none on the loop
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append(_Waiting(job, future))
        if self._inflight == 0 or (
            len(self._waiting) >= self.max_batch and self._inflight < self.max_inflight
        ):
            self._flush(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait, self._expired, loop)
        return await future

    async def _alone(self, job: J, loop: asyncio.AbstractEventLoop) -> R:
        # Nothing running, nothing waiting: answer in the caller's own task, no queue and no wait.
        self._inflight += 1
        try:
            if self.on_flush is not None:
                self.on_flush(1)
            self._alone_jobs += 1
            if self._on_loop(loop):
                results = self.inline_run([job])  # quick work: on the loop, no hop to a thread and back
            else:
                results = await asyncio.to_thread(self.run, [job])
        finally:
            self._done(loop)
        if len(results) != 1:
            raise RuntimeError(f"run answered {len(results)} of 1 job")
        result = results[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _on_loop(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether this lone job may run on the loop: allowed, no overlap lately, not a probe."""
        if self.inline is None or loop.time() < self._busy_until:
            return False
        return self._alone_jobs % PROBE_EVERY != 0 and self.inline()

    def _done(self, loop: asyncio.AbstractEventLoop) -> None:
        self._inflight -= 1
        if self._waiting and self._inflight < self.max_inflight:
            self._flush(loop)  # they have waited for this batch already: no extra wait

    def _expired(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self._waiting and self._inflight < self.max_inflight:
            self._flush(loop)
        # else: the batch that finishes next takes the waiting jobs at once

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
        if self._timer is not None and not self._waiting:
            self._timer.cancel()
            self._timer = None
        elif self._waiting and self._timer is None:  # those left over still wait at most max_wait
            self._timer = loop.call_later(self.max_wait, self._expired, loop)
        self._inflight += 1
        task = loop.create_task(self._answer(batch, loop))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, batch: list[_Waiting[J, R]], loop: asyncio.AbstractEventLoop) -> None:
        try:
            if self.on_flush is not None:
                self.on_flush(len(batch))
            results = await asyncio.to_thread(self.run, [w.job for w in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"run answered {len(results)} of {len(batch)} jobs")
        except BaseException as err:  # the whole batch failed: every caller gets the error
            for w in batch:
                if not w.future.done():
                    w.future.set_exception(err)
            if not isinstance(err, Exception):
                raise
        else:
            for w, result in zip(batch, results, strict=True):
                if w.future.done():  # the caller went away; its prediction is logged anyway
                    continue
                if isinstance(result, BaseException):
                    w.future.set_exception(result)
                else:
                    w.future.set_result(result)
        finally:
            self._done(loop)
