"""Parsing of durations such as a feature view's ``ttl``."""

from __future__ import annotations

import re
from datetime import timedelta

from fourloops.errors import DefinitionError

__all__ = ["format_duration", "parse_duration"]

_UNITS = {
    "us": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h|d|w)")


def parse_duration(value: str | int | float | timedelta, *, what: str = "duration") -> timedelta:
    """Turn ``"3h"``, ``"1d12h"``, ``"90m"``, a number of seconds or a timedelta into a timedelta.

    >>> parse_duration("1d12h")
    datetime.timedelta(days=1, seconds=43200)
    >>> parse_duration(90)
    datetime.timedelta(seconds=90)
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise DefinitionError(f"{what}: expected a duration like '3h', got {value!r}")
    elif isinstance(value, int | float):
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos = 0
        result = timedelta(0)
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            result += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise DefinitionError(
                f"{what}: cannot parse {value!r} as a duration (use e.g. '90s', '15m', '3h', '7d')"
            )
    else:
        raise DefinitionError(f"{what}: expected a duration like '3h', got {type(value).__name__}")
    if result <= timedelta(0):
        raise DefinitionError(f"{what}: must be positive, got {value!r}")
    return result


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration: ``timedelta(hours=3)`` -> ``"3h"``.

    >>> format_duration(timedelta(days=1, hours=12))
    '36h'
    """
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    for unit in ("w", "d", "h", "m", "s", "ms", "us"):
        size = _UNITS[unit]
        unit_micros = (size.days * 86_400 + size.seconds) * 1_000_000 + size.microseconds
        if micros % unit_micros == 0:
            return f"{micros // unit_micros}{unit}"
    raise AssertionError("unreachable: every duration is a whole number of microseconds")
