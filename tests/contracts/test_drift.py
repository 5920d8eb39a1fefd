from __future__ import annotations

import json
import math

import polars as pl
import pyarrow as pa

import fourloops as fl
from fourloops.contracts import Finding, compare_schemas, observe_schema

CONTRACT = fl.Contract(
    {"city": fl.String(nullable=True), "temp": fl.Float(nullable=True)},
    null_tokens=["", "NA"],
)


def test_observe_schema_counts_tokens_and_nan() -> None:
    data = pa.table({"city": ["Oslo", "", "NA", ""], "temp": [1.0, math.nan, None, 2.0], "z": [1, 2, 3, 4]})
    snap = observe_schema(data, CONTRACT)
    json.dumps(snap)
    assert snap == {
        "rows": 4,
        "columns": {"city": "String", "temp": "Float64", "z": "Int64"},
        "nulls": {
            "city": {"tokens": {"": 2, "NA": 1}, "nan": 0, "null": 0},
            "temp": {"tokens": {"": 0, "NA": 0}, "nan": 1, "null": 1},
        },
    }


def test_first_snapshot_only_reports_missing_columns() -> None:
    snap = observe_schema(pl.DataFrame({"city": ["a"]}), CONTRACT)
    assert compare_schemas(None, snap, CONTRACT) == [
        Finding("temp", "missing_column", "error", "column 'temp': declared in the contract but missing")
    ]


def test_null_becoming_empty_string_is_reported() -> None:
    before = observe_schema(pl.DataFrame({"city": ["a", None], "temp": [1.0, 2.0]}), CONTRACT)
    after = observe_schema(pl.DataFrame({"city": ["a", ""], "temp": [1.0, math.nan]}), CONTRACT)
    assert compare_schemas(before, after, CONTRACT) == [
        Finding(
            "city",
            "null_token_appeared",
            "warning",
            "column 'city': null token '' appears in 1 rows (was 0)",
        ),
        Finding("temp", "nan_appeared", "warning", "column 'temp': NaN appears in 1 rows (was 0)"),
    ]
    assert compare_schemas(after, after, CONTRACT) == []


def test_columns_new_gone_and_retyped() -> None:
    before = observe_schema(pl.DataFrame({"city": ["a"], "temp": [1.0], "old": [1]}), CONTRACT)
    after = observe_schema(pl.DataFrame({"city": ["a"], "temp": ["1.0"], "new": [1]}), CONTRACT)
    assert [(f.column, f.kind, f.severity) for f in compare_schemas(before, after, CONTRACT)] == [
        ("temp", "type_changed", "error"),
        ("new", "new_column", "warning"),
        ("old", "column_disappeared", "warning"),
    ]
    forbid = fl.Contract(CONTRACT.fields, null_tokens=["", "NA"], extra="forbid")
    assert compare_schemas(before, after, forbid)[1].severity == "error"
    assert compare_schemas(before, after, CONTRACT)[0].message == (
        "column 'temp': physical type changed from Float64 to String"
    )
