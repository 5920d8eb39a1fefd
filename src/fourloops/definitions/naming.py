"""Rules for names of definitions and columns."""

from __future__ import annotations

import re

from fourloops.errors import DefinitionError

__all__ = ["check_name"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def check_name(name: object, owner: str) -> str:
    """Return ``name`` if it is a usable identifier, else raise a DefinitionError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DefinitionError(
            f"{owner}: name {name!r} must start with a letter or '_' and contain only "
            "letters, digits, '_', '.', '-'"
        )
    return name
