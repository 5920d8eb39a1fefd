"""The batch and the row validator agree on random contracts and random data."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fourloops as fl
from fourloops.contracts import compile_contract

CATEGORIES = ["a", "b", "c", "NA", ""]
TOKENS = ["", "NA", "NaN", "nan", "null"]
T0 = datetime(2000, 1, 1, tzinfo=UTC)
STRINGS = [
    "",
    "NA",
    "NaN",
    "nan",
    "null",
    "a",
    "b",
    "c",
    "zz",
    "abcdefghij",
    "0",
    "1",
    "-1",
    "+7",
    "007",
    "3.0",
    "1e3",
    "-.5",
    "5.",
    "1e999",
    "inf",
    "-Infinity",
    "true",
    "FALSE",
    "True ",
    " 1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "2024-01-02T03:04:05Z",
    "2024-01-02 03:04:05.5+05:30",
    "2024-01-02T03:04-0800",
    "2024-01-02T03:04:05",
    "2024-02-30T00:00Z",
    "2024-02-29T23:59:59.999999+00:00",
    "0001-01-01T00:00+01:00",
    "9999-12-31T23:59-01:00",
    "2000-01-01T00:00+24:00",
    "2000-01-01T24:00Z",
    "1999-12-31T23:00:00-01:00",
    "2024-01-02t03:04Z",
    "é",
    "١٢",
]
FLOATS = [
    0.0,
    -0.0,
    1.0,
    3.0,
    -2.5,
    1e300,
    -1e300,
    9.223372036854776e18,
    -9.223372036854776e18,
    math.nan,
    math.inf,
    -math.inf,
    100.0,
    -100.0,
]
INTS = [0, 1, 2, -1, 100, -100, 2**63 - 1, -(2**63), 10**12]


def _bound(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> tuple[Any, Any]:
    lo = draw(st.none() | values)
    hi = draw(st.none() | values)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return lo, hi


@st.composite
def fields(draw: st.DrawFn) -> fl.Field:
    kind = draw(st.sampled_from(["float", "int", "bool", "category", "string", "timestamp"]))
    nullable = draw(st.booleans())
    use_default = draw(st.booleans()) and kind != "timestamp"
    if kind == "float":
        lo, hi = _bound(draw, st.sampled_from([-50.0, 0, 1.5, 100]))
        default = draw(st.sampled_from([0.0, 1.5])) if use_default else None
        allow_inf = draw(st.booleans())
        return fl.Float(min=lo, max=hi, allow_inf=allow_inf, nullable=nullable, default=default)
    if kind == "int":
        lo, hi = _bound(draw, st.sampled_from([-5, 0, 2, 100]))
        default = draw(st.sampled_from([0, 7])) if use_default else None
        return fl.Int(min=lo, max=hi, nullable=nullable, default=default)
    if kind == "bool":
        return fl.Bool(nullable=nullable, default=True if use_default else None)
    if kind == "category":
        cats = draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True))
        unknown = draw(st.sampled_from(["reject", "flag", "map"]))
        default = cats[0] if use_default else None
        return fl.Category(cats, unknown=unknown, nullable=nullable, default=default)
    if kind == "string":
        max_length = draw(st.none() | st.integers(0, 4))
        return fl.String(max_length=max_length, nullable=nullable, default="x" if use_default else None)
    lo, hi = _bound(draw, st.sampled_from([T0 - timedelta(days=1), T0, T0 + timedelta(days=9000)]))
    return fl.Timestamp(min=lo, max=hi, nullable=nullable)


aware = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
naive = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1))
PHYSICAL: dict[str, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    "float64": (pa.float64(), st.sampled_from(FLOATS) | st.floats()),
    "float32": (pa.float32(), st.sampled_from([0.0, 1.0, 1.5, math.nan, math.inf])),
    "int64": (pa.int64(), st.sampled_from(INTS) | st.integers(-(2**63), 2**63 - 1)),
    "uint64": (pa.uint64(), st.sampled_from([0, 1, 2**63, 2**64 - 1])),
    "bool": (pa.bool_(), st.booleans()),
    "string": (pa.string(), st.sampled_from(STRINGS) | st.text(max_size=4)),
    "dictionary": (pa.dictionary(pa.int32(), pa.string()), st.sampled_from(STRINGS[:10])),
    "ts_utc": (pa.timestamp("us", tz="UTC"), aware),
    "ts_paris": (pa.timestamp("us", tz="Europe/Paris"), aware),
    "ts_naive": (pa.timestamp("us"), naive),
    "date": (pa.date32(), st.dates()),
    "null": (pa.null(), st.none()),
}


@st.composite
def cases(draw: st.DrawFn) -> tuple[fl.Contract, pa.Table]:
    names = draw(st.lists(st.sampled_from(["f0", "f1", "f2", "f3", "f4"]), min_size=1, unique=True))
    contract = fl.Contract(
        {name: draw(fields()) for name in names},
        null_tokens=draw(st.lists(st.sampled_from(TOKENS), unique=True, max_size=3)),
        extra=draw(st.sampled_from(["allow", "allow", "forbid"])),
    )
    n = draw(st.integers(0, 8))
    columns: dict[str, pa.Array] = {}
    for name in names:
        physical = draw(st.sampled_from([*PHYSICAL, "absent"]))
        if physical == "absent":
            continue
        pa_type, values = PHYSICAL[physical]
        data = draw(st.lists(st.none() | values, min_size=n, max_size=n))
        columns[name] = pa.array(data, type=pa_type)
    if draw(st.integers(0, 3)) == 0:
        columns["extra"] = pa.array(
            draw(st.lists(st.none() | st.integers(0, 5), min_size=n, max_size=n)), pa.int64()
        )
    if not columns:
        columns["extra"] = pa.array([1] * n, pa.int64())
    return contract, pa.table(columns)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b and a.utcoffset() == timedelta(0) == b.utcoffset()
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_batch_and_row_validators_agree(case: tuple[fl.Contract, pa.Table]) -> None:
    contract, table = case
    compiled = compile_contract(contract)
    batch = compiled.validate_batch(table)
    rows = [compiled.validate_row(row) for row in table.to_pylist()]

    failing = [i for i, r in enumerate(rows) if not r.ok]
    assert batch.quarantine.get_column("_fl_row").to_list() == failing
    for i, labels in zip(failing, batch.quarantine.get_column("_fl_violations").to_list(), strict=True):
        expected = sorted(f"{k}:{v}" for k, v in rows[i].violations.items())
        assert sorted(labels) == expected, (i, table.to_pylist()[i])

    passing = [r for r in rows if r.ok]
    assert batch.n_valid == len(passing) and batch.n_rows == table.num_rows
    for got, want in zip(batch.valid.to_dicts(), passing, strict=True):
        assert set(got) == set(want.values)
        for key, value in want.values.items():
            assert same(got[key], value), (key, got[key], value)

    counts = Counter((k, v) for r in rows for k, v in r.violations.items())
    assert batch.counts == dict(counts)
    unknown = Counter(name for r in rows for name in r.unknown)
    assert {k: v for k, v in batch.unknown.items() if v} == dict(unknown)
    defaulted = Counter(name for r in rows for name in r.defaulted)
    assert {k: v for k, v in batch.defaulted.items() if v} == dict(defaulted)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(STRINGS) | st.text(max_size=6), st.booleans())
def test_string_parsing_agrees_for_every_field_type(text: str, nan_is_null: bool) -> None:
    tokens = ["NA", "NaN"] if nan_is_null else ["NA"]
    contract = fl.Contract(
        {
            "f": fl.Float(allow_inf=True, nullable=True),
            "i": fl.Int(nullable=True),
            "b": fl.Bool(nullable=True),
            "t": fl.Timestamp(nullable=True),
            "s": fl.String(max_length=3, nullable=True),
        },
        null_tokens=tokens,
    )
    table = pa.table({name: pa.array([text]) for name in contract.fields})
    compiled = compile_contract(contract)
    batch = compiled.validate_batch(table)
    row = compiled.validate_row(table.to_pylist()[0])
    if row.ok:
        got = batch.valid.to_dicts()[0]
        assert all(same(got[k], v) for k, v in row.values.items())
    else:
        labels = batch.quarantine.get_column("_fl_violations").to_list()[0]
        assert sorted(labels) == sorted(f"{k}:{v}" for k, v in row.violations.items())


def test_fixed_offset_zone_rows_agree() -> None:
    tz = timezone(timedelta(hours=-3))
    contract = fl.Contract({"t": fl.Timestamp(min=datetime(2020, 1, 1, tzinfo=UTC))})
    table = pa.table(
        {"t": pa.array([datetime(2020, 1, 1, 1, tzinfo=tz), None], pa.timestamp("us", tz="UTC"))}
    )
    compiled = compile_contract(contract)
    batch = compiled.validate_batch(table)
    rows = [compiled.validate_row(r) for r in table.to_pylist()]
    assert [r.ok for r in rows] == [True, False]
    assert batch.valid.get_column("t").to_list() == [rows[0].values["t"]]
