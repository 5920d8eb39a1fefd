"""Content hashes that version definitions by their meaning."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "content_hash"]

#: Hex digits kept from the SHA-256 of a definition's canonical JSON.
VERSION_LENGTH = 16


def canonical_json(spec: Any) -> str:
    """Serialise ``spec`` deterministically (sorted keys, no whitespace)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(spec: Any) -> str:
    """A short, stable version string for a JSON-able specification.

    Two specifications with the same meaning hash the same, whatever the order
    of their keys.

    >>> content_hash({"b": 1, "a": [1, 2]}) == content_hash({"a": [1, 2], "b": 1})
    True
    """
    digest = hashlib.sha256(canonical_json(spec).encode()).hexdigest()
    return digest[:VERSION_LENGTH]
