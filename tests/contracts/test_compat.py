from __future__ import annotations

from datetime import UTC, datetime

import pytest

import fourloops as fl
from fourloops.contracts import Change, diff_contracts


def diff(old: dict[str, fl.Field], new: dict[str, fl.Field], **kw: object) -> list[Change]:
    old_kw = {k[4:]: v for k, v in kw.items() if k.startswith("old_")}
    new_kw = {k[4:]: v for k, v in kw.items() if k.startswith("new_")}
    a = fl.Contract(old, **old_kw).to_dict()  # type: ignore[arg-type]
    b = fl.Contract(new, **new_kw).to_dict()  # type: ignore[arg-type]
    return diff_contracts(a, b)


def one(old: fl.Field, new: fl.Field) -> tuple[bool, str]:
    changes = diff({"temp": old}, {"temp": new})
    assert len(changes) == 1, changes
    return changes[0].breaking, changes[0].message


def test_identical_contracts_have_no_changes() -> None:
    assert diff({"temp": fl.Float(max=1)}, {"temp": fl.Float(max=1)}) == []


@pytest.mark.parametrize(
    ("old", "new", "breaking", "message"),
    [
        (
            fl.Float(max=130),
            fl.Float(max=120),
            True,
            "field 'temp': max lowered from 130.0 to 120.0",
        ),
        (
            fl.Float(max=120),
            fl.Float(max=130),
            False,
            "field 'temp': max raised from 120.0 to 130.0",
        ),
        (fl.Float(min=0), fl.Float(min=1), True, "field 'temp': min raised from 0.0 to 1.0"),
        (fl.Float(min=1), fl.Float(min=0), False, "field 'temp': min lowered from 1.0 to 0.0"),
        (fl.Float(), fl.Float(min=0), True, "field 'temp': min 0.0 added"),
        (fl.Float(max=5), fl.Float(), False, "field 'temp': max 5.0 removed"),
        (fl.Float(), fl.Int(), True, "field 'temp': type changed from float to int"),
        (fl.Float(nullable=True), fl.Float(), True, "field 'temp': no longer nullable"),
        (fl.Float(), fl.Float(nullable=True), False, "field 'temp': now nullable"),
        (fl.Float(default=1.0), fl.Float(), True, "field 'temp': default 1.0 removed"),
        (fl.Float(), fl.Float(default=1.0), False, "field 'temp': default 1.0 added"),
        (
            fl.Float(allow_inf=True),
            fl.Float(),
            True,
            "field 'temp': infinite values no longer allowed",
        ),
        (fl.Float(), fl.Float(allow_inf=True), False, "field 'temp': infinite values now allowed"),
        (
            fl.String(max_length=5),
            fl.String(max_length=4),
            True,
            "field 'temp': max_length lowered from 5 to 4",
        ),
        (fl.String(), fl.String(max_length=4), True, "field 'temp': max_length 4 added"),
        (fl.String(max_length=4), fl.String(), False, "field 'temp': max_length 4 removed"),
        (
            fl.Category(["a", "b"]),
            fl.Category(["a"]),
            True,
            "field 'temp': categories removed: 'b'",
        ),
        (fl.Category(["a"]), fl.Category(["a", "b"]), False, "field 'temp': categories added: 'b'"),
        (
            fl.Category(["a"], unknown="map"),
            fl.Category(["a"]),
            True,
            "field 'temp': unknown policy changed from map to reject",
        ),
        (
            fl.Category(["a"]),
            fl.Category(["a"], unknown="flag"),
            False,
            "field 'temp': unknown policy changed from reject to flag",
        ),
        (
            fl.Timestamp(max=datetime(2030, 1, 1, tzinfo=UTC)),
            fl.Timestamp(max=datetime(2029, 1, 1, tzinfo=UTC)),
            True,
            "field 'temp': max lowered from 2030-01-01T00:00:00+00:00 to 2029-01-01T00:00:00+00:00",
        ),
    ],
)
def test_field_changes(old: fl.Field, new: fl.Field, breaking: bool, message: str) -> None:
    assert one(old, new) == (breaking, message)


def test_not_nullable_with_default_is_not_breaking() -> None:
    changes = diff({"temp": fl.Int(nullable=True)}, {"temp": fl.Int(default=0)})
    assert [(c.breaking, c.message) for c in changes] == [
        (False, "field 'temp': no longer nullable"),
        (False, "field 'temp': default 0 added"),
    ]


def test_fields_added_and_removed() -> None:
    changes = diff(
        {"a": fl.Int(), "gone": fl.Int()},
        {"a": fl.Int(), "req": fl.Int(), "opt": fl.Int(nullable=True), "dflt": fl.Int(default=1)},
    )
    assert [(c.field, c.kind, c.breaking, c.message) for c in changes] == [
        ("gone", "removed", True, "field 'gone': removed"),
        ("req", "added", True, "field 'req': added (required)"),
        ("opt", "added", False, "field 'opt': added (nullable)"),
        ("dflt", "added", False, "field 'dflt': added (with default)"),
    ]


def test_contract_wide_changes() -> None:
    changes = diff(
        {"a": fl.Int()},
        {"a": fl.Int()},
        old_null_tokens=["", "NaN"],
        new_null_tokens=["NA"],
        old_extra="allow",
        new_extra="forbid",
    )
    assert [(c.field, c.breaking, c.message) for c in changes] == [
        (None, True, "null token '' removed"),
        (None, True, "null token 'NaN' removed"),
        (None, False, "null token 'NA' added"),
        (None, True, "NaN no longer counts as null"),
        (None, True, "extra columns changed from allow to forbid"),
    ]
    loosened = diff({"a": fl.Int()}, {"a": fl.Int()}, old_extra="forbid", new_null_tokens=["NaN"])
    assert [(c.breaking, c.message) for c in loosened] == [
        (False, "null token 'NaN' added"),
        (False, "NaN now counts as null"),
        (False, "extra columns changed from forbid to allow"),
    ]
