from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import fourloops as fl
from fourloops.adaptation.split import time_split
from fourloops.errors import DefinitionError, SchemaError

T0 = datetime(2013, 1, 1, tzinfo=UTC)


def frame(days: int = 100) -> pl.DataFrame:
    return pl.DataFrame({"ts": [T0 + timedelta(days=d) for d in range(days)], "x": list(range(days))})


def test_split_by_time_never_mixes_past_and_future() -> None:
    split = time_split(frame(), "ts", fl.TimeSplit(validation=0.2, test=0.2))
    assert split.train["ts"].max() < split.validation["ts"].min()
    assert split.validation["ts"].max() < split.test["ts"].min()
    assert split.train.height + split.validation.height + split.test.height == 100
    # The span is 99 days: test starts 19.8 days before the end, validation 19.8 days before that.
    assert split.test_start == T0 + timedelta(days=99) - timedelta(days=99) * 0.2
    assert split.test.height == 20 and split.validation.height == 20


def test_duration_windows_and_boundary_rows_go_to_the_later_part() -> None:
    split = time_split(frame(), "ts", fl.TimeSplit(validation="30d", test="30d"))
    assert split.test_start == T0 + timedelta(days=69)
    assert split.test["ts"].min() == T0 + timedelta(days=69)
    assert split.validation["ts"].min() == T0 + timedelta(days=39)


def test_too_few_rows_is_a_clear_error() -> None:
    with pytest.raises(SchemaError, match="rows for validation"):
        time_split(frame(60), "ts", fl.TimeSplit(validation="1d", test="10d"))
    with pytest.raises(SchemaError, match="no rows"):
        time_split(frame(0), "ts", fl.TimeSplit())


def test_bad_split_definitions() -> None:
    with pytest.raises(DefinitionError, match="fraction"):
        fl.TimeSplit(test=0.7)
    with pytest.raises(DefinitionError, match="cannot parse"):
        fl.TimeSplit(test="a while")
