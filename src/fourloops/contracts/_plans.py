"""Polars expressions that read one column as one contract field.

A :class:`Plan` says, for a column of a given physical type, which values are
null, which rule each non-null value breaks (conditions in :class:`Rule`
order) and what the normalised value is. The batch validator derives from the
same plan both the cheap "is this row bad" mask over all rows and the exact
per-rule codes over the (few) bad rows, so the two cannot disagree. The
semantics mirror :mod:`fourloops.contracts.row` value for value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

import polars as pl

from fourloops.contracts._common import (
    DEFAULTED,
    FLOAT_PATTERN,
    FLOAT_SPECIAL_PATTERN,
    INT_PATTERN,
    NULL,
    OK,
    RULE_CODE,
    TIMESTAMP_PATTERN,
    TS_MAX_US,
    TS_MIN_US,
    UNKNOWN,
    epoch_us,
)
from fourloops.definitions.contract import Contract
from fourloops.definitions.fields import (
    UNKNOWN_CATEGORY,
    Bool,
    Category,
    Field,
    Float,
    Int,
    Rule,
    String,
    Timestamp,
    UnknownPolicy,
)

__all__ = ["Plan", "output_dtype", "plan_absent", "plan_column"]

_TRUE = pl.lit(True)
_FALSE = pl.lit(False)


def output_dtype(f: Field) -> pl.DataType:
    """The normalised Polars type of a field."""
    if isinstance(f, Float):
        return pl.Float64()
    if isinstance(f, Int):
        return pl.Int64()
    if isinstance(f, Bool):
        return pl.Boolean()
    if isinstance(f, Timestamp):
        return pl.Datetime("us", "UTC")
    return pl.String()


@dataclass
class Plan:
    """How one column is read as one field (see the module docstring)."""

    null: pl.Expr  # True where the value is null; never null itself
    checks: list[tuple[Rule, pl.Expr]]  # for non-null values, in rule order
    value: pl.Expr  # normalised value where non-null and no check fires
    null_code: int  # status or rule code of a null
    default: pl.Expr  # what a null becomes (typed null when no default)
    unknown: pl.Expr | None = None  # flag/map: True where the category is unknown
    map_unknown: bool = False
    absent: bool = False
    plain_null: bool = False  # null is exactly "the raw value is null"
    column: str | None = None  # the input column read
    in_range: pl.Expr | None = None  # typed numbers: True iff no check fires (null on null)

    def bad(self) -> pl.Expr:
        """True where the value breaks a rule."""
        fails_on_null = self.null_code >= RULE_CODE[Rule.MISSING]
        if self.in_range is not None and self.plain_null:  # one kernel instead of four
            return (~self.in_range).fill_null(fails_on_null)
        checks = [cond for _, cond in self.checks]
        any_check = reduce(lambda a, b: a | b, checks) if checks else _FALSE
        if fails_on_null:
            return (self.null | any_check).fill_null(False)
        return (~self.null & any_check).fill_null(False)

    def code(self) -> pl.Expr:
        """Status (< 10) or rule code (>= 10) of every value, as UInt8."""
        ok: pl.Expr = pl.lit(OK)
        if self.unknown is not None:
            ok = pl.when(self.unknown).then(pl.lit(UNKNOWN)).otherwise(pl.lit(OK))
        chain: Any = pl.when(self.null).then(pl.lit(self.null_code))
        for rule, cond in self.checks:
            chain = chain.when(cond).then(pl.lit(RULE_CODE[rule]))
        codes: pl.Expr = chain.otherwise(ok).cast(pl.UInt8)
        return codes

    def output(self) -> pl.Expr:
        """The normalised value, meaningful on rows where the field passed."""
        value = self.value
        if self.map_unknown and self.unknown is not None:
            value = pl.when(self.unknown).then(pl.lit(UNKNOWN_CATEGORY)).otherwise(value)
        if self.plain_null:  # the value is already null exactly where it is null
            return value if self.null_code != DEFAULTED else value.fill_null(self.default)
        return pl.when(self.null).then(self.default).otherwise(value)


def _default_expr(f: Field) -> pl.Expr:
    return pl.lit(f.default, dtype=output_dtype(f))


def _null_code(f: Field) -> int:
    if f.default is not None:
        return DEFAULTED
    return NULL if f.nullable else RULE_CODE[Rule.NOT_NULL]


def plan_absent(f: Field) -> Plan:
    """Plan for a contract field whose column is absent."""
    required = f.default is None and not f.nullable
    code = RULE_CODE[Rule.MISSING] if required else _null_code(f)
    typed_null = pl.lit(None, dtype=output_dtype(f))
    return Plan(_TRUE, [], typed_null, code, _default_expr(f), absent=True)


def _kind(dtype: pl.DataType) -> str:
    if dtype == pl.Null:
        return "null"
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "str"
    if isinstance(dtype, pl.Datetime):
        return "naive" if dtype.time_zone is None else "aware"
    return "other"


def _bounds(x: pl.Expr, lo: Any, hi: Any) -> list[tuple[Rule, pl.Expr]]:
    out: list[tuple[Rule, pl.Expr]] = []
    if lo is not None:
        out.append((Rule.MIN, x < lo))
    if hi is not None:
        out.append((Rule.MAX, x > hi))
    return out


def plan_column(name: str, f: Field, dtype: pl.DataType, contract: Contract) -> Plan:
    """Plan for a contract field read from column ``name`` of type ``dtype``."""
    kind = _kind(dtype)
    col = raw = pl.col(name)
    if kind == "str":
        # Membership tests run on a Categorical's codes; only values are decoded.
        col = col.cast(pl.String)
        raw = raw if dtype == pl.Categorical else col
    elif kind == "float":
        col = col.cast(pl.Float64)
    out = output_dtype(f)
    null = raw.is_null()
    if kind == "str" and contract.null_tokens:
        null = null | raw.is_in(contract.null_tokens)
    nan_null = contract.nan_is_null and kind == "float"
    if nan_null:
        null = null | col.is_nan()
    typed_null = pl.lit(None, dtype=out)
    plan = Plan(null, [(Rule.TYPE, _TRUE)], typed_null, _null_code(f), _default_expr(f))
    plan.plain_null = not nan_null and not (kind == "str" and contract.null_tokens)
    plan.column = name

    if isinstance(f, Float):
        if kind in ("int", "float"):
            x = col.cast(pl.Float64)
            plan.checks = []
        elif kind == "str":
            readable = col.str.contains(FLOAT_PATTERN) | col.str.contains(FLOAT_SPECIAL_PATTERN)
            x = pl.when(readable).then(col.cast(pl.Float64, strict=False))
            plan.checks = [(Rule.TYPE, ~readable)]
            if contract.nan_is_null:
                plan.null = null | (readable & x.is_nan())
                plan.plain_null = False
        else:
            return plan
        if not contract.nan_is_null and kind != "int":
            plan.checks.append((Rule.NAN, x.is_nan()))
        if not f.allow_inf and kind != "int":
            plan.checks.append((Rule.INFINITE, x.is_infinite()))
        plan.checks += _bounds(x, f.min, f.max)
        plan.value = x
        finite = all(b is not None and abs(b) < float("inf") for b in (f.min, f.max))
        if finite and kind in ("int", "float") and not contract.nan_is_null and not f.allow_inf:
            # Polars orders NaN above every number, so NaN and +/-inf fall outside.
            plan.in_range = x.is_between(f.min, f.max)
    elif isinstance(f, Int):
        if kind == "int":
            x = col.cast(pl.Int64, strict=False)
            plan.checks = [(Rule.TYPE, x.is_null())] if dtype == pl.UInt64 else []
            if dtype != pl.UInt64 and f.min is not None and f.max is not None:
                plan.in_range = x.is_between(f.min, f.max)
        elif kind == "float":
            fine = col.is_finite() & (col == col.floor()) & (col >= -(2.0**63)) & (col < 2.0**63)
            x = pl.when(fine).then(col.cast(pl.Int64, strict=False))
            plan.checks = [] if nan_null else [(Rule.NAN, col.is_nan())]
            plan.checks.insert(0, (Rule.TYPE, ~fine & ~col.is_nan()))
        elif kind == "str":
            x = pl.when(col.str.contains(INT_PATTERN)).then(col.cast(pl.Int64, strict=False))
            plan.checks = [(Rule.TYPE, x.is_null())]
        else:
            return plan
        plan.checks += _bounds(x, f.min, f.max)
        plan.value = x
    elif isinstance(f, Bool):
        if kind == "bool":
            plan.checks, plan.value = [], col
        elif kind == "int":
            plan.checks, plan.value = [(Rule.TYPE, ~col.is_in([0, 1]))], col == 1
        elif kind == "str":
            low = col.str.to_lowercase()
            plan.checks = [(Rule.TYPE, ~low.is_in(["true", "false", "1", "0"]))]
            plan.value = low.is_in(["true", "1"])
    elif isinstance(f, Category | String) and kind == "str":
        # A Categorical stays Categorical: decoding millions of values is slow.
        plan.checks, plan.value = [], raw if isinstance(f, Category) else col
        if isinstance(f, String) and f.max_length is not None:
            plan.checks = [(Rule.MAX_LENGTH, col.str.len_chars() > f.max_length)]
        if isinstance(f, Category):
            unknown = ~raw.is_in(f.categories)
            if f.unknown is UnknownPolicy.REJECT:
                plan.checks = [(Rule.CATEGORY, unknown)]
            else:
                plan.unknown = unknown
                plan.map_unknown = f.unknown is UnknownPolicy.MAP
    elif isinstance(f, Timestamp):
        if kind == "naive":
            plan.checks = [(Rule.TIMEZONE, _TRUE)]
            return plan
        if kind == "aware":
            us = col.dt.cast_time_unit("us").dt.epoch("us")
            plan.checks = [(Rule.TYPE, (us < TS_MIN_US) | (us > TS_MAX_US))]
        elif kind == "str":
            us, type_bad, has_offset = _parse_timestamps(col)
            plan.checks = [(Rule.TYPE, type_bad), (Rule.TIMEZONE, ~has_offset)]
        else:
            return plan
        lo = None if f.min is None else epoch_us(f.min)
        hi = None if f.max is None else epoch_us(f.max)
        plan.checks += _bounds(us, lo, hi)
        plan.value = us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return plan


def _days_from_civil(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    """Days since 1970-01-01 of a proleptic Gregorian date (integer arithmetic)."""
    y = y - (m <= 2).cast(pl.Int64)
    era = y // 400
    yoe = y - era * 400
    mp = pl.when(m > 2).then(m - 3).otherwise(m + 9)
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _parse_timestamps(col: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(epoch microseconds, type error, has offset) of ISO-8601 strings."""
    g = col.str.extract_groups(TIMESTAMP_PATTERN)

    def part(i: int) -> pl.Expr:
        return g.struct.field(str(i)).cast(pl.Int64)

    y, mo, d, h, mi = (part(i) for i in range(1, 6))
    s = part(6).fill_null(0)
    frac = g.struct.field("7").str.pad_end(6, "0").cast(pl.Int64).fill_null(0)
    off = g.struct.field("8")
    has_offset = off.is_not_null()
    zulu = off == "Z"
    oh = pl.when(zulu).then(0).otherwise(off.str.slice(1, 2).cast(pl.Int64, strict=False))
    om = pl.when(zulu).then(0).otherwise(off.str.slice(-2, 2).cast(pl.Int64, strict=False))
    sign = pl.when(off.str.starts_with("-")).then(-1).otherwise(1)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = pl.when(mo == 2).then(28 + leap.cast(pl.Int64)).when(mo.is_in([4, 6, 9, 11])).then(30).otherwise(31)
    fields_ok = (
        (y >= 1) & mo.is_between(1, 12) & d.is_between(1, dim) & (h <= 23) & (mi <= 59) & (s <= 59)
    ).fill_null(False)
    local_us = (
        _days_from_civil(y, mo, d) * 86_400_000_000
        + h * 3_600_000_000
        + mi * 60_000_000
        + s * 1_000_000
        + frac
    )
    us = local_us - sign * (oh * 60 + om) * 60_000_000
    offset_ok = ((oh <= 23) & (om <= 59) & us.is_between(TS_MIN_US, TS_MAX_US)).fill_null(False)
    type_bad = ~fields_ok | (has_offset & ~offset_ok)
    return us, type_bad, has_offset
