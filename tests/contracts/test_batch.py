from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pytest

import fourloops as fl
from fourloops.contracts import BatchValidator, FieldCoverage, compile_contract
from fourloops.errors import SchemaError


def run(contract: fl.Contract, data: object) -> object:
    return BatchValidator(contract).validate_batch(data)


def test_float_rules_on_a_typed_column() -> None:
    contract = fl.Contract({"t": fl.Float(min=-40, max=130)})
    data = pa.table({"t": [1.0, None, math.nan, math.inf, -41.0, 131.0, 130.0]})
    r = run(contract, data)
    assert r.n_rows == 7 and r.n_valid == 2 and r.n_quarantined == 5
    assert r.valid.get_column("t").to_list() == [1.0, 130.0]
    assert r.quarantine.get_column("_fl_row").to_list() == [1, 2, 3, 4, 5]
    assert r.quarantine.get_column("_fl_violations").to_list() == [
        ["t:not_null"],
        ["t:nan"],
        ["t:infinite"],
        ["t:min"],
        ["t:max"],
    ]
    assert r.counts == {
        ("t", "nan"): 1,
        ("t", "infinite"): 1,
        ("t", "not_null"): 1,
        ("t", "min"): 1,
        ("t", "max"): 1,
    }
    assert r.examples[("t", "max")] == ["131.0"]
    assert r.quarantine.columns == ["t", "_fl_row", "_fl_violations"]
    assert r.quarantine.schema["_fl_row"] == pl.Int64


def test_strings_are_parsed_and_quarantine_keeps_original_values() -> None:
    contract = fl.Contract(
        {"t": fl.Float(max=130), "n": fl.Int(), "b": fl.Bool(), "ts": fl.Timestamp()},
        null_tokens=["", "NA"],
    )
    data = pl.DataFrame(
        {
            "t": ["12.5", "140", "abc"],
            "n": ["+7", "3.0", "1"],
            "b": ["TRUE", "0", "yes"],
            "ts": ["2024-01-02T03:04:05+01:00", "2024-01-02 03:04", "NA"],
        }
    )
    r = run(contract, data)
    assert r.valid.rows() == [(12.5, 7, True, datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC))]
    assert r.valid.schema == pl.Schema(
        {"t": pl.Float64, "n": pl.Int64, "b": pl.Boolean, "ts": pl.Datetime("us", "UTC")}
    )
    assert r.quarantine.rows() == [
        ("140", "3.0", "0", "2024-01-02 03:04", 1, ["t:max", "n:type", "ts:timezone"]),
        ("abc", "1", "yes", "NA", 2, ["t:type", "b:type", "ts:not_null"]),
    ]
    assert r.examples[("t", "type")] == ["'abc'"]


def test_wrong_physical_type_breaks_type_on_every_non_null_row() -> None:
    contract = fl.Contract({"x": fl.Float(nullable=True)})
    r = run(contract, pa.table({"x": [True, None, False]}))
    assert r.counts == {("x", "type"): 2}
    assert r.valid.get_column("x").to_list() == [None]
    assert r.valid.schema["x"] == pl.Float64


def test_int_field_from_float_column() -> None:
    contract = fl.Contract({"n": fl.Int(max=10)})
    r = run(contract, pa.table({"n": [3.0, 2.5, math.nan, math.inf, 11.0]}))
    assert r.valid.get_column("n").to_list() == [3]
    assert r.quarantine.get_column("_fl_violations").to_list() == [
        ["n:type"],
        ["n:nan"],
        ["n:type"],
        ["n:max"],
    ]


def test_categories_flag_map_reject_and_unknown_counts() -> None:
    contract = fl.Contract(
        {
            "r": fl.Category(["a", "b"]),
            "f": fl.Category(["a", "b"], unknown="flag"),
            "m": fl.Category(["a", "b"], unknown="map"),
        }
    )
    data = pa.table({"r": ["a", "z", "b"], "f": ["z", "a", "y"], "m": ["a", "z", "q"]})
    r = run(contract, data)
    assert r.valid.rows() == [("a", "z", "a"), ("b", "y", "__unknown__")]
    assert r.counts == {("r", "category"): 1}
    assert r.unknown == {"f": 2, "m": 2}
    assert r.coverage["r"].share_unknown == pytest.approx(1 / 3)
    assert r.coverage["f"].share_unknown == pytest.approx(2 / 3)


def test_dictionary_encoded_strings_are_categories() -> None:
    contract = fl.Contract({"c": fl.Category(["a"])})
    r = run(contract, pa.table({"c": pa.array(["a", "b"]).dictionary_encode()}))
    assert r.valid.get_column("c").to_list() == ["a"]
    assert r.counts == {("c", "category"): 1}


def test_string_max_length() -> None:
    r = run(fl.Contract({"s": fl.String(max_length=2)}), pa.table({"s": ["ab", "abc", "é"]}))
    assert r.valid.get_column("s").to_list() == ["ab", "é"]
    assert r.counts == {("s", "max_length"): 1}


def test_timestamps_from_arrow_columns() -> None:
    aware = pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("ms", tz="Europe/Paris"))
    naive = pa.array([datetime(2024, 1, 1)], pa.timestamp("us"))
    contract = fl.Contract({"a": fl.Timestamp(), "n": fl.Timestamp(nullable=True)})
    r = run(contract, pa.table({"a": aware, "n": naive}))
    assert r.counts == {("n", "timezone"): 1}
    r = run(contract, pa.table({"a": aware}))
    assert r.valid.get_column("a").to_list() == [datetime(2024, 1, 1, tzinfo=UTC)]
    assert r.valid.schema["a"] == pl.Datetime("us", "UTC")


def test_defaults_nulls_and_coverage() -> None:
    contract = fl.Contract({"n": fl.Int(default=0), "x": fl.Float(nullable=True)}, null_tokens=["", "NaN"])
    data = pa.table({"n": ["", "0", "5", None], "x": [math.nan, 1.0, None, 2.0]})
    r = run(contract, data)
    assert r.n_valid == 4
    assert r.valid.get_column("n").to_list() == [0, 0, 5, 0]
    assert r.valid.get_column("x").to_list() == [None, 1.0, None, 2.0]
    assert r.defaulted == {"n": 2}
    assert r.coverage["n"] == FieldCoverage(0.5, 0.5, 0.75, None)
    assert r.coverage["x"] == FieldCoverage(0.5, 0.5, None, None)


def test_missing_columns() -> None:
    contract = fl.Contract(
        {"a": fl.Int(), "b": fl.Int(nullable=True), "c": fl.Float(default=1.0), "d": fl.Bool()}
    )
    r = run(contract, pa.table({"a": [1, 2]}))
    assert r.counts == {("d", "missing"): 2}
    assert r.examples == {("d", "missing"): []}
    assert r.quarantine.get_column("_fl_violations").to_list() == [["d:missing"]] * 2
    r = run(
        fl.Contract({"a": fl.Int(), "b": fl.Int(nullable=True), "c": fl.Float(default=1.0)}),
        pa.table({"a": [1]}),
    )
    assert r.valid.rows() == [(1, None, 1.0)] and r.defaulted == {"c": 1}
    assert r.coverage["b"].share_null == 1.0


def test_extra_columns_allowed_or_forbidden() -> None:
    data = pa.table({"a": [1, 2], "z": ["p", "q"]})
    allow = run(fl.Contract({"a": fl.Int()}), data)
    assert allow.valid.columns == ["a", "z"] and allow.n_valid == 2
    forbid = run(fl.Contract({"a": fl.Int()}, extra="forbid"), data)
    assert forbid.n_valid == 0 and forbid.counts == {("z", "unknown_field"): 2}
    assert forbid.examples[("z", "unknown_field")] == ["'p'", "'q'"]


def test_empty_input_and_examples_are_distinct_and_capped() -> None:
    contract = fl.Contract({"x": fl.Int(max=0)})
    r = run(contract, pa.table({"x": pa.array([], pa.int64())}))
    assert (r.n_rows, r.n_valid, r.n_quarantined, r.counts) == (0, 0, 0, {})
    assert r.coverage["x"] == FieldCoverage(0.0, 0.0, None, None)
    r = run(contract, pa.table({"x": [5, 5, 1, 2, 3, 4, 6, 7]}))
    assert r.examples[("x", "max")] == ["5", "1", "2", "3", "4"]


def test_to_dict_is_json() -> None:
    r = run(fl.Contract({"x": fl.Int(max=0)}), pa.table({"x": [1, 0]}))
    report = json.loads(json.dumps(r.to_dict()))
    assert report["violations"] == [{"column": "x", "rule": "max", "rows": 1, "examples": ["1"]}]
    assert report["coverage"]["x"]["share_present"] == 1.0


def test_compile_contract_has_both_verbs_and_rejects_other_inputs() -> None:
    compiled = compile_contract(fl.Contract({"x": fl.Int()}))
    assert compiled.validate_batch(pl.DataFrame({"x": [1]})).n_valid == 1
    assert compiled.validate_row({"x": 1}).ok
    assert compiled.check_row({"x": "2"}) == {"x": 2}
    assert compiled.json_schema()["required"] == ["x"]
    with pytest.raises(SchemaError, match="pyarrow.Table or polars.DataFrame"):
        compiled.validate_batch([{"x": 1}])
