"""Human phrases for broken rules, used in ``ContractViolation`` messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fourloops.definitions.fields import Category, Field, Float, Rule, String

__all__ = ["describe"]


def describe(f: Field | None, rule: Rule, value: Any) -> str:
    """One human phrase for a broken rule, e.g. ``max (value 140.0 > 130.0)``."""
    if rule is Rule.MISSING:
        return "missing"
    if rule is Rule.UNKNOWN_FIELD:
        return "unknown_field (not declared in the contract)"
    if f is None:  # pragma: no cover - only the two rules above have no field
        return rule.value
    if rule is Rule.TYPE:
        return f"type (value {value!r} is not a {f.kind})"
    if rule is Rule.TIMEZONE:
        return f"timezone (value {value!r} has no time zone)"
    if rule is Rule.NAN:
        return "nan (value is NaN)"
    if rule is Rule.INFINITE:
        return f"infinite (value {value!r})"
    if rule is Rule.NOT_NULL:
        return f"not_null (value {value!r} is null)"
    bound = getattr(f, "min" if rule is Rule.MIN else "max", None)
    if isinstance(f, Float) and bound is not None:
        bound = float(bound)
    shown = value.isoformat() if isinstance(value, datetime) else repr(value)
    shown_bound = bound.isoformat() if isinstance(bound, datetime) else repr(bound)
    if rule is Rule.MIN:
        return f"min (value {shown} < {shown_bound})"
    if rule is Rule.MAX:
        return f"max (value {shown} > {shown_bound})"
    if rule is Rule.CATEGORY and isinstance(f, Category):
        return f"category (value {value!r} is not one of {sorted(f.categories)!r})"
    if rule is Rule.MAX_LENGTH and isinstance(f, String):
        return f"max_length (length {len(value)} > {f.max_length})"
    return rule.value  # pragma: no cover
