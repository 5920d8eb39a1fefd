from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import fourloops as fl
from fourloops.contracts import RowValidator, json_schema

CONTRACT = fl.Contract(
    {
        "temp": fl.Float(min=-40, max=130),
        "n": fl.Int(min=0, nullable=True),
        "ok": fl.Bool(default=True),
        "color": fl.Category(["red", "blue"]),
        "tag": fl.Category(["x"], unknown="map", nullable=True),
        "note": fl.String(max_length=5, description="free text"),
        "at": fl.Timestamp(min=datetime(2000, 1, 1, tzinfo=UTC)),
    },
    extra="forbid",
)
_TYPES = {"number": (int, float), "integer": (int,), "boolean": (bool,), "string": (str,)}


def _accepts(schema: dict[str, Any], row: dict[str, Any]) -> bool:
    """A tiny checker for the keywords json_schema emits (not a full validator)."""
    if any(name not in row for name in schema["required"]):
        return False
    if not schema["additionalProperties"] and set(row) - set(schema["properties"]):
        return False
    for name, value in row.items():
        prop = schema["properties"][name]
        types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        if value is None:
            if "null" not in types:
                return False
            continue
        json_type = types[0]
        if isinstance(value, bool) and json_type != "boolean":
            return False
        if not isinstance(value, _TYPES[json_type]):
            return False
        if "minimum" in prop and value < prop["minimum"]:
            return False
        if "maximum" in prop and value > prop["maximum"]:
            return False
        if "enum" in prop and value not in prop["enum"]:
            return False
        if "maxLength" in prop and len(value) > prop["maxLength"]:
            return False
    return True


def test_schema_shape() -> None:
    schema = json_schema(CONTRACT)
    json.dumps(schema)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["temp", "color", "note", "at"]
    props = schema["properties"]
    assert props["temp"] == {"type": "number", "minimum": -40, "maximum": 130}
    assert props["n"] == {"type": ["integer", "null"], "minimum": 0}
    assert props["ok"] == {"type": ["boolean", "null"], "default": True}
    assert props["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert props["tag"] == {"type": ["string", "null"], "examples": ["x"]}
    assert props["note"] == {"type": "string", "maxLength": 5, "description": "free text"}
    assert props["at"]["format"] == "date-time"
    assert props["at"]["formatMinimum"] == "2000-01-01T00:00:00+00:00"


GOOD = {"temp": 20.5, "color": "red", "note": "hi", "at": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    "row",
    [
        GOOD,
        {**GOOD, "n": None, "ok": None, "tag": "zzz"},
        {**GOOD, "temp": 131},
        {**GOOD, "n": -1},
        {**GOOD, "color": "green"},
        {**GOOD, "note": "toolong"},
        {**GOOD, "ok": 3},
        {k: v for k, v in GOOD.items() if k != "temp"},
        {**GOOD, "extra": 1},
        {**GOOD, "temp": None},
    ],
)
def test_schema_agrees_with_the_row_validator(row: dict[str, Any]) -> None:
    assert _accepts(json_schema(CONTRACT), row) == RowValidator(CONTRACT).validate_row(row).ok


def test_nullable_enum_lists_null_and_extra_allowed() -> None:
    contract = fl.Contract({"c": fl.Category(["a"], nullable=True)})
    schema = json_schema(contract)
    assert schema["properties"]["c"]["enum"] == ["a", None]
    assert schema["additionalProperties"] is True and schema["required"] == []


STRICT_CASES = [
    ({**GOOD, "temp": "20.5"}, "type"),  # a numeric string is not a number
    ({**GOOD, "n": 8.0}, None),  # an integral float is an integer (as in JSON Schema)
    ({**GOOD, "n": 8.5}, "type"),
    ({**GOOD, "ok": 1}, "type"),  # 0/1 are not booleans
    ({**GOOD, "ok": "true"}, "type"),
    ({**GOOD, "color": 3}, "type"),
    ({**GOOD, "n": True}, "type"),
]


@pytest.mark.parametrize(("row", "rule"), STRICT_CASES)
def test_requests_are_read_as_strictly_as_the_schema_and_leniently_on_request(
    row: dict[str, Any], rule: str | None
) -> None:
    import jsonschema

    from fourloops.contracts import compile_contract

    strict = compile_contract(CONTRACT, requests=True).row
    result = strict.validate_row(row)
    schema_ok = jsonschema.Draft202012Validator(
        json_schema(CONTRACT), format_checker=jsonschema.FormatChecker()
    ).is_valid(row)
    assert schema_ok == (rule is None) == result.ok, (row, result.violations)
    if rule is not None:
        assert set(result.violations.values()) == {rule}
    lenient_contract = fl.Contract(CONTRACT.fields, extra="forbid", lenient=True)
    assert (
        compile_contract(lenient_contract, requests=True)
        .row.validate_row({**GOOD, "temp": "20.5", "ok": 1})
        .ok
    )
    assert lenient_contract.version != CONTRACT.version and "lenient" not in CONTRACT.to_dict()
