"""Field types of a data contract: what one column (or request field) may hold.

Each field type is a small declarative object. Its constructor is its
configuration; ``to_dict`` gives the canonical form that versions it and that
the validators in :mod:`fourloops.contracts` compile from.

Null semantics are the same for every type: a value is *null* when it is
missing (``None``), when it is a string listed in the contract's
``null_tokens``, or when it is a float NaN and the contract lists ``"NaN"``
among its null tokens. A null in a field with ``nullable=False`` breaks the
``not_null`` rule unless the field declares a ``default``, which then takes its
place (and is counted as defaulted).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from fourloops.errors import DefinitionError

__all__ = [
    "Bool",
    "Category",
    "Field",
    "Float",
    "Int",
    "Rule",
    "String",
    "Timestamp",
    "UnknownPolicy",
    "UNKNOWN_CATEGORY",
]

#: The value an unknown category is mapped to under ``unknown="map"``.
UNKNOWN_CATEGORY = "__unknown__"


class Rule(enum.StrEnum):
    """The rules a value can break, in the order they are checked.

    Each value breaks at most one rule per field: the first in this order.
    """

    MISSING = "missing"  # the column / request field is absent
    UNKNOWN_FIELD = "unknown_field"  # a column not in the contract, with extra="forbid"
    TYPE = "type"  # the value cannot be read as the declared type
    TIMEZONE = "timezone"  # a timestamp without a time zone
    NAN = "nan"  # a float NaN that the contract does not declare as null
    INFINITE = "infinite"  # +/-inf in a Float field without allow_inf
    NOT_NULL = "not_null"  # null in a non-nullable field without a default
    MIN = "min"
    MAX = "max"
    CATEGORY = "category"  # an unknown category under unknown="reject"
    MAX_LENGTH = "max_length"


class UnknownPolicy(enum.StrEnum):
    """What to do with a category the contract does not list."""

    REJECT = "reject"  # the row breaks the ``category`` rule
    FLAG = "flag"  # the row passes; the value is kept and counted as unknown
    MAP = "map"  # the row passes; the value becomes ``"__unknown__"`` and is counted


class Field:
    """Base of all field types.

    Parameters
    ----------
    nullable:
        Whether null is a valid value.
    default:
        Value that replaces a null (makes the field effectively non-null).
    description:
        Free text; not part of the field's version.
    sensitive:
        Log a hash of the value instead of the value in prediction events.
    """

    kind: ClassVar[str] = "field"

    def __init__(
        self,
        *,
        nullable: bool = False,
        default: Any = None,
        description: str = "",
        sensitive: bool = False,
    ) -> None:
        self.nullable = bool(nullable)
        self.default = default
        self.description = description
        self.sensitive = bool(sensitive)

    def _options(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form: the meaning of the field (description excluded)."""
        spec: dict[str, Any] = {"type": self.kind, "nullable": self.nullable}
        if self.default is not None:
            spec["default"] = _jsonable(self.default)
        if self.sensitive:
            spec["sensitive"] = True
        spec.update(self._options())
        return spec

    def __repr__(self) -> str:
        args = [f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type"]
        return f"{type(self).__name__}({', '.join(args)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _bound(value: Any, name: str, owner: str) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise DefinitionError(f"{owner}: {name} must be a number, got {value!r}")
    return value


class Float(Field):
    """A floating-point number, optionally bounded: ``fl.Float(min=-40, max=130)``."""

    kind = "float"

    def __init__(
        self,
        *,
        min: float | None = None,
        max: float | None = None,
        allow_inf: bool = False,
        nullable: bool = False,
        default: float | None = None,
        description: str = "",
        sensitive: bool = False,
    ) -> None:
        super().__init__(nullable=nullable, default=default, description=description, sensitive=sensitive)
        self.min = _bound(min, "min", "Float")
        self.max = _bound(max, "max", "Float")
        self.allow_inf = bool(allow_inf)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise DefinitionError(f"Float: min {self.min} is greater than max {self.max}")
        if default is not None:
            self.default = float(_bound(default, "default", "Float"))  # type: ignore[arg-type]

    def _options(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.min is not None:
            out["min"] = float(self.min)
        if self.max is not None:
            out["max"] = float(self.max)
        if self.allow_inf:
            out["allow_inf"] = True
        return out


class Int(Field):
    """A 64-bit integer, optionally bounded: ``fl.Int(min=0)``."""

    kind = "int"

    def __init__(
        self,
        *,
        min: int | None = None,
        max: int | None = None,
        nullable: bool = False,
        default: int | None = None,
        description: str = "",
        sensitive: bool = False,
    ) -> None:
        super().__init__(nullable=nullable, default=default, description=description, sensitive=sensitive)
        for name, value in (("min", min), ("max", max), ("default", default)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise DefinitionError(f"Int: {name} must be an integer, got {value!r}")
        self.min = min
        self.max = max
        if min is not None and max is not None and min > max:
            raise DefinitionError(f"Int: min {min} is greater than max {max}")

    def _options(self) -> dict[str, Any]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


class Bool(Field):
    """A boolean. Accepts booleans, 0/1 and the strings true/false/1/0 (any case)."""

    kind = "bool"


class Category(Field):
    """One of a known set of strings.

    ``unknown`` says what happens to a value outside ``categories``: ``"reject"``
    (the row is quarantined), ``"flag"`` (kept and counted) or ``"map"`` (replaced
    by ``"__unknown__"`` and counted).
    """

    kind = "category"

    def __init__(
        self,
        categories: Sequence[str],
        *,
        unknown: str | UnknownPolicy = UnknownPolicy.REJECT,
        nullable: bool = False,
        default: str | None = None,
        description: str = "",
        sensitive: bool = False,
    ) -> None:
        super().__init__(nullable=nullable, default=default, description=description, sensitive=sensitive)
        if isinstance(categories, str) or not all(isinstance(c, str) for c in categories):
            raise DefinitionError("Category: categories must be a list of strings")
        if not categories:
            raise DefinitionError("Category: categories must not be empty")
        self.categories = list(dict.fromkeys(categories))
        try:
            self.unknown = UnknownPolicy(unknown)
        except ValueError:
            choices = ", ".join(p.value for p in UnknownPolicy)
            raise DefinitionError(f"Category: unknown must be one of {choices}, got {unknown!r}") from None

    def _options(self) -> dict[str, Any]:
        return {"categories": sorted(self.categories), "unknown": self.unknown.value}


class String(Field):
    """Free text, optionally limited in length."""

    kind = "string"

    def __init__(
        self,
        *,
        max_length: int | None = None,
        nullable: bool = False,
        default: str | None = None,
        description: str = "",
        sensitive: bool = False,
    ) -> None:
        super().__init__(nullable=nullable, default=default, description=description, sensitive=sensitive)
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise DefinitionError(f"String: max_length must be a non-negative int, got {max_length!r}")
        self.max_length = max_length

    def _options(self) -> dict[str, Any]:
        return {} if self.max_length is None else {"max_length": self.max_length}


class Timestamp(Field):
    """A point in time with a time zone (stored as UTC).

    Naive values (no zone) break the ``timezone`` rule: fourloops never guesses
    the zone of a time.
    """

    kind = "timestamp"

    def __init__(
        self,
        *,
        min: datetime | None = None,
        max: datetime | None = None,
        nullable: bool = False,
        description: str = "",
        sensitive: bool = False,
    ) -> None:
        super().__init__(nullable=nullable, description=description, sensitive=sensitive)
        for name, value in (("min", min), ("max", max)):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise DefinitionError(f"Timestamp: {name} must be a timezone-aware datetime")
        self.min = min
        self.max = max

    def _options(self) -> dict[str, Any]:
        return {k: v.isoformat() for k, v in (("min", self.min), ("max", self.max)) if v}
