"""The metadata database: definitions, schema observations, runs and the audit log.

SQLite by default (``sqlite:///path.db``), PostgreSQL when configured
(``postgresql+psycopg://user@host/db``). The schema is managed by Alembic; a
store brings its database up to the latest migration when it opens.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from fourloops.clock import Clock, as_utc, utcnow
from fourloops.errors import ConfigError, StoreError
from fourloops.storage import tables as t

__all__ = ["DefinitionRecord", "MetadataStore", "default_actor"]

_MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration. A database already there is opened without loading Alembic
#: (a server starts faster); a test checks this against the migrations folder.
SCHEMA_HEAD = "0006"
#: How long a SQLite writer waits for a lock before failing (seconds).
SQLITE_BUSY_TIMEOUT = 30


def default_actor() -> str:
    """Who is acting: ``FOURLOOPS_ACTOR`` if set, else the OS user name."""
    actor = os.environ.get("FOURLOOPS_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _aware(value: datetime | None) -> datetime | None:
    # SQLite keeps no zone: everything is written in UTC, so re-attach it on read.
    return None if value is None else as_utc(value)


@dataclass(frozen=True)
class DefinitionRecord:
    """One definition as stored: kind (entity, source, feature_view, ...), name, version, spec."""

    kind: str
    name: str
    version: str
    spec: dict[str, Any]


class MetadataStore:
    """System of record for definitions, validation and materialisation runs and the audit log.

    >>> store = MetadataStore("sqlite://")
    >>> store.audit("apply", "feature_view:weather", {"version": "abc"}, actor="docs")
    >>> [e["action"] for e in store.audit_entries()]
    ['apply']
    """

    def __init__(self, url: str, *, clock: Clock = utcnow) -> None:
        self.url = url
        self.clock = clock
        self.engine = _create_engine(url)
        self.upgrade()

    # -- lifecycle -------------------------------------------------------------------------
    def upgrade(self) -> None:
        """Apply any pending Alembic migrations."""
        try:
            if self._revision() == SCHEMA_HEAD:
                return
            from alembic import command
            from alembic.config import Config as AlembicConfig

            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(_MIGRATIONS))
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as err:
            raise StoreError(f"metadata store {self._safe_url()}: migration failed: {err}") from err

    def _revision(self) -> str | None:
        """The database's schema revision (Alembic's ``alembic_version``), None when it has none."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def close(self) -> None:
        self.engine.dispose()

    def _safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def transaction(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction; database errors come out as :class:`StoreError`."""
        return self._begin()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise StoreError(f"metadata store {self._safe_url()}: {err.__class__.__name__}: {err}") from err

    # -- definitions -----------------------------------------------------------------------
    def heads(self) -> dict[tuple[str, str], DefinitionRecord]:
        """The definition versions currently in force, by (kind, name)."""
        query = sa.select(
            t.definition_heads.c.kind,
            t.definition_heads.c.name,
            t.definitions.c.version,
            t.definitions.c.spec,
        ).join(
            t.definitions,
            sa.and_(
                t.definitions.c.kind == t.definition_heads.c.kind,
                t.definitions.c.name == t.definition_heads.c.name,
                t.definitions.c.version == t.definition_heads.c.version,
            ),
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return {(r.kind, r.name): DefinitionRecord(r.kind, r.name, r.version, r.spec) for r in rows}

    def apply_definitions(
        self,
        records: Sequence[DefinitionRecord],
        *,
        actor: str | None = None,
        remove: Sequence[tuple[str, str]] = (),
        audit: Sequence[tuple[str, str, dict[str, Any]]] = (),
    ) -> None:
        """Make ``records`` the current versions (and drop ``remove``) in one transaction.

        ``audit`` entries (action, subject, details) are written in the same
        transaction: the change and its record commit together or not at all.
        """
        actor = actor or default_actor()
        now = self.clock()
        with self._begin() as conn:
            for rec in records:
                exists = conn.execute(
                    sa.select(t.definitions.c.id).where(
                        t.definitions.c.kind == rec.kind,
                        t.definitions.c.name == rec.name,
                        t.definitions.c.version == rec.version,
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        t.definitions.insert().values(
                            kind=rec.kind,
                            name=rec.name,
                            version=rec.version,
                            spec=rec.spec,
                            applied_at=now,
                            applied_by=actor,
                        )
                    )
                head = t.definition_heads
                updated = conn.execute(
                    head.update()
                    .where(head.c.kind == rec.kind, head.c.name == rec.name)
                    .values(version=rec.version, updated_at=now)
                ).rowcount
                if not updated:
                    conn.execute(
                        head.insert().values(
                            kind=rec.kind, name=rec.name, version=rec.version, updated_at=now
                        )
                    )
            for kind, name in remove:
                conn.execute(
                    t.definition_heads.delete().where(
                        t.definition_heads.c.kind == kind, t.definition_heads.c.name == name
                    )
                )
            for action, subject, details in audit:
                conn.execute(
                    t.audit_log.insert().values(
                        at=now, actor=actor, action=action, subject=subject, details=details
                    )
                )

    def definition_history(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every applied version of one definition, oldest first."""
        d = t.definitions
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(d.c.version, d.c.applied_at, d.c.applied_by)
                .where(d.c.kind == kind, d.c.name == name)
                .order_by(d.c.id)
            ).all()
        return [
            {"version": r.version, "applied_at": _aware(r.applied_at), "applied_by": r.applied_by}
            for r in rows
        ]

    # -- schema observations ---------------------------------------------------------------
    def record_schema(self, source: str, snapshot: dict[str, Any]) -> None:
        with self._begin() as conn:
            conn.execute(
                t.schema_observations.insert().values(
                    source=source, observed_at=self.clock(), snapshot=snapshot
                )
            )

    def last_schema(self, source: str) -> dict[str, Any] | None:
        s = t.schema_observations
        with self._begin() as conn:
            row = conn.execute(
                sa.select(s.c.snapshot).where(s.c.source == source).order_by(s.c.id.desc()).limit(1)
            ).first()
        return None if row is None else dict(row.snapshot)

    # -- validation runs -------------------------------------------------------------------
    def record_validation(
        self,
        *,
        view: str,
        source: str,
        contract_version: str,
        n_rows: int,
        n_valid: int,
        n_quarantined: int,
        quarantine_path: str | None,
        report: dict[str, Any],
    ) -> int:
        with self._begin() as conn:
            result = conn.execute(
                t.validation_runs.insert().values(
                    view=view,
                    source=source,
                    contract_version=contract_version,
                    started_at=self.clock(),
                    n_rows=n_rows,
                    n_valid=n_valid,
                    n_quarantined=n_quarantined,
                    quarantine_path=quarantine_path,
                    report=report,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def validation_runs(self, view: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        v = t.validation_runs
        query = sa.select(v).order_by(v.c.id.desc()).limit(limit)
        if view is not None:
            query = query.where(v.c.view == view)
        with self._begin() as conn:
            rows = conn.execute(query).mappings().all()
        return [{**r, "started_at": _aware(r["started_at"])} for r in rows]

    # -- materialisations ------------------------------------------------------------------
    def record_materialization(
        self, *, view: str, start: datetime | None, end: datetime, written: int, skipped: int
    ) -> None:
        with self._begin() as conn:
            conn.execute(
                t.materializations.insert().values(
                    view=view,
                    start=start,
                    end=end,
                    rows_written=written,
                    rows_skipped=skipped,
                    finished_at=self.clock(),
                )
            )

    def materialization_runs(self, view: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        m = t.materializations
        query = sa.select(m).order_by(m.c.id.desc()).limit(limit)
        if view is not None:
            query = query.where(m.c.view == view)
        with self._begin() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                **r,
                "start": _aware(r["start"]),
                "end": _aware(r["end"]),
                "finished_at": _aware(r["finished_at"]),
            }
            for r in rows
        ]

    # -- audit -----------------------------------------------------------------------------
    def audit(self, action: str, subject: str, details: dict[str, Any], *, actor: str | None = None) -> None:
        """Append one entry to the audit log."""
        with self._begin() as conn:
            conn.execute(
                t.audit_log.insert().values(
                    at=self.clock(),
                    actor=actor or default_actor(),
                    action=action,
                    subject=subject,
                    details=details,
                )
            )

    def audit_entries(self, subject: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        a = t.audit_log
        query = sa.select(a).order_by(a.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(a.c.subject == subject)
        with self._begin() as conn:
            rows = conn.execute(query).mappings().all()
        return [{**r, "at": _aware(r["at"])} for r in rows]


def _create_engine(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as err:
        raise ConfigError(f"metadata URL {url!r} is not a database URL: {err}") from err
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if database and database != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
            cur.close()

        return engine
    if backend == "postgresql":
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except ModuleNotFoundError as err:
            raise ConfigError(
                f"metadata URL {parsed.render_as_string(hide_password=True)} needs the PostgreSQL "
                "driver: pip install 'fourloops[postgres]'"
            ) from err
    raise ConfigError(
        f"metadata URL {url!r}: unsupported database {backend!r} (use sqlite:/// or postgresql+psycopg://)"
    )
