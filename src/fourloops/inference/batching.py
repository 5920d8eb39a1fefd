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
  (concurrency 1 pays no wait). When ``inline()`` says the work is quick and
  no jobs have overlapped for a second, it is answered right there on the
  event loop (by ``inline_run``; ``run`` unless given), sparing the round trip
  to a worker thread (which costs more than a fast model call). A job on the
  loop keeps the requests behind it waiting until it is answered, and they
  would then run on the loop one by one, each alone, so the batcher looks for
  them: before the first lone job, and one in ``look_every`` after it, runs on
  the loop, the loop turns once with the batcher held, and the requests it has
  already read reach :meth:`submit` and queue. If any did, the jobs overlap:
  they are answered together on a worker thread, and the loop path stays off
  for :data:`BUSY_HOLD_S` (the jobs batch);
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
#: One lone job in this many (the first, then every this many) looks for others before it runs on the loop.
LOOK_EVERY = 16
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
        look_every: int = LOOK_EVERY,
    ) -> None:
        if max_batch < 1 or max_inflight < 1 or look_every < 1 or max_wait < 0:
            raise ValueError("max_batch, max_inflight and look_every must be >= 1 and max_wait >= 0")
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
        self.look_every = look_every
        self._waiting: list[_Waiting[J, R]] = []
        self._inflight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy_until = 0.0
        self._lone = 0  # lone jobs that could run on the loop (the first, then one in look_every, look)

    def __repr__(self) -> str:
        return (
            f"MicroBatcher(max_batch={self.max_batch}, max_wait={self.max_wait}, "
            f"max_inflight={self.max_inflight}, max_queue={self.max_queue}, look_every={self.look_every})"
        )

    @property
    def depth(self) -> int:
        """Jobs waiting to be flushed (not counting the running batches)."""
        return len(self._waiting)

    @property
    def inflight(self) -> int:
        """Batches running now (a lone job looking for others holds one place while it looks)."""
        return self._inflight

    async def submit(self, job: J) -> R:
        """The result of ``job``, answered in a batch with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        if self._inflight == 0 and not self._waiting:
            if not self._on_loop(loop):
                return await self._alone(job, loop)
            self._lone += 1
            if (self._lone - 1) % self.look_every or await self._still_alone():
                return self._inline(job)
        if len(self._waiting) >= self.max_queue:
            raise Overloaded(f"the prediction queue is full ({self.max_queue} waiting); try again")
        self._busy_until = loop.time() + BUSY_HOLD_S  # jobs overlap: batch them, none on the loop
        self._lone = 0  # the first lone job after the hold looks again
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
            results = await asyncio.to_thread(self.run, [job])
        finally:
            self._done(loop)
        return _only(results)

    def _on_loop(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether a lone job may run on the loop: allowed, and no overlap lately."""
        return self.inline is not None and loop.time() >= self._busy_until and self.inline()

    async def _still_alone(self) -> bool:
        """Let the loop turn once with the batcher held: True if no job was submitted meanwhile.

        The turn runs the handlers of the requests the loop has already read
        up to :meth:`submit`, where they queue behind the held batcher (the
        caller flushes them with its own job, or ``max_wait`` does if it is
        cancelled).
        """
        self._inflight += 1
        try:
            await asyncio.sleep(0)
        finally:
            self._inflight -= 1
        return self._inflight == 0 and not self._waiting

    def _inline(self, job: J) -> R:
        """Answer a lone job right here on the loop (nothing else can start while it runs)."""
        if self.on_flush is not None:
            self.on_flush(1)
        return _only(self.inline_run([job]))

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


def _only(results: Sequence[R | BaseException]) -> R:
    """The result of a batch of one job (raised if it is an error)."""
    if len(results) != 1:
        raise RuntimeError(f"run answered {len(results)} of 1 job")
    result = results[0]
    if isinstance(result, BaseException):
        raise result
    return result
