"""Registering a project's definitions: versions by content hash, breaking-change checks.

``plan`` compares the definitions in code with the versions in force in the
metadata store and lists every change, marking the breaking ones (a removed
field or view, a type change, a tightened rule, a changed key or time column).
``apply`` records the new versions in one transaction, and refuses breaking
changes unless explicitly allowed, naming exactly what broke.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fourloops.contracts import diff_contracts
from fourloops.definitions.loader import Definitions
from fourloops.errors import BreakingChangeError
from fourloops.storage.metadata import DefinitionRecord, MetadataStore

__all__ = ["ApplyPlan", "Change", "apply_definitions", "plan_definitions"]


@dataclass(frozen=True)
class Change:
    kind: str  # entity, source, feature_view
    name: str
    action: str  # create, update, remove, unchanged
    details: tuple[str, ...] = ()
    #: The details that break existing data or consumers (a subset of ``details``).
    breaking_details: tuple[str, ...] = ()
    version: str | None = None
    previous: str | None = None

    @property
    def breaking(self) -> bool:
        return bool(self.breaking_details)

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "details": list(self.details),
            "breaking_details": list(self.breaking_details),
            "breaking": self.breaking,
        }


@dataclass
class ApplyPlan:
    changes: list[Change] = field(default_factory=list)
    records: list[DefinitionRecord] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [c.to_dict() for c in self.changes]}


def _records(defs: Definitions) -> list[DefinitionRecord]:
    out = []
    tables: tuple[tuple[str, dict[str, Any]], ...] = (
        ("entity", defs.entities),
        ("source", defs.sources),
        ("feature_view", defs.feature_views),
        ("model", defs.models),
    )
    for kind, table in tables:
        for name, obj in sorted(table.items()):
            out.append(DefinitionRecord(kind, name, obj.version, obj.to_dict()))
    return out


def _view_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, bool]]:
    changes: list[tuple[str, bool]] = []
    if old["entity"]["join_keys"] != new["entity"]["join_keys"]:
        changes.append(
            (
                f"join keys changed from {old['entity']['join_keys']} to {new['entity']['join_keys']}",
                True,
            )
        )
    for key in ("timestamp", "created", "path", "format"):
        if old["source"].get(key) != new["source"].get(key):
            breaking = key in ("timestamp", "created")
            changes.append(
                (
                    f"source {key} changed from {old['source'].get(key)!r} to {new['source'].get(key)!r}",
                    breaking,
                )
            )
    if old["ttl"] != new["ttl"]:
        changes.append((f"ttl changed from {old['ttl']} to {new['ttl']}", False))
    for change in diff_contracts(old["contract"], new["contract"]):
        changes.append((change.message, change.breaking))
    if old.get("transform") != new.get("transform"):
        changes.append(("transformation code changed", False))
    old_derived, new_derived = old.get("derived", {}), new.get("derived", {})
    if old_derived != new_derived:
        derived_changes = diff_contracts(
            {"fields": old_derived, "null_tokens": [], "nan_is_null": False, "extra": "allow"},
            {"fields": new_derived, "null_tokens": [], "nan_is_null": False, "extra": "allow"},
        )
        for change in derived_changes:
            changes.append((f"derived {change.message}", change.breaking))
    if old.get("online") != new.get("online"):
        changes.append((f"online changed from {old.get('online')} to {new.get('online')}", False))
    return changes


def plan_definitions(defs: Definitions, metadata: MetadataStore) -> ApplyPlan:
    """Compare code with the registered versions; nothing is written."""
    heads = metadata.heads()
    plan = ApplyPlan(records=_records(defs))
    seen = set()
    for rec in plan.records:
        seen.add((rec.kind, rec.name))
        head = heads.get((rec.kind, rec.name))
        if head is None:
            plan.changes.append(Change(rec.kind, rec.name, "create", version=rec.version))
        elif head.version == rec.version:
            plan.changes.append(Change(rec.kind, rec.name, "unchanged", version=rec.version))
        else:
            if rec.kind == "feature_view":
                found = _view_changes(head.spec, rec.spec)
            elif rec.kind == "entity":
                found = [
                    (
                        f"join keys changed from {head.spec['join_keys']} to {rec.spec['join_keys']}",
                        True,
                    )
                ]
            else:
                found = [
                    (
                        f"{k} changed from {head.spec.get(k)!r} to {rec.spec.get(k)!r}",
                        k in ("timestamp", "created"),
                    )
                    for k in sorted(set(head.spec) | set(rec.spec))
                    if head.spec.get(k) != rec.spec.get(k)
                ]
            plan.changes.append(
                Change(
                    rec.kind,
                    rec.name,
                    "update",
                    details=tuple(m + (" (breaking)" if b else "") for m, b in found),
                    breaking_details=tuple(m + " (breaking)" for m, b in found if b),
                    version=rec.version,
                    previous=head.version,
                )
            )
    for (kind, name), head in sorted(heads.items()):
        if (kind, name) not in seen:
            plan.changes.append(
                Change(
                    kind,
                    name,
                    "remove",
                    details=(f"{kind} {name!r} is no longer defined",),
                    breaking_details=(f"{kind} {name!r} is no longer defined",)
                    if kind == "feature_view"
                    else (),
                    previous=head.version,
                )
            )
    return plan


def apply_definitions(
    defs: Definitions,
    metadata: MetadataStore,
    *,
    allow_breaking: bool = False,
    actor: str | None = None,
) -> ApplyPlan:
    """Register the definitions; raise :class:`BreakingChangeError` on breaking changes unless allowed."""
    plan = plan_definitions(defs, metadata)
    if plan.breaking and not allow_breaking:
        lines = [f"{c.subject}: {d}" for c in plan.breaking for d in c.breaking_details]
        raise BreakingChangeError(
            f"{len(lines)} breaking change(s): "
            + "; ".join(lines)
            + " (re-run with --allow-breaking to accept)",
            lines,
        )
    pending = [c for c in plan.pending]
    if not pending:
        return plan
    records = [r for r in plan.records if any(c.kind == r.kind and c.name == r.name for c in pending)]
    removed = [(c.kind, c.name) for c in pending if c.action == "remove"]
    entries = [
        (
            f"apply.{change.action}",
            change.subject,
            {
                "version": change.version,
                "previous": change.previous,
                "breaking": change.breaking,
                "details": list(change.details),
                "allowed_breaking": allow_breaking and change.breaking,
            },
        )
        for change in pending
    ]
    metadata.apply_definitions(records, actor=actor, remove=removed, audit=entries)
    return plan
