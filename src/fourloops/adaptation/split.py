"""Splitting rows by time: train on the past, validate and test on what came after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from fourloops.definitions import TimeSplit
from fourloops.definitions.durations import parse_duration
from fourloops.errors import SchemaError

__all__ = ["Split", "time_split"]

#: Each part of a split needs at least this many rows.
MIN_ROWS = 20


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    validation: pl.DataFrame
    test: pl.DataFrame
    validation_start: datetime
    test_start: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "train_rows": self.train.height,
            "validation_rows": self.validation.height,
            "test_rows": self.test.height,
            "validation_start": self.validation_start.isoformat(),
            "test_start": self.test_start.isoformat(),
        }


def _boundary(first: datetime, last: datetime, size: float | str, end: datetime) -> datetime:
    if isinstance(size, str):
        return end - parse_duration(size)
    return end - (last - first) * float(size)


def time_split(frame: pl.DataFrame, timestamp: str, split: TimeSplit) -> Split:
    """Rows before the validation window train; the validation window, then the newest rows test.

    Windows are measured back from the newest row: ``test`` is the last
    fraction of the time span (or duration), ``validation`` the one before it.
    A row at a boundary belongs to the later part. Never random.
    """
    if frame.is_empty():
        raise SchemaError("no rows to split (check the label maturity and time filters)")
    first, last = frame[timestamp].min(), frame[timestamp].max()
    test_start = _boundary(first, last, split.test, last)  # type: ignore[arg-type]
    validation_start = _boundary(first, last, split.validation, test_start)  # type: ignore[arg-type]
    col = pl.col(timestamp)
    train = frame.filter(col < validation_start)
    validation = frame.filter((col >= validation_start) & (col < test_start))
    test = frame.filter(col >= test_start)
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        if part.height < MIN_ROWS:
            raise SchemaError(
                f"time split leaves {part.height} rows for {name} (need {MIN_ROWS}): "
                f"rows span {first!s} to {last!s}; adjust split=fl.TimeSplit(...)"
            )
    return Split(train, validation, test, validation_start, test_start)
