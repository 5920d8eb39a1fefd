"""Routing of a model's traffic, owned by the registry: who answers, who gets a share, who shadows.

A :class:`RoutingSpec` is everything a server needs to route a model's
requests: the champion, a canary and its share of the units, a shadow scored
off the request path, an A/B split of several versions (which, while set,
replaces the champion/canary split), the key that keeps a unit on one version
(``sticky_key``), and the stage of a rollout in progress. Versions come from
the routing aliases (``champion``, ``canary``, ``shadow``); the rest from the
model's ``routing`` row.

Only the registry writes it, and every writer goes the same way: the admin
API, ``fourloops promote``/``rollback`` and the rollout controller call
:meth:`RoutingOperations.set_routing` or move an alias; servers only read it
(:meth:`RoutingOperations.routing`) and follow within their refresh interval.
Every change takes the model's write lock, checks the versions it sends
traffic to (ready, and their gates passed unless ``force``, which is
recorded), bumps the revision, and appends the whole routing after it to the
``routing_events`` journal and the audit log, in one transaction.

>>> from fourloops.storage.metadata import MetadataStore
>>> from fourloops.registry.models import ModelRegistry
>>> registry = ModelRegistry(MetadataStore("sqlite://"))
>>> registry.register_model("delays", "binary")
>>> art = {"uri": "file:///a/1", "sha256": "0" * 64, "size": 10}
>>> for _ in range(2):
...     _ = registry.create_version("delays", artifact=art)
>>> _ = registry.promote("delays", 1, reason="first model")
>>> change = registry.set_routing("delays", canary=2, canary_share=0.1, reason="try v2")
>>> spec = registry.routing("delays")
>>> spec.champion, spec.canary, spec.canary_share, spec.revision
(1, 2, 0.1, 2)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from fourloops.clock import as_utc
from fourloops.definitions.lifecycle import Alias, Stage
from fourloops.errors import ConfigError, PromotionBlocked, RegistryError
from fourloops.registry.aliases import AliasAction, current_version, move_alias
from fourloops.registry.records import GateReport, is_version_number
from fourloops.registry.routing_records import (
    SHARE_SUM_TOLERANCE,
    UNIT_ID,
    RoutingChange,
    RoutingEvent,
    RoutingSpec,
    check_share,
    check_split,
    check_version,
)
from fourloops.storage import tables as t
from fourloops.storage.metadata import MetadataStore, default_actor

__all__ = [
    "KEEP",
    "SHARE_SUM_TOLERANCE",
    "UNIT_ID",
    "RoutingChange",
    "RoutingEvent",
    "RoutingOperations",
    "RoutingSpec",
    "check_servable",
    "check_share",
    "check_split",
    "check_version",
    "read_routing",
    "record_routing",
    "sync_stages",
]

_FORCED = " [forced past failed gates]"


class _Keep(enum.Enum):
    KEEP = "keep"


#: ``set_routing(..., canary=KEEP)``: leave this part of the routing as it is (the default).
KEEP = _Keep.KEEP


def check_servable(conn: Connection, model: str, version: int, *, force: bool, role: str) -> None:
    """Refuse to send traffic to ``version`` unless it is ready and its gates passed (or ``force``).

    The one gate rule of every path that routes requests to a version:
    promoting, a canary, a shadow, an A/B arm. ``role`` names the path in
    the error.
    """
    v = t.model_versions
    row = None
    if is_version_number(version):  # no query with a number the driver cannot hold
        row = conn.execute(
            sa.select(v.c.status, v.c.failure_reason, v.c.gates).where(
                v.c.model == model, v.c.version == version
            )
        ).first()
    if row is None:
        from fourloops.errors import NotFoundError

        raise NotFoundError(f"model {model!r} has no version {version}")
    if row.status != "ready":
        raise RegistryError(
            f"version {version} of {model!r} is {row.status} ({row.failure_reason}); "
            f"only ready versions can be {role}"
        )
    report = GateReport.from_dict(row.gates)
    if report.blocks and not force:
        raise PromotionBlocked(
            f"version {version} of {model!r} failed its gates "
            f"({', '.join(report.failed) or 'see its gate verdicts'}); it cannot be {role} "
            "unless forced (--force)"
        )


def read_routing(conn: Connection, model: str) -> RoutingSpec:
    """The routing of ``model`` as stored (aliases and the routing row) in this transaction."""
    a, r = t.aliases, t.routing
    versions = {
        row.alias: row.version
        for row in conn.execute(
            sa.select(a.c.alias, a.c.version).where(
                a.c.model == model, a.c.alias.in_([alias.value for alias in Alias])
            )
        )
    }
    row = conn.execute(sa.select(r).where(r.c.model == model)).first()
    canary = versions.get(Alias.CANARY)
    return RoutingSpec(
        model=model,
        champion=versions.get(Alias.CHAMPION),
        canary=canary,
        canary_share=float(row.canary_share) if row is not None and canary is not None else 0.0,
        shadow=versions.get(Alias.SHADOW),
        ab=None if row is None or not row.ab else {int(k): float(s) for k, s in row.ab.items()},
        stage=Stage(row.stage) if row is not None else Stage.NONE,
        sticky_key=row.sticky_key if row is not None else UNIT_ID,
        revision=int(row.revision) if row is not None else 0,
        updated_at=as_utc(row.updated_at) if row is not None else None,
    )


def record_routing(
    conn: Connection,
    *,
    before: RoutingSpec,
    after: RoutingSpec,
    actor: str,
    reason: str,
    at: datetime,
    canary_share: float | None = None,
) -> RoutingSpec:
    """Store ``after`` as the next revision, journal it and audit it; returns it as stored.

    ``canary_share`` is the share to keep in the routing row (it survives the
    canary alias being unset; the spec reports 0 while there is no canary).
    """
    r = t.routing
    stored = replace(after, revision=after.revision + 1, updated_at=at)
    values = {
        "canary_share": stored.canary_share if canary_share is None else canary_share,
        "ab": None if stored.ab is None else {str(v): s for v, s in stored.ab.items()},
        "stage": stored.stage.value,
        "sticky_key": stored.sticky_key,
        "revision": stored.revision,
        "updated_at": at,
    }
    if conn.execute(sa.select(r.c.model).where(r.c.model == after.model)).first() is None:
        conn.execute(r.insert().values(model=after.model, **values))
    else:
        conn.execute(r.update().where(r.c.model == after.model).values(**values))
    conn.execute(
        t.routing_events.insert().values(
            model=after.model,
            revision=stored.revision,
            spec=stored.to_dict(),
            actor=actor,
            at=at,
            reason=reason,
        )
    )
    conn.execute(
        t.audit_log.insert().values(
            at=at,
            actor=actor,
            action="routing.set",
            subject=f"model:{after.model}",
            details={"from": before.to_dict(), "to": stored.to_dict(), "reason": reason},
        )
    )
    sync_stages(conn, stored)
    return stored


def sync_stages(conn: Connection, spec: RoutingSpec) -> None:
    """Make each version's stage follow the routing: production, canary, shadow, or back to none.

    ``staging`` and ``archived`` are set by hand and left alone unless the
    version is routed to.
    """
    wanted: dict[int, Stage] = {}
    for version in spec.ab or {}:
        wanted[version] = Stage.CANARY
    if spec.shadow is not None:
        wanted[spec.shadow] = Stage.SHADOW
    if spec.canary is not None:
        wanted[spec.canary] = Stage.CANARY
    if spec.champion is not None:
        wanted[spec.champion] = Stage.PRODUCTION
    v = t.model_versions
    routed_stages = [Stage.SHADOW.value, Stage.CANARY.value, Stage.PRODUCTION.value]
    rows = conn.execute(
        sa.select(v.c.id, v.c.version, v.c.stage).where(
            v.c.model == spec.model,
            sa.or_(v.c.stage.in_(routed_stages), v.c.version.in_(list(wanted))),
        )
    ).all()
    for row in rows:
        stage = wanted.get(row.version, Stage.NONE)
        if row.stage != stage.value:
            conn.execute(v.update().where(v.c.id == row.id).values(stage=stage.value))


class RoutingOperations:
    """The routing half of :class:`~fourloops.registry.models.ModelRegistry` (see the module docs)."""

    metadata: MetadataStore

    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _model_row(self, conn: Connection, model: str, *, lock: bool = False) -> Row[Any]:
        raise NotImplementedError

    def routing(self, model: str) -> RoutingSpec:
        """How ``model``'s traffic is routed now."""
        with self._transaction() as conn:
            self._model_row(conn, model)
            return read_routing(conn, model)

    def routing_history(self, model: str) -> list[RoutingEvent]:
        """Every routing change of ``model``, oldest first."""
        e = t.routing_events
        with self._transaction() as conn:
            self._model_row(conn, model)
            rows = conn.execute(sa.select(e).where(e.c.model == model).order_by(e.c.id)).all()
        return [
            RoutingEvent(
                id=r.id,
                model=r.model,
                revision=r.revision,
                spec=RoutingSpec.from_dict(r.spec),
                actor=r.actor,
                at=as_utc(r.at),
                reason=r.reason,
            )
            for r in rows
        ]

    def set_routing(
        self,
        model: str,
        *,
        canary: int | None | Literal[_Keep.KEEP] = KEEP,
        canary_share: float | Literal[_Keep.KEEP] = KEEP,
        shadow: int | None | Literal[_Keep.KEEP] = KEEP,
        ab: Mapping[int, float] | None | Literal[_Keep.KEEP] = KEEP,
        stage: Stage | str | Literal[_Keep.KEEP] = KEEP,
        sticky_key: str | Literal[_Keep.KEEP] = KEEP,
        actor: str | None = None,
        reason: str,
        force: bool = False,
        expected_revision: int | None = None,
    ) -> RoutingChange:
        """Change how ``model``'s traffic is routed; every part left as :data:`KEEP` stays.

        ``canary``/``shadow`` move those aliases (``None`` unsets them); ``ab``
        sets an A/B split (``None`` clears it). A version that starts receiving
        traffic must be ready and have passed its gates, unless ``force``
        (recorded in the reason). With ``expected_revision``, the change is
        refused (:class:`RegistryError`) if someone changed the routing since
        that revision was read: the controller's compare-and-set. The champion
        moves only through ``promote`` and ``rollback``.
        """
        actor = actor or default_actor()
        with self._transaction(write=True) as conn:
            self._model_row(conn, model, lock=True)
            before = read_routing(conn, model)
            if expected_revision is not None and before.revision != expected_revision:
                raise RegistryError(
                    f"the routing of model {model!r} is at revision {before.revision}, not "
                    f"{expected_revision} as expected; someone changed it since you looked"
                )
            at = self.metadata.clock()
            forced = False
            new_canary = before.canary if canary is KEEP else canary
            new_shadow = before.shadow if shadow is KEEP else shadow
            new_ab = before.ab if ab is KEEP else (None if ab is None else check_split(ab))
            # Versions taking a new role are judged; one keeping its role was judged when it took it.
            starting: list[tuple[int, str]] = []
            if new_canary is not None and new_canary != before.canary:
                starting.append((new_canary, "a canary"))
            if new_shadow is not None and new_shadow != before.shadow:
                starting.append((new_shadow, "a shadow"))
            starting += [(v, "an A/B arm") for v in new_ab or {} if v not in (before.ab or {})]
            for version, role in starting:
                if version == before.champion:
                    continue  # the champion serves already
                check_servable(conn, model, version, force=force, role=role)
                forced = forced or (force and _gates_failed(conn, model, version))
            share = before.canary_share if canary_share is KEEP else canary_share
            if canary_share is not KEEP and new_canary is None:
                # A share with no canary would route nothing: say so instead of storing it silently.
                RoutingSpec(model, champion=before.champion, canary_share=canary_share)
            after = RoutingSpec(
                model=model,
                champion=before.champion,
                canary=new_canary,
                canary_share=share if new_canary is not None else 0.0,
                shadow=new_shadow,
                ab=new_ab,
                stage=before.stage if stage is KEEP else _stage(stage),
                sticky_key=before.sticky_key if sticky_key is KEEP else sticky_key,
                revision=before.revision,
            )
            note = reason + (_FORCED if forced else "")
            for alias, target in ((Alias.CANARY, after.canary), (Alias.SHADOW, after.shadow)):
                if current_version(conn, model, alias) != target:
                    move_alias(
                        conn,
                        model=model,
                        alias=alias,
                        action=AliasAction.SET if target is not None else AliasAction.DELETE,
                        version=target,
                        actor=actor,
                        reason=note,
                        at=at,
                    )
            stored = record_routing(
                conn,
                before=before,
                after=after,
                actor=actor,
                reason=note,
                at=at,
                canary_share=check_share(share, "canary_share"),
            )
        return RoutingChange(model, before, stored)

    def _routing_changed(self, conn: Connection, model: str, *, actor: str, reason: str) -> None:
        """Journal the routing after an alias move that steers traffic (promote, rollback...)."""
        after = read_routing(conn, model)
        r = t.routing
        share = conn.execute(sa.select(r.c.canary_share).where(r.c.model == model)).scalar()
        record_routing(
            conn,
            before=_journaled_routing(conn, model),
            after=after,
            actor=actor,
            reason=reason,
            at=self.metadata.clock(),
            canary_share=None if share is None else float(share),
        )


def _stage(value: Stage | str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        known = ", ".join(s.value for s in Stage)
        raise ConfigError(f"routing stage {value!r} is not a stage (stages: {known})") from None


def _gates_failed(conn: Connection, model: str, version: int) -> bool:
    v = t.model_versions
    gates = conn.execute(sa.select(v.c.gates).where(v.c.model == model, v.c.version == version)).scalar_one()
    return GateReport.from_dict(gates).blocks


def _journaled_routing(conn: Connection, model: str) -> RoutingSpec:
    """The routing as its journal last recorded it (before an alias move in this transaction)."""
    e = t.routing_events
    row = conn.execute(sa.select(e.c.spec).where(e.c.model == model).order_by(e.c.id.desc()).limit(1)).first()
    return RoutingSpec(model) if row is None else RoutingSpec.from_dict(row.spec)
