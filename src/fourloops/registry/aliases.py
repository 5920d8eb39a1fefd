"""Aliases and their journal: where ``champion`` points, and every move it ever made.

An alias (``champion``, ``challenger``...) names one version of a model. Every
move is appended to ``alias_events``; the journal *is* the history. Replaying
it as a stack (``promote`` and ``set`` push, ``rollback`` pops, ``delete``
empties) gives the alias's current version and what a rollback returns to.

The functions here run inside a transaction that already holds the model's
write lock (see :class:`fourloops.registry.models.ModelRegistry`), so reading
the current state and writing the move cannot interleave with another writer.
"""

from __future__ import annotations

import enum
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from fourloops.clock import as_utc
from fourloops.definitions.lifecycle import Alias
from fourloops.errors import NotFoundError, PromotionBlocked, RegistryError
from fourloops.registry.records import GateReport
from fourloops.storage import tables as t
from fourloops.storage.metadata import MetadataStore, default_actor

__all__ = [
    "ANY",
    "CHAMPION",
    "ROUTING_ALIASES",
    "AliasAction",
    "AliasChange",
    "AliasEvent",
    "AliasOperations",
    "Expected",
    "check_alias_name",
    "current_version",
    "journal",
    "move_alias",
    "replay",
    "rollback_target",
]


#: The alias the server answers with and ``promote``/``rollback`` move by default.
CHAMPION = Alias.CHAMPION.value
#: The aliases that steer routing: moving one is also a routing change (journaled as one).
ROUTING_ALIASES = frozenset(a.value for a in Alias)
#: Longest alias name.
ALIAS_MAX = 100
#: The version status that can be aliased.
READY = "ready"


class AliasAction(enum.StrEnum):
    """What one journal entry did to its alias."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
    SET = "set"
    DELETE = "delete"


class _Unchecked(enum.Enum):
    ANY = "any"


#: ``expected=ANY`` (the default): move the alias whatever it points at now.
ANY = _Unchecked.ANY
#: What a caller believes an alias points at: a version, ``None`` for unset, or ``ANY``.
Expected = int | None | Literal[_Unchecked.ANY]


@dataclass(frozen=True)
class AliasChange:
    """The outcome of one alias move: the version before and after (``None`` = unset)."""

    model: str
    alias: str
    previous: int | None
    current: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "model": self.model,
            "alias": self.alias,
            "previous": self.previous,
            "current": self.current,
        }


@dataclass(frozen=True)
class AliasEvent:
    """One entry of an alias's journal."""

    id: int
    model: str
    alias: str
    action: AliasAction
    from_version: int | None
    to_version: int | None
    actor: str
    at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``at`` as ISO 8601)."""
        return {
            "id": self.id,
            "model": self.model,
            "alias": self.alias,
            "action": self.action.value,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
        }


def current_version(conn: Connection, model: str, alias: str) -> int | None:
    """The version ``alias`` points at now, or ``None`` when it is unset."""
    a = t.aliases
    row = conn.execute(sa.select(a.c.version).where(a.c.model == model, a.c.alias == alias)).first()
    return None if row is None else int(row.version)


def journal(conn: Connection, model: str, alias: str | None = None) -> list[AliasEvent]:
    """The journal of one alias (or of every alias of ``model``), oldest first."""
    e = t.alias_events
    query = sa.select(e).where(e.c.model == model).order_by(e.c.id)
    if alias is not None:
        query = query.where(e.c.alias == alias)
    return [
        AliasEvent(
            id=r.id,
            model=r.model,
            alias=r.alias,
            action=AliasAction(r.action),
            from_version=r.from_version,
            to_version=r.to_version,
            actor=r.actor,
            at=as_utc(r.at),
            reason=r.reason,
        )
        for r in conn.execute(query)
    ]


def replay(events: list[AliasEvent]) -> list[int]:
    """The stack of versions the journal of one alias leaves; its top is the current version.

    >>> from datetime import UTC
    >>> ev = lambda action, to: AliasEvent(0, "m", "champion", AliasAction(action), None, to,
    ...                                    "me", datetime(2024, 1, 1, tzinfo=UTC), "")
    >>> replay([ev("promote", 1), ev("promote", 2), ev("set", 3), ev("rollback", 2)])
    [1, 2]
    """
    stack: list[int] = []
    for event in events:
        if event.action is AliasAction.ROLLBACK:
            if stack:
                stack.pop()
        elif event.action is AliasAction.DELETE:
            stack.clear()
        elif event.to_version is not None:
            stack.append(event.to_version)
    return stack


def _check_expected(
    conn: Connection, model: str, alias: str, current: int | None, expected: Expected
) -> None:
    if expected is ANY or expected == current:
        return
    last = journal(conn, model, alias)[-1:]
    who = ""
    if last:
        ev = last[0]
        who = f" ({ev.action.value} by {ev.actor} at {ev.at.isoformat()}: {ev.reason!r})"
    now = "unset" if current is None else f"version {current}"
    believed = "unset" if expected is None else f"version {expected}"
    raise RegistryError(
        f"alias {alias!r} of model {model!r} is {now}{who}, not {believed} as expected; "
        "someone changed it since you looked"
    )


def move_alias(
    conn: Connection,
    *,
    model: str,
    alias: str,
    action: AliasAction,
    version: int | None,
    actor: str,
    reason: str,
    at: datetime,
    expected: Expected = ANY,
) -> AliasChange:
    """Point ``alias`` at ``version`` (``None`` removes it), journal and audit the move.

    Compare-and-set: when ``expected`` is not ``ANY`` and differs from the
    current version, nothing changes and :class:`RegistryError` names who
    moved the alias last. Moving an alias to where it already points changes
    and journals nothing.
    """
    current = current_version(conn, model, alias)
    _check_expected(conn, model, alias, current, expected)
    change = AliasChange(model, alias, current, version)
    if version == current:
        return change
    a = t.aliases
    where = (a.c.model == model, a.c.alias == alias)
    if version is None:
        conn.execute(a.delete().where(*where))
    elif current is None:
        conn.execute(a.insert().values(model=model, alias=alias, version=version, updated_at=at))
    else:
        conn.execute(a.update().where(*where).values(version=version, updated_at=at))
    conn.execute(
        t.alias_events.insert().values(
            model=model,
            alias=alias,
            action=action.value,
            from_version=current,
            to_version=version,
            actor=actor,
            at=at,
            reason=reason,
        )
    )
    # The general audit log gets the same decision, in the same transaction.
    conn.execute(
        t.audit_log.insert().values(
            at=at,
            actor=actor,
            action=f"alias.{action.value}",
            subject=f"model:{model}",
            details={
                "alias": alias,
                "from_version": current,
                "to_version": version,
                "reason": reason,
            },
        )
    )
    return change


def check_alias_name(alias: str) -> None:
    """Raise :class:`RegistryError` unless ``alias`` is usable (a number would be ambiguous)."""
    if not alias or alias.isdigit() or len(alias) > ALIAS_MAX:
        raise RegistryError(
            f"alias {alias!r} is not a valid alias name (1-{ALIAS_MAX} characters, not a number)"
        )


def rollback_target(conn: Connection, model: str, alias: str) -> tuple[int, int]:
    """``(current, previous)``: where ``alias`` points and where a rollback takes it."""
    stack = replay(journal(conn, model, alias))
    current = current_version(conn, model, alias)
    if len(stack) < 2 or current is None:
        where = "unset" if current is None else f"at version {current}"
        raise RegistryError(
            f"nothing to roll back to: alias {alias!r} of model {model!r} is {where} "
            "and has no earlier version in its journal"
        )
    return current, stack[-2]


class AliasOperations:
    """The alias half of :class:`~fourloops.registry.models.ModelRegistry`.

    Every move takes the model's write lock, checks the target version, and
    calls :func:`move_alias` in the same transaction.
    """

    metadata: MetadataStore

    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _model_row(self, conn: Connection, model: str, *, lock: bool = False) -> Row[Any]:
        raise NotImplementedError

    def _version_row(self, conn: Connection, model: str, version: int) -> Row[Any]:
        raise NotImplementedError

    def set_alias(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str,
        expected: Expected = ANY,
    ) -> AliasChange:
        """Point ``alias`` at a ready ``version``; compare-and-set when ``expected`` is given.

        ``expected`` is the version the caller believes is current (``None``:
        unset). If another writer moved the alias since, :class:`RegistryError`
        says who, and nothing changes.
        """
        return self._move(model, alias, AliasAction.SET, version, actor, reason, expected)

    def delete_alias(
        self,
        model: str,
        alias: str,
        *,
        actor: str | None = None,
        reason: str,
        expected: Expected = ANY,
    ) -> AliasChange:
        """Remove ``alias``; its journal is kept, but a later rollback cannot reach past this."""
        return self._move(model, alias, AliasAction.DELETE, None, actor, reason, expected)

    def promote(
        self,
        model: str,
        version: int,
        *,
        alias: str = CHAMPION,
        actor: str | None = None,
        reason: str,
        expected: Expected = ANY,
        force: bool = False,
    ) -> AliasChange:
        """Make ``version`` the ``alias`` (champion by default).

        A version whose recorded gates did not pass raises :class:`PromotionBlocked`
        naming the failed gates, unless ``force=True`` (the override is journaled).
        """
        if force:
            reason = f"{reason} [forced past failed gates]"
        return self._move(
            model,
            alias,
            AliasAction.PROMOTE,
            version,
            actor,
            reason,
            expected,
            check_gates=not force,
        )

    def rollback(
        self,
        model: str,
        *,
        alias: str = CHAMPION,
        actor: str | None = None,
        reason: str,
        expected: Expected = ANY,
    ) -> AliasChange:
        """Move ``alias`` back to the version it held before its current one.

        The journal is replayed as a stack, so rolling back twice goes two steps
        back. :class:`RegistryError` when there is nothing to roll back to.
        """
        check_alias_name(alias)
        with self._transaction(write=True) as conn:
            self._model_row(conn, model, lock=True)
            _, previous = rollback_target(conn, model, alias)
            change = move_alias(
                conn,
                model=model,
                alias=alias,
                action=AliasAction.ROLLBACK,
                version=previous,
                actor=actor or default_actor(),
                reason=reason,
                at=self.metadata.clock(),
                expected=expected,
            )
            if alias in ROUTING_ALIASES:
                self._routing_changed(conn, model, actor=actor or default_actor(), reason=reason)
            return change

    def _move(
        self,
        model: str,
        alias: str,
        action: AliasAction,
        version: int | None,
        actor: str | None,
        reason: str,
        expected: Expected,
        *,
        check_gates: bool = False,
    ) -> AliasChange:
        check_alias_name(alias)
        with self._transaction(write=True) as conn:
            self._model_row(conn, model, lock=True)
            if version is None:
                if current_version(conn, model, alias) is None:
                    raise NotFoundError(f"model {model!r} has no alias {alias!r}")
            else:
                self._check_aliasable(conn, model, version, check_gates=check_gates)
            change = move_alias(
                conn,
                model=model,
                alias=alias,
                action=action,
                version=version,
                actor=actor or default_actor(),
                reason=reason,
                at=self.metadata.clock(),
                expected=expected,
            )
            if alias in ROUTING_ALIASES and change.previous != change.current:
                self._routing_changed(conn, model, actor=actor or default_actor(), reason=reason)
            return change

    def _check_aliasable(self, conn: Connection, model: str, version: int, *, check_gates: bool) -> None:
        row = self._version_row(conn, model, version)
        if row.status != READY:
            raise RegistryError(
                f"version {version} of {model!r} is {row.status} ({row.failure_reason}); "
                "only ready versions can be aliased"
            )
        report = GateReport.from_dict(row.gates)
        if check_gates and report.blocks:
            raise PromotionBlocked(
                f"version {version} of {model!r} failed its gates "
                f"({', '.join(report.failed) or 'see its gate verdicts'}); promote with --force "
                "to override (audited)"
            )

    def _routing_changed(self, conn: Connection, model: str, *, actor: str, reason: str) -> None:
        raise NotImplementedError

    def aliases(self, model: str) -> dict[str, int]:
        """Every alias of ``model`` and the version it points at."""
        a = t.aliases
        with self._transaction() as conn:
            self._model_row(conn, model)
            rows = conn.execute(
                sa.select(a.c.alias, a.c.version).where(a.c.model == model).order_by(a.c.alias)
            ).all()
        return {r.alias: r.version for r in rows}

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        """The journal of one alias (``None``: every alias of the model), oldest first."""
        with self._transaction() as conn:
            self._model_row(conn, model)
            return journal(conn, model, alias)
