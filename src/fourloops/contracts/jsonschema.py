"""The JSON Schema of one row of a contract (usable in OpenAPI 3.1).

The schema describes the canonical JSON form of a request: numbers for Float
and Int, booleans, strings for categories, text and timestamps (``date-time``).
The server reads requests by exactly these rules (the row validator in its
strict, request mode), so a client that checks a request against the schema
knows whether it will be accepted; a contract declared ``lenient=True`` also
takes numeric strings, 0/1 booleans and null tokens, as sources are read.
Fields that are nullable or have a default may be omitted or ``null``; the
others are required.
"""

from __future__ import annotations

from typing import Any

from fourloops.definitions.contract import Contract, ExtraPolicy
from fourloops.definitions.fields import (
    Bool,
    Category,
    Field,
    Float,
    Int,
    String,
    Timestamp,
    UnknownPolicy,
)

__all__ = ["json_schema", "field_schema"]


def _json_type(f: Field) -> str:
    if isinstance(f, Float):
        return "number"
    if isinstance(f, Int):
        return "integer"
    if isinstance(f, Bool):
        return "boolean"
    return "string"


def field_schema(f: Field) -> dict[str, Any]:
    """The JSON Schema of one field's value."""
    optional = f.nullable or f.default is not None
    json_type = _json_type(f)
    schema: dict[str, Any] = {"type": [json_type, "null"] if optional else json_type}
    if isinstance(f, Float | Int):
        if f.min is not None:
            schema["minimum"] = f.min
        if f.max is not None:
            schema["maximum"] = f.max
    elif isinstance(f, Timestamp):
        schema["format"] = "date-time"
        if f.min is not None:
            schema["formatMinimum"] = f.min.isoformat()
        if f.max is not None:
            schema["formatMaximum"] = f.max.isoformat()
    elif isinstance(f, Category) and f.unknown is UnknownPolicy.REJECT:
        schema["enum"] = [*f.categories, None] if optional else list(f.categories)
    elif isinstance(f, Category):
        schema["examples"] = list(f.categories)
    elif isinstance(f, String) and f.max_length is not None:
        schema["maxLength"] = f.max_length
    if f.default is not None:
        schema["default"] = f.default
    if f.description:
        schema["description"] = f.description
    return schema


def json_schema(contract: Contract) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12 / OpenAPI 3.1) of one row of ``contract``.

    >>> import fourloops as fl
    >>> json_schema(fl.Contract({"n": fl.Int(min=0)}))["properties"]
    {'n': {'type': 'integer', 'minimum': 0}}
    """
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: field_schema(f) for name, f in contract.fields.items()},
        "required": [name for name, f in contract.fields.items() if not f.nullable and f.default is None],
        "additionalProperties": contract.extra is ExtraPolicy.ALLOW,
    }
    if contract.description:
        schema["description"] = contract.description
    return schema
