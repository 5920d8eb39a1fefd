"""The data contract: one declaration of what valid data looks like.

A contract is declared once and compiled (by :mod:`fourloops.contracts`) into a
vectorised batch validator for sources and a per-row validator for requests;
both apply exactly the same rules.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from typing import Any

from fourloops.definitions.fields import Field
from fourloops.definitions.hashing import content_hash
from fourloops.errors import DefinitionError

__all__ = ["Contract", "ExtraPolicy"]


class ExtraPolicy(enum.StrEnum):
    """What to do with a column or request field the contract does not declare."""

    ALLOW = "allow"  # ignore it (report it as schema drift when it is new)
    FORBID = "forbid"  # every row breaks the ``unknown_field`` rule


class Contract:
    """What valid data looks like, field by field.

    Parameters
    ----------
    fields:
        Column name -> field type (``fl.Float(min=0)``, ``fl.Category([...])``, ...).
    null_tokens:
        Strings that mean "no value" in this source, e.g. ``["", "NA", "NULL"]``.
        Include ``"NaN"`` to treat float NaN as null; otherwise a NaN breaks the
        ``nan`` rule. Tokens match whole values exactly (case and spaces count).
    extra:
        ``"allow"`` (default) ignores undeclared columns; ``"forbid"`` rejects them.
    lenient:
        How a *request* (JSON) is read when this contract checks one. By default
        strictly, exactly as the published JSON Schema says: numbers for Float
        and Int (an integral float like ``8.0`` is an integer, as in JSON
        Schema), JSON booleans for Bool, strings for the rest, ``null`` as the
        only null. ``lenient=True`` reads requests as sources are read: numeric
        strings, ``0``/``1`` and ``"true"`` as booleans, null tokens. Sources
        (files) are always read by the lenient rules, since a CSV holds only text.

    >>> import fourloops as fl
    >>> c = fl.Contract({"temp": fl.Float(min=-40, max=130)}, null_tokens=["", "NA"])
    >>> c.version
    '...'
    """

    def __init__(
        self,
        fields: Mapping[str, Field],
        *,
        null_tokens: Iterable[str | float] = (),
        extra: str | ExtraPolicy = ExtraPolicy.ALLOW,
        description: str = "",
        lenient: bool = False,
    ) -> None:
        if not isinstance(fields, Mapping) or not fields:
            raise DefinitionError("Contract: fields must be a non-empty mapping of name -> field")
        for name, field in fields.items():
            if not isinstance(name, str) or not name:
                raise DefinitionError(f"Contract: field names must be strings, got {name!r}")
            if not isinstance(field, Field):
                raise DefinitionError(
                    f"Contract: field {name!r} must be a field type such as fl.Float(), "
                    f"got {type(field).__name__}"
                )
        self.fields: dict[str, Field] = dict(fields)
        tokens: list[str] = []
        self.nan_is_null = False
        for token in null_tokens:
            if isinstance(token, float) and math.isnan(token):
                self.nan_is_null = True
            elif isinstance(token, str):
                if token.lower() == "nan":
                    self.nan_is_null = True
                tokens.append(token)
            else:
                raise DefinitionError(f"Contract: null token {token!r} must be a string or NaN")
        self.null_tokens: list[str] = list(dict.fromkeys(tokens))
        try:
            self.extra = ExtraPolicy(extra)
        except ValueError:
            raise DefinitionError(f"Contract: extra must be 'allow' or 'forbid', got {extra!r}") from None
        self.description = description
        if not isinstance(lenient, bool):
            raise DefinitionError(f"Contract: lenient must be True or False, got {lenient!r}")
        self.lenient = lenient

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form (the meaning; descriptions excluded)."""
        out: dict[str, Any] = {
            "fields": {name: f.to_dict() for name, f in self.fields.items()},
            "null_tokens": sorted(self.null_tokens),
            "nan_is_null": self.nan_is_null,
            "extra": self.extra.value,
        }
        if self.lenient:  # only when set, so that the versions of strict contracts did not change
            out["lenient"] = True
        return out

    @property
    def version(self) -> str:
        """Content hash of :meth:`to_dict`."""
        return content_hash(self.to_dict())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k!r}: {v!r}" for k, v in self.fields.items())
        return f"Contract({{{fields}}}, null_tokens={self.null_tokens!r}, extra={self.extra.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Contract) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.version)
