"""Time as every loop reads it: a :data:`Clock` is a function returning "now", UTC-aware.

Every component that asks what time it is (the server stamping predictions,
stores stamping records, training cutoffs, materialisation, the coming
controller) takes a ``clock=`` argument, and :class:`fourloops.Project` hands
the same clock to all of them. The wall clock (:func:`utcnow`) is the default;
:class:`ManualClock` is a clock that moves only when told to, so a test or a
simulation drives every loop through the same simulated time; a
:class:`ReplayClock` starts at a past time and runs at the wall clock's pace
(``fourloops serve --as-of``: serve as if it were then, with the features of
then).

>>> clock = ManualClock(datetime(2013, 6, 1, 12, tzinfo=UTC))
>>> clock()
datetime.datetime(2013, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
>>> clock.advance(timedelta(hours=2)).isoformat()
'2013-06-01T14:00:00+00:00'
>>> as_utc(datetime(2013, 6, 1, 12)).isoformat()     # naive: taken as UTC (how SQLite returns it)
'2013-06-01T12:00:00+00:00'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fourloops.errors import SchemaError

__all__ = ["Clock", "ManualClock", "ReplayClock", "as_utc", "require_aware", "utcnow"]

#: What "now" means to a component: a function returning a UTC-aware datetime.
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The wall clock: the current time, UTC-aware (the default :data:`Clock`)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already.

    For values read back from stores that keep no zone (SQLite): fourloops
    writes every time in UTC, so re-attaching UTC is exact. Never use it on
    user input, where a naive time is refused instead (:func:`require_aware`).
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def require_aware(value: datetime | str, what: str) -> datetime:
    """``value`` (a datetime or ISO-8601 text) in UTC; naive: :class:`SchemaError` naming ``what``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise SchemaError(f"{what}: {value!r} is not an ISO-8601 time") from None
    if not isinstance(value, datetime):
        raise SchemaError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise SchemaError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class ManualClock:
    """A clock that stands still until :meth:`set` or :meth:`advance` moves it (thread-safe).

    It never moves backwards: :meth:`set` to an earlier time is a
    :class:`SchemaError`, because every store and loop assumes time only grows.
    """

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "ManualClock start")
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()!r})"

    def set(self, when: datetime) -> datetime:
        """Move to ``when`` (not earlier than now); returns it."""
        when = require_aware(when, "ManualClock.set")
        with self._lock:
            if when < self._now:
                raise SchemaError(
                    f"ManualClock cannot go back from {self._now.isoformat()} to {when.isoformat()}"
                )
            self._now = when
        return when

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (not negative); returns the new time."""
        if delta < timedelta(0):
            raise SchemaError(f"ManualClock cannot advance by a negative {delta}")
        with self._lock:
            self._now = self._now + delta
            return self._now


class ReplayClock:
    """A clock that reads ``start`` at the wall-clock moment ``began`` and runs at the wall clock's pace.

    Several processes given the same ``start`` and ``began`` (see
    :meth:`to_text`) read the same time.

    >>> clock = ReplayClock(datetime(2013, 12, 30, 18, tzinfo=UTC), began=time.time())
    >>> clock() - datetime(2013, 12, 30, 18, tzinfo=UTC) < timedelta(seconds=5)
    True
    >>> ReplayClock.from_text(clock.to_text()).start == clock.start
    True
    """

    def __init__(self, start: datetime, *, began: float | None = None) -> None:
        self.start = require_aware(start, "ReplayClock start")
        self.began = time.time() if began is None else float(began)

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.time() - self.began)

    def __repr__(self) -> str:
        return f"ReplayClock({self.start.isoformat()!r}, began={self.began!r})"

    def to_text(self) -> str:
        """``<start ISO-8601>@<began, Unix seconds>``, for handing the clock to another process."""
        return f"{self.start.isoformat()}@{self.began!r}"

    @classmethod
    def from_text(cls, text: str) -> ReplayClock:
        """The clock :meth:`to_text` wrote; :class:`SchemaError` naming the text otherwise."""
        start, sep, began = text.rpartition("@")
        try:
            if not sep:
                raise ValueError
            return cls(require_aware(start, "ReplayClock start"), began=float(began))
        except (ValueError, SchemaError):
            raise SchemaError(
                f"not a replay clock: {text!r} (expected <ISO-8601 time>@<Unix seconds>)"
            ) from None
