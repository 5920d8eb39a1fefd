from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

import fourloops as fl
from fourloops.contracts import RowValidator
from fourloops.definitions.fields import UNKNOWN_CATEGORY
from fourloops.errors import ContractViolation


def check(field: fl.Field, value: object, **contract: object) -> tuple[dict, dict]:
    v = RowValidator(fl.Contract({"x": field}, **contract))  # type: ignore[arg-type]
    r = v.validate_row({"x": value})
    assert r.ok == (not r.violations)
    return r.values, r.violations


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (2.5, 2.5),
        ("3", 3.0),
        ("-.5e1", -5.0),
        ("+5.", 5.0),
        ("1E2", 100.0),
    ],
)
def test_float_accepts(value: object, expected: float) -> None:
    values, violations = check(fl.Float(), value)
    assert violations == {} and values == {"x": expected}
    assert type(values["x"]) is float


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (True, "type"),
        ("1,5", "type"),
        (" 1", "type"),
        ("1_000", "type"),
        ("١", "type"),
        ([1], "type"),
        (math.nan, "nan"),
        ("nan", "nan"),
        (math.inf, "infinite"),
        ("-Infinity", "infinite"),
        ("1e999", "infinite"),
        (None, "not_null"),
        (-41, "min"),
        (131.0, "max"),
    ],
)
def test_float_rules(value: object, rule: str) -> None:
    assert check(fl.Float(min=-40, max=130), value)[1] == {"x": rule}


def test_float_allow_inf_still_checks_bounds() -> None:
    assert check(fl.Float(allow_inf=True), math.inf)[0] == {"x": math.inf}
    assert check(fl.Float(allow_inf=True, max=1), math.inf)[1] == {"x": "max"}


def test_null_tokens_apply_to_any_type_and_nan_is_null() -> None:
    assert check(fl.Float(nullable=True), "NA", null_tokens=["NA"])[0] == {"x": None}
    assert check(fl.Float(), "NA", null_tokens=["NA"])[1] == {"x": "not_null"}
    assert check(fl.Float(), "na", null_tokens=["NA"])[1] == {"x": "type"}
    assert check(fl.Int(nullable=True), math.nan, null_tokens=["NaN"])[0] == {"x": None}
    assert check(fl.Float(nullable=True), "nan", null_tokens=["NaN"])[0] == {"x": None}
    assert check(fl.Category(["a"], nullable=True), math.nan, null_tokens=["NaN"])[0] == {"x": None}
    assert check(fl.Category(["a"], nullable=True), math.nan)[1] == {"x": "type"}


def test_defaults_fill_nulls_and_are_reported() -> None:
    v = RowValidator(
        fl.Contract({"n": fl.Int(default=0), "m": fl.Float(nullable=True, default=1.5)}, null_tokens=[""])
    )
    r = v.validate_row({"n": "", "m": None})
    assert r.ok and r.values == {"n": 0, "m": 1.5} and r.defaulted == ["n", "m"]


@pytest.mark.parametrize(
    ("value", "result"),
    [
        (3, 3),
        (3.0, 3),
        (-0.0, 0),
        ("+007", 7),
        ("-9223372036854775808", -(2**63)),
        (2.5, "type"),
        (True, "type"),
        ("3.0", "type"),
        (math.inf, "type"),
        (2.0**63, "type"),
        ("9223372036854775808", "type"),
        (2**63, "type"),
        (math.nan, "nan"),
        (-6, "min"),
        (11, "max"),
    ],
)
def test_int(value: object, result: object) -> None:
    values, violations = check(fl.Int(min=-(2**63), max=10) if value != -6 else fl.Int(min=-5), value)
    if isinstance(result, str):
        assert violations == {"x": result}
    else:
        assert values == {"x": result} and type(values["x"]) is int


@pytest.mark.parametrize(
    ("value", "result"),
    [(True, True), (0, False), (1, True), ("TRUE", True), ("false", False), ("0", False)],
)
def test_bool_accepts(value: object, result: bool) -> None:
    assert check(fl.Bool(), value)[0] == {"x": result}


@pytest.mark.parametrize("value", [2, "yes", "t", 1.0, " true"])
def test_bool_rejects(value: object) -> None:
    assert check(fl.Bool(), value)[1] == {"x": "type"}


def test_category_policies() -> None:
    assert check(fl.Category(["a", "b"]), "a")[0] == {"x": "a"}
    assert check(fl.Category(["a", "b"]), "c")[1] == {"x": "category"}
    assert check(fl.Category(["a", "b"]), 1)[1] == {"x": "type"}
    v = RowValidator(fl.Contract({"x": fl.Category(["a"], unknown="flag")}))
    r = v.validate_row({"x": "z"})
    assert r.ok and r.values == {"x": "z"} and r.unknown == ["x"]
    v = RowValidator(fl.Contract({"x": fl.Category(["a"], unknown="map")}))
    r = v.validate_row({"x": "z"})
    assert r.ok and r.values == {"x": UNKNOWN_CATEGORY} and r.unknown == ["x"]


def test_string_max_length_counts_characters() -> None:
    assert check(fl.String(max_length=3), "héé")[0] == {"x": "héé"}
    assert check(fl.String(max_length=3), "abcd")[1] == {"x": "max_length"}
    assert check(fl.String(), 5)[1] == {"x": "type"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04+01:00", datetime(2024, 1, 2, 2, 4, tzinfo=UTC)),
        ("2024-01-02T03:04:05.5-0130", datetime(2024, 1, 2, 4, 34, 5, 500_000, tzinfo=UTC)),
        (
            datetime(2024, 1, 2, 3, tzinfo=timezone(timedelta(hours=2))),
            datetime(2024, 1, 2, 1, tzinfo=UTC),
        ),
    ],
)
def test_timestamp_accepts(value: object, expected: datetime) -> None:
    values, violations = check(fl.Timestamp(), value)
    assert violations == {} and values == {"x": expected}
    assert values["x"].tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("2024-01-02T03:04:05", "timezone"),
        (datetime(2024, 1, 2), "timezone"),
        ("2024-02-30T00:00Z", "type"),
        ("2024-02-30T00:00", "type"),
        ("2024-01-02T24:00Z", "type"),
        ("2024-01-02T03:04+24:00", "type"),
        ("0001-01-01T00:00+01:00", "type"),
        ("2024-01-02", "type"),
        (date(2024, 1, 2), "type"),
        (1_700_000_000, "type"),
        ("1999-12-31T23:59Z", "min"),
        ("2031-01-01T00:00Z", "max"),
    ],
)
def test_timestamp_rules(value: object, rule: str) -> None:
    field = fl.Timestamp(min=datetime(2000, 1, 1, tzinfo=UTC), max=datetime(2030, 1, 1, tzinfo=UTC))
    assert check(field, value)[1] == {"x": rule}


def test_missing_and_extra_keys() -> None:
    contract = fl.Contract(
        {"a": fl.Int(), "b": fl.Int(nullable=True), "c": fl.Int(default=4)}, extra="forbid"
    )
    r = RowValidator(contract).validate_row({"z": 1})
    assert r.violations == {"a": "missing", "z": "unknown_field"}
    assert r.values == {"b": None, "c": 4} and r.defaulted == ["c"]
    allow = RowValidator(fl.Contract({"a": fl.Int()}))
    assert allow.validate_row({"a": 1, "z": "kept"}).values == {"a": 1, "z": "kept"}


def test_check_row_message_names_each_field_and_rule() -> None:
    v = RowValidator(fl.Contract({"temp": fl.Float(max=130), "city": fl.String()}))
    with pytest.raises(ContractViolation) as err:
        v.check_row({"temp": 140})
    assert str(err.value) == "temp: max (value 140.0 > 130.0); city: missing"
    assert err.value.violations == {"temp": "max", "city": "missing"}
    assert v.check_row({"temp": "1", "city": "Oslo"}) == {"temp": 1.0, "city": "Oslo"}


def test_check_row_message_stays_one_line_for_strange_field_names() -> None:
    v = RowValidator(fl.Contract({"a": fl.Int()}, extra="forbid"))
    with pytest.raises(ContractViolation) as err:
        v.check_row({"a": 1, "x\nINFO forged log line": 2, "": 3})
    message = str(err.value)
    assert "\n" not in message
    assert message == "'x\\nINFO forged log line': unknown_field (not declared in the contract); " + (
        "'': unknown_field (not declared in the contract)"
    )
    assert err.value.violations == {"x\nINFO forged log line": "unknown_field", "": "unknown_field"}


def test_check_row_messages_for_other_rules() -> None:
    v = RowValidator(
        fl.Contract(
            {
                "c": fl.Category(["a"]),
                "s": fl.String(max_length=2),
                "t": fl.Timestamp(),
                "n": fl.Int(min=0),
            },
            extra="forbid",
        )
    )
    with pytest.raises(ContractViolation) as err:
        v.check_row({"c": "b", "s": "abc", "t": "x", "n": -1, "q": 1})
    assert str(err.value) == (
        "c: category (value 'b' is not one of ['a']); s: max_length (length 3 > 2); "
        "t: type (value 'x' is not a timestamp); n: min (value -1 < 0); "
        "q: unknown_field (not declared in the contract)"
    )
