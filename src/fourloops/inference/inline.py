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
* after :data:`PROOF_CALLS` lone answers in a row each took at most
  ``max_seconds`` (``server.inline_max_ms``, 2 ms by default; 0 keeps it shut).

One slower answer shuts it for :data:`PAUSE_S` seconds, doubling while
answers stay slow (up to :data:`PAUSE_MAX_S`), and the proof starts again.
A model call made on the loop cannot be cut off at its deadline: if it
overruns, its late answer is replaced by the fallback (counted as a timeout,
as on a model thread) and the gate shuts, so the requests after it go back
to the model threads, where the deadline holds.

>>> gate = InlineGate(0.002, capable=True, proof=2)
>>> gate.open(), gate.record(0.001), gate.record(0.001), gate.open()
(False, None, None, True)
>>> gate.record(0.5); gate.open()
False
"""

from __future__ import annotations

import time

__all__ = ["PAUSE_MAX_S", "PAUSE_S", "PROOF_CALLS", "InlineGate"]

#: Quick lone answers in a row before the gate opens.
PROOF_CALLS = 100
#: Seconds the gate stays shut after a slow answer (doubling while they stay slow)...
PAUSE_S = 1.0
#: ...up to this long.
PAUSE_MAX_S = 300.0


class InlineGate:
    """Whether a lone request may be answered on the event loop now (see the module docstring)."""

    def __init__(self, max_seconds: float, *, capable: bool, proof: int = PROOF_CALLS) -> None:
        self.max_seconds = max_seconds
        self.capable = capable
        self.proof = proof
        self._streak = 0
        self._pause = 0.0
        self._shut_until = 0.0

    def __repr__(self) -> str:
        return f"InlineGate(max_seconds={self.max_seconds}, capable={self.capable}, open={self.open()})"

    def open(self) -> bool:
        """True when the next lone request may be answered on the loop."""
        return (
            self.capable
            and self.max_seconds > 0
            and self._streak >= self.proof
            and time.monotonic() >= self._shut_until
        )

    def record(self, seconds: float) -> None:
        """Tell the gate how long a lone answer took (on the loop or off it)."""
        if seconds <= self.max_seconds:
            self._streak += 1
            if self._streak >= self.proof:
                self._pause = 0.0
            return
        self._streak = 0
        self._pause = min(PAUSE_MAX_S, max(PAUSE_S, 2 * self._pause))
        self._shut_until = time.monotonic() + self._pause
