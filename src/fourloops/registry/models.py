"""The model registry: models, their numbered versions, and aliases with a journal.

Every loop reads it: training registers versions (with artifact hash, metrics,
gate verdicts and lineage), the server loads whatever ``champion`` points at,
the rollout controller promotes and rolls back. It lives in the metadata
database (SQLite or PostgreSQL) and is safe under concurrent writers:

* version numbers are 1, 2, 3... per model; two processes creating versions at
  once never get the same number (a unique constraint decides, the loser
  retries with the next number);
* every alias move runs in one transaction that first takes the model's write
  lock (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
  SQLite), then reads, compares-and-sets, and appends to the alias journal and
  the audit log; the move and its records commit together or not at all.

>>> from fourloops.storage.metadata import MetadataStore
>>> registry = ModelRegistry(MetadataStore("sqlite://"))
>>> registry.register_model("delays", "binary")
>>> art = {"uri": "file:///a/1", "sha256": "0" * 64, "size": 10}
>>> [registry.create_version("delays", artifact=art, actor="ci").version for _ in range(2)]
[1, 2]
>>> registry.promote("delays", 1, actor="me", reason="first model")
AliasChange(model='delays', alias='champion', previous=None, current=1)
>>> registry.promote("delays", 2, actor="me", reason="better AUC")
AliasChange(model='delays', alias='champion', previous=1, current=2)
>>> registry.rollback("delays", actor="me", reason="regressed on winter flights").current
1
>>> registry.get_version("delays", "champion").version
1
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from fourloops.clock import as_utc
from fourloops.errors import NotFoundError, RegistryError, StoreError
from fourloops.registry.aliases import (
    ANY,
    AliasChange,
    AliasEvent,
    AliasOperations,
    current_version,
)
from fourloops.registry.records import (
    GateReport,
    ModelSummary,
    ModelVersion,
    Stage,
    VersionStatus,
    is_version_number,
)
from fourloops.registry.routing import RoutingOperations
from fourloops.storage import tables as t
from fourloops.storage.metadata import MetadataStore, default_actor

__all__ = [
    "ANY",
    "AliasChange",
    "AliasEvent",
    "ModelRegistry",
    "ModelSummary",
    "ModelVersion",
    "Stage",
    "VersionStatus",
]

#: How often ``create_version`` retries after losing a race for a version number.
VERSION_ATTEMPTS = 50
#: Upper bound of the random pause between those retries, per attempt (seconds).
RETRY_PAUSE_S = 0.005
_ARTIFACT_KEYS = ("uri", "sha256", "size")


class _Conflict(StoreError):
    """A write lost a race on a unique key (retried where that is expected)."""


def _enum_value(kind: type[enum.StrEnum], value: str, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in kind)
        raise RegistryError(f"unknown {what} {value!r} (use one of {allowed})") from None


class ModelRegistry(RoutingOperations, AliasOperations):
    """Models, versions, aliases and routing in a :class:`MetadataStore` (see the module docs).

    (Routing comes first among the bases: its ``_routing_changed`` is the one
    the alias moves call.)
    """

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata
        self._engine = metadata.engine
        self._sqlite = self._engine.dialect.name == "sqlite"

    def __repr__(self) -> str:
        return f"ModelRegistry({self._where()})"

    def _where(self) -> str:
        return sa.engine.make_url(self.metadata.url).render_as_string(hide_password=True)

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction; a ``write`` one on SQLite holds the write lock from its start.

        pysqlite opens a deferred transaction only at the first DML statement, so a
        read-then-write transaction could read stale data and then fail to upgrade
        its lock. Issuing ``BEGIN IMMEDIATE`` ourselves takes the lock (waiting up to
        the busy timeout) before anything is read; pysqlite sees the open transaction
        and commits or rolls it back with the SQLAlchemy one.
        """
        try:
            with self._engine.begin() as conn:
                if write and self._sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        except IntegrityError as err:
            raise _Conflict(f"registry {self._where()}: conflicting write: {err.orig}") from err
        except SQLAlchemyError as err:
            raise StoreError(f"registry {self._where()}: {err.__class__.__name__}: {err}") from err

    def _model_row(self, conn: Connection, model: str, *, lock: bool = False) -> Row[Any]:
        query = sa.select(t.models).where(t.models.c.name == model)
        if lock:
            # Serialises every alias move of this model. NO KEY UPDATE (not UPDATE) so
            # that inserting versions, whose foreign key takes KEY SHARE, is not blocked.
            query = query.with_for_update(key_share=True)
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no model named {model!r} in the registry")
        return row

    def _version_row(self, conn: Connection, model: str, version: int) -> Row[Any]:
        v = t.model_versions
        row = None
        if is_version_number(version):  # no query with a number the driver cannot hold
            row = conn.execute(sa.select(v).where(v.c.model == model, v.c.version == version)).first()
        if row is None:
            self._model_row(conn, model)
            raise NotFoundError(f"model {model!r} has no version {version}")
        return row

    def _audit(self, conn: Connection, action: str, model: str, actor: str, details: dict[str, Any]) -> None:
        conn.execute(
            t.audit_log.insert().values(
                at=self.metadata.clock(),
                actor=actor,
                action=action,
                subject=f"model:{model}",
                details=details,
            )
        )

    # -- models ----------------------------------------------------------------------------
    def register_model(
        self,
        name: str,
        task: str,
        *,
        description: str = "",
        spec: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        """Create the model, or update its task, description, spec and tags (idempotent).

        ``spec`` and ``tags`` left as ``None`` keep what is stored. A model that
        has versions cannot change its task.
        """
        if not name:
            raise RegistryError("a model needs a name")
        m = t.models
        for _ in range(VERSION_ATTEMPTS):
            try:
                with self._transaction(write=True) as conn:
                    row = conn.execute(sa.select(m).where(m.c.name == name)).first()
                    if row is None:
                        conn.execute(
                            m.insert().values(
                                name=name,
                                task=task,
                                created_at=self.metadata.clock(),
                                description=description,
                                spec=spec,
                                tags=dict(tags or {}),
                            )
                        )
                        self._audit(conn, "model.register", name, default_actor(), {"task": task})
                        return
                    if row.task != task and self._count_versions(conn, name):
                        raise RegistryError(
                            f"model {name!r} is registered for task {row.task!r} and has "
                            f"versions; it cannot become {task!r} (register a new model)"
                        )
                    values: dict[str, Any] = {"task": task, "description": description}
                    if spec is not None:
                        values["spec"] = spec
                    if tags is not None:
                        values["tags"] = dict(tags)
                    conn.execute(m.update().where(m.c.name == name).values(**values))
                    return
            except _Conflict:
                continue  # another process registered it first: update instead
        raise RegistryError(f"could not register model {name!r}: too many concurrent writers")

    @staticmethod
    def _count_versions(conn: Connection, model: str) -> int:
        v = t.model_versions
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(v).where(v.c.model == model)).scalar_one()
        )

    def models(self) -> list[ModelSummary]:
        """Every registered model, by name."""
        return self._summaries(None)

    def model(self, name: str) -> ModelSummary:
        """One registered model (``NotFoundError`` when there is none of that name)."""
        found = self._summaries(name)
        if not found:
            raise NotFoundError(f"no registered model {name!r}")
        return found[0]

    def _summaries(self, name: str | None) -> list[ModelSummary]:
        v, a, m = t.model_versions, t.aliases, t.models
        with self._transaction() as conn:
            query = sa.select(m).order_by(m.c.name)
            counting = sa.select(
                v.c.model, sa.func.count().label("n"), sa.func.max(v.c.version).label("latest")
            ).group_by(v.c.model)
            aliasing = sa.select(a.c.model, a.c.alias, a.c.version).order_by(a.c.alias)
            if name is not None:
                query = query.where(m.c.name == name)
                counting = counting.where(v.c.model == name)
                aliasing = aliasing.where(a.c.model == name)
            rows = conn.execute(query).all()
            counts = {r.model: (int(r.n), r.latest) for r in conn.execute(counting)}
            names: dict[str, dict[str, int]] = {}
            for r in conn.execute(aliasing):
                names.setdefault(r.model, {})[r.alias] = r.version
        return [
            ModelSummary(
                name=r.name,
                task=r.task,
                created_at=as_utc(r.created_at),
                description=r.description,
                spec=r.spec,
                tags=r.tags,
                versions=counts.get(r.name, (0, None))[0],
                latest=counts.get(r.name, (0, None))[1],
                aliases=names.get(r.name, {}),
            )
            for r in rows
        ]

    # -- versions --------------------------------------------------------------------------
    def create_version(
        self,
        model: str,
        *,
        status: str = VersionStatus.READY,
        artifact: dict[str, Any] | None = None,
        format: str | None = None,
        metrics: dict[str, Any] | None = None,
        gates: GateReport | Mapping[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        failure_reason: str | None = None,
        description: str = "",
        tags: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Record the next version of ``model`` (1, 2, 3...) and return it.

        A ``ready`` version needs its ``artifact`` (``uri``, ``sha256``, ``size``);
        a ``failed`` one needs a ``failure_reason``. Failed runs get a number too,
        so the history shows every attempt.
        """
        state: VersionStatus = _enum_value(VersionStatus, status, "version status")
        if state is VersionStatus.READY:
            missing = [k for k in _ARTIFACT_KEYS if not artifact or k not in artifact]
            if missing:
                raise RegistryError(
                    f"a ready version of {model!r} needs an artifact with {', '.join(missing)}"
                )
        elif not failure_reason:
            raise RegistryError(f"a failed version of {model!r} needs a failure_reason")
        values: dict[str, Any] = {
            "model": model,
            "status": state.value,
            "stage": Stage.NONE.value,
            "created_by": actor or default_actor(),
            "artifact": artifact,
            "format": format,
            "metrics": metrics or {},
            "gates": (gates if isinstance(gates, GateReport) else GateReport.from_dict(gates)).to_dict(),
            "lineage": lineage or {},
            "params": params or {},
            "failure_reason": failure_reason,
            "description": description,
            "tags": dict(tags or {}),
        }
        v = t.model_versions
        for attempt in range(VERSION_ATTEMPTS):
            try:
                with self._transaction(write=True) as conn:
                    self._model_row(conn, model)
                    last = conn.execute(
                        sa.select(sa.func.max(v.c.version)).where(v.c.model == model)
                    ).scalar_one()
                    values.update(version=(last or 0) + 1, created_at=self.metadata.clock())
                    key = conn.execute(v.insert().values(**values)).inserted_primary_key
                    self._audit(
                        conn,
                        "model.version",
                        model,
                        values["created_by"],
                        {"version": values["version"], "status": state.value},
                    )
                return ModelVersion.from_row({**values, "id": int(key[0]) if key else 0})
            except _Conflict:
                # Another writer took this number between our read and insert: try the next.
                time.sleep(random.uniform(0, RETRY_PAUSE_S * (attempt + 1)))
        raise RegistryError(
            f"could not assign a version number to {model!r} after {VERSION_ATTEMPTS} attempts"
        )

    def get_version(self, model: str, version_or_alias: int | str) -> ModelVersion:
        """One version, by number (``3`` or ``"3"``) or through an alias (``"champion"``)."""
        with self._transaction() as conn:
            number = self._resolve(conn, model, version_or_alias)
            return ModelVersion.from_row(self._version_row(conn, model, number)._mapping)

    def _resolve(self, conn: Connection, model: str, version_or_alias: int | str) -> int:
        if isinstance(version_or_alias, int):
            return version_or_alias
        if version_or_alias.isdigit():
            return int(version_or_alias)
        number = current_version(conn, model, version_or_alias)
        if number is None:
            self._model_row(conn, model)
            raise NotFoundError(f"model {model!r} has no alias {version_or_alias!r}")
        return number

    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of ``model``, oldest first."""
        v = t.model_versions
        with self._transaction() as conn:
            self._model_row(conn, model)
            rows = conn.execute(sa.select(v).where(v.c.model == model).order_by(v.c.version)).mappings().all()
        return [ModelVersion.from_row(r) for r in rows]

    def set_stage(self, model: str, version: int, stage: str, *, actor: str | None = None) -> ModelVersion:
        """Move one version to ``stage`` (a :class:`Stage` value); audited."""
        new: Stage = _enum_value(Stage, stage, "stage")
        actor = actor or default_actor()
        v = t.model_versions
        with self._transaction(write=True) as conn:
            row = self._version_row(conn, model, version)
            if new is not Stage.NONE and row.status != VersionStatus.READY:
                raise RegistryError(
                    f"version {version} of {model!r} failed ({row.failure_reason}); "
                    f"it cannot enter stage {new.value!r}"
                )
            conn.execute(v.update().where(v.c.id == row.id).values(stage=new.value))
            self._audit(
                conn,
                "model.stage",
                model,
                actor,
                {"version": version, "from": row.stage, "to": new.value},
            )
            return ModelVersion.from_row({**row._mapping, "stage": new.value})

    def record_judgement(
        self,
        model: str,
        version: int,
        *,
        metrics: dict[str, Any],
        gates: GateReport,
        judgement: dict[str, Any],
        inputs: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Replace a ready version's metrics and gate verdicts with a new judgement; audited.

        ``judgement`` (cutoff, data, definition...) is appended to the version's
        ``lineage["judgements"]``; ``inputs``, when given, becomes the artifact's input
        encoder (a version trained elsewhere is then served through the encoder it was
        judged with). The previous verdicts stay in the audit log.
        """
        v = t.model_versions
        actor = actor or default_actor()
        with self._transaction(write=True) as conn:
            row = self._version_row(conn, model, version)
            if row.status != VersionStatus.READY:
                raise RegistryError(f"version {version} of {model!r} is {row.status}; it cannot be judged")
            lineage = dict(row.lineage or {})
            lineage["judgements"] = [*lineage.get("judgements", []), {**judgement, "by": actor}]
            artifact = dict(row.artifact or {})
            if inputs is not None:
                artifact["meta"] = {**artifact.get("meta", {}), "inputs": inputs}
            values = {"metrics": metrics, "gates": gates.to_dict(), "lineage": lineage, "artifact": artifact}
            conn.execute(v.update().where(v.c.id == row.id).values(**values))
            before = GateReport.from_dict(row.gates)
            self._audit(
                conn,
                "model.judge",
                model,
                actor,
                {
                    "version": version,
                    "passed": gates.passed,
                    "failed": gates.failed,
                    "before": {"passed": before.passed, "failed": before.failed},
                },
            )
            return ModelVersion.from_row({**row._mapping, **values})

    def set_tags(
        self, model: str, version: int | None, tags: Mapping[str, Any], *, actor: str | None = None
    ) -> None:
        """Merge ``tags`` into a version's (``None``: the model's); ``None`` values remove. Audited.

        Model tags also steer serving (the canary share, an A/B split), so every
        change is in the audit log with who made it.
        """
        table = t.models if version is None else t.model_versions
        with self._transaction(write=True) as conn:
            row = self._model_row(conn, model) if version is None else self._version_row(conn, model, version)
            merged = {**row.tags, **tags}
            merged = {k: val for k, val in merged.items() if val is not None}
            key = t.models.c.name == model if version is None else t.model_versions.c.id == row.id
            conn.execute(table.update().where(key).values(tags=merged))
            self._audit(
                conn, "model.tags", model, actor or default_actor(), {"version": version, "tags": dict(tags)}
            )

    def set_description(self, model: str, version: int | None, description: str) -> None:
        """Replace a version's description (``version=None``: the model's)."""
        with self._transaction(write=True) as conn:
            if version is None:
                self._model_row(conn, model)
                conn.execute(
                    t.models.update().where(t.models.c.name == model).values(description=description)
                )
            else:
                row = self._version_row(conn, model, version)
                conn.execute(
                    t.model_versions.update()
                    .where(t.model_versions.c.id == row.id)
                    .values(description=description)
                )
