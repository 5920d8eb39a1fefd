"""The per-row (per-request) validator of a contract.

:class:`RowValidator` applies, to one mapping of field -> value, exactly the
rules that :class:`~fourloops.contracts.batch.BatchValidator` applies to a
table; the parity is tested with random contracts and data.

Semantics (shared with the batch validator)
-------------------------------------------
Each field breaks at most one rule, the first in :class:`~fourloops.Rule`
order: ``missing`` -> ``unknown_field`` -> ``type`` -> ``timezone`` -> ``nan``
-> ``infinite`` -> ``not_null`` -> ``min`` -> ``max`` -> ``category`` ->
``max_length``.

* *Absent* key/column: ``missing`` when the field is non-nullable without a
  default; otherwise it reads as null (so adding a nullable field to a contract
  never breaks an existing source).
* *Null*: ``None``; a string exactly equal to a null token (any field type); a
  float NaN (including a NaN parsed from a string in a Float field) when the
  contract declares NaN as null. A null takes the default when there is one
  (counted as *defaulted*), passes as ``None`` when the field is nullable, and
  otherwise breaks ``not_null``.
* *Float*: ints and floats (not bools) and numeric strings (``1``, ``-.5e3``,
  ``inf``, ``NaN``, any case). NaN -> ``nan``; +/-inf -> ``infinite`` unless
  ``allow_inf``; then inclusive ``min``/``max``.
* *Int*: int64 ints (not bools), finite integral floats, strings of digits with
  an optional sign, within int64. A non-null NaN -> ``nan``; anything else
  unreadable (``inf``, ``2.5``, ``"2.0"``) -> ``type``.
* *Bool*: bools, the ints 0/1, the strings true/false/1/0 in any case.
* *Category*: strings; an unknown value breaks ``category`` (reject), is kept
  and counted (flag) or becomes ``"__unknown__"`` and is counted (map).
* *String*: strings; ``max_length`` counts characters.
* *Timestamp*: aware datetimes, and ISO-8601 strings
  ``YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]]`` ending in ``Z``, ``+HH:MM`` or
  ``+HHMM``; normalised to UTC, microseconds. Naive values -> ``timezone``.
  Impossible dates or instants outside years 1-9999 (UTC) -> ``type``.
* Extra keys: passed through with ``extra="allow"``; with ``extra="forbid"``
  each breaks ``unknown_field``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fourloops.contracts._common import (
    BOOL_STRINGS,
    COMPILED_FLOAT,
    COMPILED_FLOAT_SPECIAL,
    COMPILED_INT,
    COMPILED_TIMESTAMP,
    DEFAULTED,
    FIRST_RULE,
    INT64_MAX,
    INT64_MIN,
    NULL,
    OK,
    RULE_BY_CODE,
    RULE_CODE,
    TS_MAX_US,
    TS_MIN_US,
    UNKNOWN,
    epoch_us,
)
from fourloops.contracts._messages import describe
from fourloops.definitions.contract import Contract, ExtraPolicy
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
from fourloops.errors import ContractViolation, DefinitionError

__all__ = ["RowResult", "RowValidator"]

#: A compiled field check: raw value -> (status or rule code, normalised value).
Check = Callable[[Any], tuple[int, Any]]

_TYPE = RULE_CODE[Rule.TYPE]
_TIMEZONE = RULE_CODE[Rule.TIMEZONE]
_NAN = RULE_CODE[Rule.NAN]
_INFINITE = RULE_CODE[Rule.INFINITE]
_NOT_NULL = RULE_CODE[Rule.NOT_NULL]
_MIN = RULE_CODE[Rule.MIN]
_MAX = RULE_CODE[Rule.MAX]
_CATEGORY = RULE_CODE[Rule.CATEGORY]
_MAX_LENGTH = RULE_CODE[Rule.MAX_LENGTH]
_MISSING = RULE_CODE[Rule.MISSING]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class RowResult:
    """Outcome of validating one row.

    ``values`` holds the normalised value of every field that passed (and the
    extra keys, unchanged, under ``extra="allow"``); ``violations`` maps each
    failing field to the rule it broke.
    """

    ok: bool
    values: dict[str, Any]
    violations: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)


def _null_outcome(f: Field) -> tuple[int, Any]:
    """What a null becomes in field ``f``: its default, ``None`` or ``not_null``."""
    if f.default is not None:
        return DEFAULTED, f.default
    return (NULL, None) if f.nullable else (_NOT_NULL, None)


def _absent_outcome(f: Field) -> tuple[int, Any]:
    """What an absent key/column becomes: ``missing`` only for required fields."""
    if f.default is None and not f.nullable:
        return _MISSING, None
    return _null_outcome(f)


def _parse_timestamp(text: str) -> tuple[int, Any]:
    """Parse an ISO-8601 string into (code, aware UTC datetime)."""
    m = COMPILED_TIMESTAMP.fullmatch(text)
    if m is None:
        return _TYPE, text
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        local = datetime(
            int(y), int(mo), int(d), int(h), int(mi), int(s or 0), int((frac or "0").ljust(6, "0"))
        )
    except ValueError:
        return _TYPE, text
    if off is None:
        return _TIMEZONE, text
    offset_min = 0
    if off != "Z":
        oh, om = int(off[1:3]), int(off[-2:])
        if oh > 23 or om > 59:
            return _TYPE, text
        offset_min = (oh * 60 + om) * (-1 if off[0] == "-" else 1)
    us = epoch_us(local.replace(tzinfo=UTC)) - offset_min * 60_000_000
    if us < TS_MIN_US or us > TS_MAX_US:
        return _TYPE, text
    return OK, _EPOCH + timedelta(microseconds=us)


def _compile_check(f: Field, contract: Contract, *, strict: bool = False) -> Check:
    """Compile one field of ``contract`` into a fast check closure."""
    if strict:  # the lenient rules without null tokens, behind a check of the JSON type
        plain = Contract(
            contract.fields, null_tokens=[math.nan] if contract.nan_is_null else [], extra=contract.extra
        )
        return _strict_check(f, _compile_check(f, plain))
    tokens = frozenset(contract.null_tokens)
    nan_null = contract.nan_is_null
    on_null = _null_outcome(f)

    if isinstance(f, Float):
        lo, hi, allow_inf = f.min, f.max, f.allow_inf

        def check(v: Any) -> tuple[int, Any]:
            if v is None:
                return on_null
            if isinstance(v, float):
                x = v
            elif isinstance(v, bool):
                return _TYPE, v
            elif isinstance(v, int):
                try:
                    x = float(v)
                except OverflowError:
                    return _TYPE, v
            elif isinstance(v, str):
                if v in tokens:
                    return on_null
                if COMPILED_FLOAT.fullmatch(v) or COMPILED_FLOAT_SPECIAL.fullmatch(v):
                    x = float(v)
                else:
                    return _TYPE, v
            else:
                return _TYPE, v
            if x != x:
                return on_null if nan_null else (_NAN, x)
            if not allow_inf and (x == math.inf or x == -math.inf):
                return _INFINITE, x
            if lo is not None and x < lo:
                return _MIN, x
            if hi is not None and x > hi:
                return _MAX, x
            return OK, x

        return check

    if isinstance(f, Int):
        ilo, ihi = f.min, f.max

        def check(v: Any) -> tuple[int, Any]:
            if v is None:
                return on_null
            if isinstance(v, bool):
                return _TYPE, v
            if isinstance(v, int):
                x = v
            elif isinstance(v, float):
                if v != v:
                    return on_null if nan_null else (_NAN, v)
                if not math.isfinite(v) or not v.is_integer() or not -(2.0**63) <= v < 2.0**63:
                    return _TYPE, v
                x = int(v)
            elif isinstance(v, str):
                if v in tokens:
                    return on_null
                if not COMPILED_INT.fullmatch(v):
                    return _TYPE, v
                sign = "-" if v[0] == "-" else ""
                digits = v.lstrip("+-").lstrip("0")
                if len(digits) > 19:
                    return _TYPE, v
                x = int(sign + (digits or "0"))
            else:
                return _TYPE, v
            if x < INT64_MIN or x > INT64_MAX:
                return _TYPE, v
            if ilo is not None and x < ilo:
                return _MIN, x
            if ihi is not None and x > ihi:
                return _MAX, x
            return OK, x

        return check

    if isinstance(f, Bool):

        def check(v: Any) -> tuple[int, Any]:
            if v is None:
                return on_null
            if isinstance(v, bool):
                return OK, v
            if isinstance(v, int):
                return (OK, v == 1) if v in (0, 1) else (_TYPE, v)
            if isinstance(v, str):
                if v in tokens:
                    return on_null
                b = BOOL_STRINGS.get(v.lower())
                return (_TYPE, v) if b is None else (OK, b)
            if nan_null and isinstance(v, float) and v != v:
                return on_null
            return _TYPE, v

        return check

    if isinstance(f, Category):
        cats = frozenset(f.categories)
        policy = f.unknown

        def check(v: Any) -> tuple[int, Any]:
            if v is None:
                return on_null
            if isinstance(v, str):
                if v in tokens:
                    return on_null
                if v in cats:
                    return OK, v
                if policy is UnknownPolicy.REJECT:
                    return _CATEGORY, v
                return UNKNOWN, (UNKNOWN_CATEGORY if policy is UnknownPolicy.MAP else v)
            if nan_null and isinstance(v, float) and v != v:
                return on_null
            return _TYPE, v

        return check

    if isinstance(f, String):
        max_length = f.max_length

        def check(v: Any) -> tuple[int, Any]:
            if v is None:
                return on_null
            if isinstance(v, str):
                if v in tokens:
                    return on_null
                if max_length is not None and len(v) > max_length:
                    return _MAX_LENGTH, v
                return OK, v
            if nan_null and isinstance(v, float) and v != v:
                return on_null
            return _TYPE, v

        return check

    if isinstance(f, Timestamp):
        tlo = None if f.min is None else epoch_us(f.min)
        thi = None if f.max is None else epoch_us(f.max)

        def check(v: Any) -> tuple[int, Any]:
            if v is None:
                return on_null
            if isinstance(v, datetime):
                if v.tzinfo is None or v.utcoffset() is None:
                    return _TIMEZONE, v
                try:
                    us = epoch_us(v)
                except OverflowError:  # pragma: no cover - outside datetime's range
                    return _TYPE, v
                if us < TS_MIN_US or us > TS_MAX_US:
                    return _TYPE, v
                x = _EPOCH + timedelta(microseconds=us)
            elif isinstance(v, str):
                if v in tokens:
                    return on_null
                code, x = _parse_timestamp(v)
                if code != OK:
                    return code, x
                us = epoch_us(x)
            elif nan_null and isinstance(v, float) and v != v:
                return on_null
            else:  # includes plain dates: a day is not an instant
                return _TYPE, v
            if tlo is not None and us < tlo:
                return _MIN, x
            if thi is not None and us > thi:
                return _MAX, x
            return OK, x

        return check

    raise DefinitionError(f"cannot compile field type {type(f).__name__}")  # pragma: no cover


def _strict_check(f: Field, lenient: Check) -> Check:
    """A JSON request's check: only the JSON types the schema allows reach the lenient rules.

    Float and Int take JSON numbers (not booleans; an Int takes integral
    floats, as JSON Schema's ``integer`` does), Bool takes JSON booleans, the
    others take strings (a Timestamp also a datetime, for Python callers). A
    string is never a null token here: JSON says null with ``null``.
    """
    if isinstance(f, Float | Int):

        def number(v: Any) -> tuple[int, Any]:
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                return _TYPE, v
            return lenient(v)

        if isinstance(f, Float) and f.min is None and f.max is None and not f.allow_inf:

            def unbounded(v: Any) -> tuple[int, Any]:  # the common request field, in one call
                if type(v) is float and v - v == 0.0:  # finite (inf - inf and nan - nan are nan)
                    return OK, v
                return number(v)

            return unbounded
        return number
    if isinstance(f, Bool):

        def flag(v: Any) -> tuple[int, Any]:
            if v is not None and not isinstance(v, bool):
                return _TYPE, v
            return lenient(v)

        return flag
    allowed: tuple[type, ...] = (str, datetime) if isinstance(f, Timestamp) else (str,)
    on_null = _null_outcome(f)

    def text(v: Any) -> tuple[int, Any]:
        if v is None:
            return on_null
        if not isinstance(v, allowed):
            return _TYPE, v
        return lenient(v)

    return text


class RowValidator:
    """Validates one row or request at a time, in microseconds.

    >>> import fourloops as fl
    >>> from fourloops.contracts import RowValidator
    >>> v = RowValidator(fl.Contract({"temp": fl.Float(max=130)}, null_tokens=["NA"]))
    >>> v.validate_row({"temp": "12.5"}).values
    {'temp': 12.5}
    >>> v.validate_row({"temp": 140}).violations
    {'temp': 'max'}
    """

    def __init__(self, contract: Contract, *, strict: bool = False) -> None:
        self.contract = contract
        #: ``strict``: read JSON requests by their JSON types only (see :class:`~fourloops.Contract`).
        self.strict = strict
        self._plan = [
            (name, _compile_check(f, contract, strict=strict), _absent_outcome(f))
            for name, f in contract.fields.items()
        ]
        self._names = frozenset(contract.fields)
        self._forbid = contract.extra is ExtraPolicy.FORBID

    def __repr__(self) -> str:
        return f"RowValidator({self.contract!r})"

    def _run(self, row: Mapping[str, Any]) -> tuple[RowResult, dict[str, Any]]:
        values: dict[str, Any] = {}
        violations: dict[str, str] = {}
        failed: dict[str, Any] = {}
        unknown: list[str] = []
        defaulted: list[str] = []
        for name, check, absent in self._plan:
            code, value = check(row[name]) if name in row else absent
            if code >= FIRST_RULE:
                violations[name] = RULE_BY_CODE[code].value
                failed[name] = value
                continue
            values[name] = value
            if code == UNKNOWN:
                unknown.append(name)
            elif code == DEFAULTED:
                defaulted.append(name)
        if self._forbid or not self._names.issuperset(row):
            for key, value in row.items():
                if key not in self._names:
                    if self._forbid:
                        violations[key] = Rule.UNKNOWN_FIELD.value
                        failed[key] = value
                    else:
                        values[key] = value
        result = RowResult(not violations, values, violations, unknown, defaulted)
        return result, failed

    def validate_row(self, row: Mapping[str, Any]) -> RowResult:
        """Validate one mapping of field -> value; never raises on bad data."""
        return self._run(row)[0]

    def check_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Return the normalised values, or raise :class:`ContractViolation`.

        The message names every failing field and rule on one line, e.g.
        ``temp: max (value 140.0 > 130.0); city: missing``.
        """
        result, failed = self._run(row)
        if result.ok:
            return result.values
        fields = self.contract.fields
        message = "; ".join(
            f"{_shown(name)}: {describe(fields.get(name), Rule(rule), failed[name])}"
            for name, rule in result.violations.items()
        )
        raise ContractViolation(message, dict(result.violations))


def _shown(name: str) -> str:
    """A field name as the message shows it: quoted when it is empty or holds a line break or
    another control character (unknown names come from clients; the message stays one line)."""
    return name if name and name.isprintable() else repr(name)
