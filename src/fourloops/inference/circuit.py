"""A circuit breaker: stop calling a model that keeps failing, probe it later.

::

    CLOSED --failure_threshold consecutive failures--> OPEN
    OPEN --reset_timeout elapsed--> HALF_OPEN (admits half_open_max_calls probes)
    HALF_OPEN --a probe succeeds--> CLOSED
    HALF_OPEN --a probe fails--> OPEN (the timeout starts again)

Failures are counted **consecutively**: a success resets the count. Unlike a
count over a time window, this does not depend on traffic volume (at a
thousand requests a second, five stray errors in 30 s would open a
window-based breaker on a healthy model), and it needs no memory of past
calls. A model failing every other call keeps the circuit closed; the
fallback and error metrics are what show that.

While open, :meth:`CircuitBreaker.allow` answers ``False`` and the caller
uses its fallback. Probes that never report back would hold the half-open
circuit forever, so once more than another ``reset_timeout`` passed without a
result the probe slots are handed out again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["CircuitBreaker", "CircuitState"]


class CircuitState(StrEnum):
    """Where a :class:`CircuitBreaker` is in its cycle."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; thread-safe.

    ``reset_timeout`` is the seconds the circuit stays open before it
    half-opens and lets ``half_open_max_calls`` probe calls through.
    ``clock`` returns seconds (monotonic); tests pass a fake one.
    ``opened_total`` and ``rejected_total`` count openings and calls refused.

    >>> now = [0.0]
    >>> breaker = CircuitBreaker(failure_threshold=2, reset_timeout=10.0, clock=lambda: now[0])
    >>> breaker.record_failure(); breaker.record_failure()
    >>> breaker.state, breaker.allow()
    (<CircuitState.OPEN: 'open'>, False)
    >>> now[0] = 10.0
    >>> breaker.allow(), breaker.allow()
    (True, False)
    >>> breaker.record_success()
    >>> breaker.state
    <CircuitState.CLOSED: 'closed'>
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 10.0,
        half_open_max_calls: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _positive_int(failure_threshold):
            raise ValueError(f"failure_threshold must be a positive integer, got {failure_threshold!r}")
        if not (math.isfinite(reset_timeout) and reset_timeout >= 0):
            raise ValueError(f"reset_timeout must be a non-negative number of seconds, got {reset_timeout!r}")
        if not _positive_int(half_open_max_calls):
            raise ValueError(f"half_open_max_calls must be a positive integer, got {half_open_max_calls!r}")
        self.failure_threshold = failure_threshold
        self.reset_timeout = float(reset_timeout)
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0  # consecutive, while closed
        self._changed_at = clock()  # when the circuit last opened or half-opened
        self._probes = 0  # probes admitted in the current half-open period
        self.opened_total = 0
        self.rejected_total = 0

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(failure_threshold={self.failure_threshold!r}, "
            f"reset_timeout={self.reset_timeout!r}, half_open_max_calls={self.half_open_max_calls!r})"
        )

    @property
    def state(self) -> CircuitState:
        """The current state; an open circuit whose timeout elapsed reads as half-open."""
        with self._lock:
            self._advance(self._clock())
            return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def allow(self) -> bool:
        """Whether a call may go to the model now; a ``True`` in half-open state is a probe.

        Every allowed call should end in :meth:`record_success` or
        :meth:`record_failure`.
        """
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._state is CircuitState.CLOSED:
                return True
            if self._state is CircuitState.HALF_OPEN:
                if self._probes >= self.half_open_max_calls and now - self._changed_at > self.reset_timeout:
                    # The probes never reported back: hand the slots out again.
                    self._changed_at, self._probes = now, 0
                if self._probes < self.half_open_max_calls:
                    self._probes += 1
                    return True
            self.rejected_total += 1
            return False

    def record_success(self) -> None:
        """A call succeeded: reset the failure count, or close a half-open circuit."""
        with self._lock:
            self._advance(self._clock())
            if self._state is CircuitState.HALF_OPEN:
                self._state = CircuitState.CLOSED
            if self._state is CircuitState.CLOSED:
                self._failures = 0
            # While open, a late success from before the opening changes nothing.

    def record_failure(self) -> None:
        """A call failed (error or timeout): count it, or reopen a half-open circuit."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._state is CircuitState.CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open(now)
            elif self._state is CircuitState.HALF_OPEN:
                self._open(now)
            # While open, a late failure does not extend the timeout.

    def reset(self) -> None:
        """Close the circuit and forget failures (an operator's override); counters stay."""
        with self._lock:
            self._state, self._failures, self._probes = CircuitState.CLOSED, 0, 0

    def _open(self, now: float) -> None:
        self._state, self._changed_at = CircuitState.OPEN, now
        self._failures, self._probes = 0, 0
        self.opened_total += 1

    def _advance(self, now: float) -> None:
        if self._state is CircuitState.OPEN and now - self._changed_at >= self.reset_timeout:
            self._state, self._changed_at, self._probes = CircuitState.HALF_OPEN, now, 0
