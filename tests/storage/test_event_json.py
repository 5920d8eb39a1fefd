"""The JSON text of events (features, output, extra, label values), checked against the standard library."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops.errors import SchemaError
from fourloops.storage.events.base import dumps_json, dumps_json_bytes

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # beyond 64 bits too
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _nulled(value: Any) -> Any:
    """The brute-force reference: non-finite floats become None, everything else stays."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    return value


@settings(max_examples=500, deadline=None)
@given(values)
def test_round_trips_through_the_standard_library(value: Any) -> None:
    text = dumps_json(value)
    assert json.loads(text) == _nulled(value)
    assert "\n" not in text  # one record per line in the local store
    assert dumps_json_bytes(value) == text.encode()


def test_numpy_dates_and_errors() -> None:
    assert json.loads(dumps_json({"a": np.float64(0.5), "b": np.arange(3), "c": np.float32("nan")})) == {
        "a": 0.5,
        "b": [0, 1, 2],
        "c": None,
    }
    assert json.loads(dumps_json(np.array([1.0, np.nan]))) == [1.0, None]
    assert json.loads(dumps_json(np.arange(6).reshape(2, 3)[:, 1])) == [1, 4]  # not contiguous
    at = datetime(2013, 1, 1, 12, tzinfo=UTC)
    assert json.loads(dumps_json({"at": at, "d": date(2013, 1, 2)})) == {
        "at": at.isoformat(),
        "d": "2013-01-02",
    }
    with pytest.raises(SchemaError, match="features is not JSON-able"):
        dumps_json({"x": object()}, what="features")
