"""Compatibility of two versions of a contract.

:func:`diff_contracts` compares the canonical forms (``Contract.to_dict()``)
and lists every change, marking as *breaking* those after which data that
passed the old contract may fail the new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Change", "diff_contracts"]

_STRICTNESS = {"flag": 0, "map": 0, "reject": 1}


@dataclass(frozen=True)
class Change:
    """One difference between two contract versions (``field`` None: contract-wide)."""

    field: str | None
    kind: str
    breaking: bool
    message: str


def _order(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _field_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out: list[Change] = []

    def add(kind: str, breaking: bool, what: str) -> None:
        out.append(Change(name, kind, breaking, f"field {name!r}: {what}"))

    if old["type"] != new["type"]:
        add("type", True, f"type changed from {old['type']} to {new['type']}")
        return out
    if old.get("nullable") and not new.get("nullable"):
        add("nullable", new.get("default") is None, "no longer nullable")
    elif new.get("nullable") and not old.get("nullable"):
        add("nullable", False, "now nullable")
    d_old, d_new = old.get("default"), new.get("default")
    if d_old != d_new:
        if d_new is None:
            add("default", not new.get("nullable"), f"default {d_old!r} removed")
        elif d_old is None:
            add("default", False, f"default {d_new!r} added")
        else:
            add("default", False, f"default changed from {d_old!r} to {d_new!r}")
    bounds: tuple[tuple[str, Callable[[Any, Any], bool]], ...] = (
        ("min", lambda a, b: b > a),
        ("max", lambda a, b: b < a),
    )
    for bound, tighter in bounds:
        b_old, b_new = old.get(bound), new.get(bound)
        if b_old == b_new:
            continue
        if b_old is None:
            add(bound, True, f"{bound} {b_new} added")
        elif b_new is None:
            add(bound, False, f"{bound} {b_old} removed")
        else:
            stricter = tighter(_order(b_old), _order(b_new))
            verb = ("raised" if stricter else "lowered") if bound == "min" else None
            verb = verb or ("lowered" if stricter else "raised")
            add(bound, stricter, f"{bound} {verb} from {b_old} to {b_new}")
    if old.get("allow_inf") and not new.get("allow_inf"):
        add("allow_inf", True, "infinite values no longer allowed")
    elif new.get("allow_inf") and not old.get("allow_inf"):
        add("allow_inf", False, "infinite values now allowed")
    if "categories" in old:
        removed = sorted(set(old["categories"]) - set(new["categories"]))
        added = sorted(set(new["categories"]) - set(old["categories"]))
        if removed:
            add("category_removed", True, f"categories removed: {', '.join(map(repr, removed))}")
        if added:
            add("category_added", False, f"categories added: {', '.join(map(repr, added))}")
        u_old, u_new = old["unknown"], new["unknown"]
        if u_old != u_new:
            stricter = _STRICTNESS[u_new] > _STRICTNESS[u_old]
            add("unknown", stricter, f"unknown policy changed from {u_old} to {u_new}")
    l_old, l_new = old.get("max_length"), new.get("max_length")
    if l_old != l_new:
        if l_old is None:
            add("max_length", True, f"max_length {l_new} added")
        elif l_new is None:
            add("max_length", False, f"max_length {l_old} removed")
        else:
            verb = "lowered" if l_new < l_old else "raised"
            add("max_length", l_new < l_old, f"max_length {verb} from {l_old} to {l_new}")
    if old.get("sensitive", False) != new.get("sensitive", False):
        add("sensitive", False, f"sensitive set to {bool(new.get('sensitive'))}")
    return out


def diff_contracts(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new`` (both ``Contract.to_dict()`` forms).

    >>> import fourloops as fl
    >>> a = fl.Contract({"temp": fl.Float(max=130)}).to_dict()
    >>> b = fl.Contract({"temp": fl.Float(max=120)}).to_dict()
    >>> [c.message for c in diff_contracts(a, b)]
    ["field 'temp': max lowered from 130.0 to 120.0"]
    """
    changes: list[Change] = []
    f_old, f_new = old["fields"], new["fields"]
    for name, spec in f_old.items():
        if name not in f_new:
            changes.append(Change(name, "removed", True, f"field {name!r}: removed"))
        else:
            changes += _field_changes(name, spec, f_new[name])
    for name, spec in f_new.items():
        if name in f_old:
            continue
        required = not spec.get("nullable") and spec.get("default") is None
        how = "required" if required else "nullable" if spec.get("nullable") else "with default"
        changes.append(Change(name, "added", required, f"field {name!r}: added ({how})"))
    for token in sorted(set(old["null_tokens"]) - set(new["null_tokens"])):
        changes.append(Change(None, "null_token", True, f"null token {token!r} removed"))
    for token in sorted(set(new["null_tokens"]) - set(old["null_tokens"])):
        changes.append(Change(None, "null_token", False, f"null token {token!r} added"))
    if old["nan_is_null"] != new["nan_is_null"]:
        was = old["nan_is_null"]
        what = "NaN no longer counts as null" if was else "NaN now counts as null"
        changes.append(Change(None, "nan_is_null", was, what))
    if old["extra"] != new["extra"]:
        tighter = new["extra"] == "forbid"
        what = f"extra columns changed from {old['extra']} to {new['extra']}"
        changes.append(Change(None, "extra", tighter, what))
    return changes
