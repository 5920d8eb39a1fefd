"""Windows: how the current data is cut for monitoring, and each window's bounds and status.

A window spec is a duration (``"1d"``, ``"7d"``, ``"12h"``) when the data has a
timestamp, or a row count (``5000`` or ``"5000"``) otherwise, in the order of
the data. Time windows of whole days start at midnight UTC of the first day
(or of ``since``); shorter ones at a multiple of their width since the Unix
epoch. Windows in between with no rows are kept (a gap in traffic is news).

A window is ``incomplete`` when the data does not cover it whole: the last
window by row count with fewer rows than the others, or a time window that
ends after the end of observation (``until``, or the moment of the last row)
or starts before its beginning (``since``, or the first row): a day seen only
from noon on has another mix of hours than a whole one. Incomplete windows
are judged and shown, but raise no alert. A window with fewer rows than the drift policy's minimum is
``too_few_rows`` and gets no verdict.

>>> spec = WindowSpec.parse("7d")
>>> spec.width, spec.rows
(datetime.timedelta(days=7), None)
>>> WindowSpec.parse(5000).rows
5000
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fourloops.definitions.durations import parse_duration
from fourloops.engines.summaries import RowWindows, TimeWindows
from fourloops.errors import ConfigError, DefinitionError

__all__ = ["WindowBounds", "WindowSpec", "WindowStatus", "bounds", "time_origin"]

_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WindowStatus(enum.StrEnum):
    OK = "ok"
    TOO_FEW_ROWS = "too_few_rows"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class WindowSpec:
    """A window width: a duration, or a number of rows."""

    width: timedelta | None = None
    rows: int | None = None

    @classmethod
    def parse(cls, value: str | int | timedelta | None) -> WindowSpec | None:
        """``"1d"``, ``"6h"`` or a timedelta: by time; ``5000`` or ``"5000"``: by rows; None: one window."""
        if value is None:
            return None
        if isinstance(value, bool):
            raise ConfigError(f"window must be a duration such as '1d' or a row count, got {value!r}")
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            rows = int(value)
            if rows < 1:
                raise ConfigError(f"window of {rows} rows: give at least 1")
            return cls(rows=rows)
        try:
            width = parse_duration(value, what="window")
        except DefinitionError as err:
            raise ConfigError(
                f"{err} (a duration such as '1d', '7d', '12h', or a row count such as 5000)"
            ) from None
        if width <= timedelta(0):
            raise ConfigError(f"window must be longer than zero, got {value!r}")
        return cls(width=width)

    def __str__(self) -> str:
        if self.rows is not None:
            return f"{self.rows} rows"
        assert self.width is not None
        days, rest = divmod(self.width, _DAY)
        return f"{days}d" if not rest else str(self.width)


def time_origin(first: datetime, width: timedelta) -> datetime:
    """Where the first time window starts: midnight UTC for whole days, else a multiple of ``width``."""
    first = first.astimezone(UTC)
    if width % _DAY == timedelta(0):
        return first.replace(hour=0, minute=0, second=0, microsecond=0)
    steps = (first - _EPOCH) // width
    return _EPOCH + steps * width


@dataclass(frozen=True)
class WindowBounds:
    """One window's place: index, time bounds (by time) or row positions (by rows), status."""

    index: int
    start: datetime | None
    end: datetime | None
    first_row: int | None
    last_row: int | None
    rows: int
    status: WindowStatus


def bounds(
    windows: TimeWindows | RowWindows | None,
    index: int,
    rows: int,
    *,
    first_row: int | None,
    last_row: int | None,
    observed_until: datetime | None,
    min_rows: int,
    observed_from: datetime | None = None,
) -> WindowBounds:
    """The bounds and status of window ``index`` holding ``rows`` rows."""
    start = end = None
    complete = True
    if isinstance(windows, TimeWindows):
        start, end = windows.bounds(index)
        complete = (observed_until is None or end <= observed_until) and (
            observed_from is None or observed_from <= start
        )
    elif isinstance(windows, RowWindows):
        complete = rows >= windows.size
        first_row = index * windows.size if first_row is None else first_row
    if rows < min_rows:
        status = WindowStatus.TOO_FEW_ROWS
    elif not complete:
        status = WindowStatus.INCOMPLETE
    else:
        status = WindowStatus.OK
    if not isinstance(windows, RowWindows):
        first_row = last_row = None
    return WindowBounds(index, start, end, first_row, last_row, rows, status)
