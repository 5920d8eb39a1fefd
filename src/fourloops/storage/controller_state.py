"""The adaptation controller's state in the metadata store: a lease, and the rollouts.

**Lease.** One controller acts at a time: it holds the lease named
``controller`` until ``expires_at`` and renews it at every tick; another
controller gets it only once it has expired (the holder died or hung), so a
second controller waits and takes over within the lease time. Acquiring is
one conditional ``UPDATE`` (or the first ``INSERT``), atomic on SQLite and
PostgreSQL alike.

**Rollouts.** A row per rollout of a candidate version: its policy (as JSON),
the stage it is in and since when, a ``state`` holding the stages it went
through, the consecutive failures and errors of its checks and the last
checks' numbers, and its status: ``running``, ``paused`` (waiting for a
human), ``aborted`` or ``completed``. A model has at most one running or
paused rollout.

>>> from datetime import UTC, datetime, timedelta
>>> from fourloops.storage.metadata import MetadataStore
>>> store = MetadataStore("sqlite://")
>>> leases, t0 = Leases(store), datetime(2024, 1, 1, tzinfo=UTC)
>>> leases.acquire("controller", "a", ttl=timedelta(seconds=30), at=t0)
True
>>> leases.acquire("controller", "b", ttl=timedelta(seconds=30), at=t0 + timedelta(seconds=10))
False
>>> leases.acquire("controller", "b", ttl=timedelta(seconds=30), at=t0 + timedelta(seconds=31))
True
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fourloops.errors import ConfigError, StoreError
from fourloops.storage import tables as t
from fourloops.storage.metadata import MetadataStore

__all__ = ["Leases", "RolloutLog", "RolloutRecord", "RolloutStatus"]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Leases:
    """Named leases with an expiry (see the module docstring)."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"Leases({self.metadata!r})"

    def acquire(self, name: str, holder: str, *, ttl: timedelta, at: datetime) -> bool:
        """Take or renew lease ``name`` for ``holder`` until ``at + ttl``; False if another holds it."""
        lease = t.leases
        expires = at + ttl
        with self.metadata.transaction() as conn:
            taken = conn.execute(
                lease.update()
                .where(lease.c.name == name, sa.or_(lease.c.holder == holder, lease.c.expires_at <= at))
                .values(holder=holder, expires_at=expires, acquired_at=at)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(sa.select(lease.c.name).where(lease.c.name == name)).first()
            if exists is not None:
                return False
        try:
            with self.metadata.transaction() as conn:
                conn.execute(
                    lease.insert().values(name=name, holder=holder, expires_at=expires, acquired_at=at)
                )
            return True
        except StoreError as err:
            if isinstance(err.__cause__, IntegrityError):
                return False  # another controller inserted it first
            raise

    def release(self, name: str, holder: str) -> None:
        """Give the lease up now (a controller stopping cleanly)."""
        lease = t.leases
        with self.metadata.transaction() as conn:
            conn.execute(lease.delete().where(lease.c.name == name, lease.c.holder == holder))

    def holder(self, name: str, *, at: datetime) -> str | None:
        """Who holds lease ``name`` at ``at`` (None: nobody, or it expired)."""
        lease = t.leases
        with self.metadata.transaction() as conn:
            row = conn.execute(sa.select(lease).where(lease.c.name == name)).mappings().first()
        if row is None or _aware(row["expires_at"]) <= at:
            return None
        return str(row["holder"])


class RolloutStatus(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    ABORTED = "aborted"
    COMPLETED = "completed"


_OPEN = (RolloutStatus.RUNNING.value, RolloutStatus.PAUSED.value)


@dataclass
class RolloutRecord:
    """One rollout as stored (see the module docstring); change it and :meth:`RolloutLog.save` it."""

    id: int
    model: str
    version: int
    champion: int | None
    policy: dict[str, Any]
    stage_index: int
    stage_started_at: datetime
    status: RolloutStatus
    started_at: datetime
    updated_at: datetime
    state: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def open(self) -> bool:
        """Running or paused: it still holds the model."""
        return self.status.value in _OPEN

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "champion": self.champion,
            "policy": self.policy,
            "stage_index": self.stage_index,
            "stage_started_at": self.stage_started_at.isoformat(),
            "status": self.status.value,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "state": self.state,
            "reason": self.reason,
        }


def _record(row: Any) -> RolloutRecord:
    return RolloutRecord(
        id=int(row["id"]),
        model=str(row["model"]),
        version=int(row["version"]),
        champion=row["champion"],
        policy=dict(row["policy"]),
        stage_index=int(row["stage_index"]),
        stage_started_at=_aware(row["stage_started_at"]),
        status=RolloutStatus(row["status"]),
        started_at=_aware(row["started_at"]),
        updated_at=_aware(row["updated_at"]),
        state=copy.deepcopy(dict(row["state"])),
        reason=str(row["reason"]),
    )


class RolloutLog:
    """Rollouts of every model, in the metadata store (see the module docstring)."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"RolloutLog({self.metadata!r})"

    def start(
        self,
        model: str,
        version: int,
        *,
        champion: int | None,
        policy: dict[str, Any],
        at: datetime,
        state: dict[str, Any] | None = None,
        reason: str = "",
    ) -> RolloutRecord:
        """Record a new running rollout at stage 0; refused while the model has an open one."""
        r = t.rollouts
        with self.metadata.transaction() as conn:
            open_one = conn.execute(
                sa.select(r.c.version, r.c.status).where(r.c.model == model, r.c.status.in_(_OPEN))
            ).first()
            if open_one is not None:
                raise ConfigError(
                    f"model {model!r} already has a {open_one.status} rollout of version {open_one.version}; "
                    f"abort it first (fourloops rollout abort {model})"
                )
            inserted = conn.execute(
                r.insert().values(
                    model=model,
                    version=version,
                    champion=champion,
                    policy=policy,
                    stage_index=0,
                    stage_started_at=at,
                    status=RolloutStatus.RUNNING.value,
                    started_at=at,
                    updated_at=at,
                    state=state or {},
                    reason=reason,
                )
            ).inserted_primary_key
            assert inserted is not None
            new_id = inserted[0]
            row = conn.execute(sa.select(r).where(r.c.id == new_id)).mappings().one()
        return _record(row)

    def current(self, model: str) -> RolloutRecord | None:
        """The model's open (running or paused) rollout, if any."""
        r = t.rollouts
        with self.metadata.transaction() as conn:
            row = (
                conn.execute(
                    sa.select(r).where(r.c.model == model, r.c.status.in_(_OPEN)).order_by(r.c.id.desc())
                )
                .mappings()
                .first()
            )
        return None if row is None else _record(row)

    def latest(self, model: str) -> RolloutRecord | None:
        """The model's newest rollout, open or ended."""
        history = self.history(model, limit=1)
        return history[0] if history else None

    def history(self, model: str, *, limit: int = 50) -> list[RolloutRecord]:
        """The model's rollouts, newest first."""
        r = t.rollouts
        with self.metadata.transaction() as conn:
            rows = (
                conn.execute(sa.select(r).where(r.c.model == model).order_by(r.c.id.desc()).limit(limit))
                .mappings()
                .all()
            )
        return [_record(row) for row in rows]

    def save(self, record: RolloutRecord, *, at: datetime) -> RolloutRecord:
        """Store ``record``'s stage, status, state and reason (``updated_at`` becomes ``at``)."""
        r = t.rollouts
        record.updated_at = at
        with self.metadata.transaction() as conn:
            conn.execute(
                r.update()
                .where(r.c.id == record.id)
                .values(
                    stage_index=record.stage_index,
                    stage_started_at=record.stage_started_at,
                    status=record.status.value,
                    updated_at=at,
                    state=record.state,
                    reason=record.reason,
                )
            )
        return record
