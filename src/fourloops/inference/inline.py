"""Answering a lone request on the event loop: when it is worth it, and when it is not safe.

At low concurrency the costliest part of a quick prediction is not the model
but the round trips between threads: the event loop hands the request to a
worker thread, which hands the model call to a model thread (for its
deadline), and back. When a model has been answering quickly, a lone request
(nothing else in flight for the model) is answered right on the event loop,
model call included, like an ``async def`` endpoint would.

:class:`InlineGate` decides, per model service. The gate opens only:

* when every piece of I/O on the path is local and quick (a local event log
  without fsync, a local online store or none): never a network call on the loop;
* once it has seen :data:`PROOF_CALLS` lone answers, and while at most
  :data:`SLOW_ALLOWED` of the last :data:`PROOF_CALLS` took longer than
  ``max_seconds`` (``server.inline_max_ms``, 2 ms by default; 0 keeps it shut).

A few slow answers are allowed because a lone answer is timed by the wall
clock: on a busy machine the process is now and then descheduled in the
middle of a 100 µs answer, which says nothing about the model. One slow
answer too many shuts the gate for :data:`PAUSE_S` seconds, doubling while
answers stay slow (up to :data:`PAUSE_MAX_S`), and the proof starts again.
A model call made on the loop cannot be cut off at its deadline: if it
overruns, its late answer is replaced by the fallback (counted as a timeout,
as on a model thread) and the gate shuts at once (an answer slower than
``stall_seconds``, the model's deadline), so the requests after it go back to
the model threads, where the deadline holds.

>>> gate = InlineGate(0.002, capable=True, proof=3, slow_allowed=1)
>>> gate.open(), gate.record(0.001), gate.record(0.001), gate.record(0.5), gate.open()
(False, None, None, None, True)
>>> gate.record(0.5); gate.open()
False
"""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["PAUSE_MAX_S", "PAUSE_S", "PROOF_CALLS", "SLOW_ALLOWED", "InlineGate"]

#: Lone answers the gate judges (the last ones); it opens once it has seen this many.
PROOF_CALLS = 100
#: Of those, this many may have been slower than ``max_seconds`` (machine noise); one more shuts it.
SLOW_ALLOWED = 5
#: Seconds the gate stays shut after too many slow answers (doubling while they stay slow)...
PAUSE_S = 1.0
#: ...up to this long.
PAUSE_MAX_S = 300.0


class InlineGate:
    """Whether a lone request may be answered on the event loop now (see the module docstring)."""

    def __init__(
        self,
        max_seconds: float,
        *,
        capable: bool,
        proof: int = PROOF_CALLS,
        slow_allowed: int = SLOW_ALLOWED,
        stall_seconds: float | None = None,
    ) -> None:
        self.max_seconds = max_seconds
        self.capable = capable
        self.proof = proof
        self.slow_allowed = slow_allowed
        self.stall_seconds = stall_seconds
        self._recent: deque[bool] = deque(maxlen=max(1, proof))  # the last lone answers: True if slow
        self._slow = 0  # slow answers in _recent
        self._pause = 0.0
        self._shut_until = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"InlineGate(max_seconds={self.max_seconds}, capable={self.capable}, "
            f"slow_allowed={self.slow_allowed}/{self.proof}, open={self.open()})"
        )

    def open(self) -> bool:
        """True when the next lone request may be answered on the loop."""
        return (
            self.capable
            and self.max_seconds > 0
            and len(self._recent) >= self.proof
            and time.monotonic() >= self._shut_until
        )

    def record(self, seconds: float) -> None:
        """Tell the gate how long a lone answer took (on the loop or off it, from any thread)."""
        slow = seconds > self.max_seconds
        stalled = self.stall_seconds is not None and seconds > self.stall_seconds
        with self._lock:  # two batches may finish at once on worker threads
            recent = self._recent
            if len(recent) == recent.maxlen and recent[0]:
                self._slow -= 1  # the oldest leaves the window
            recent.append(slow)
            self._slow += slow
            if stalled or self._slow > self.slow_allowed:
                self._shut()
            elif len(recent) >= self.proof and not slow:
                self._pause = 0.0  # proven again: the next shut starts from the shortest pause

    def _shut(self) -> None:
        self._recent.clear()
        self._slow = 0
        self._pause = min(PAUSE_MAX_S, max(PAUSE_S, 2 * self._pause))
        self._shut_until = time.monotonic() + self._pause
