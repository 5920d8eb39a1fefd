"""SQLAlchemy table definitions of the metadata database.

The schema is created and evolved only by the Alembic migrations in
``storage/migrations``; these definitions are what the code queries, and a
test checks that they match what the migrations create.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "alert_snoozes",
    "alerts",
    "leases",
    "rollouts",
    "alias_events",
    "aliases",
    "audit_log",
    "definition_heads",
    "definitions",
    "materializations",
    "metadata",
    "model_versions",
    "models",
    "routing",
    "serving_periods",
    "routing_events",
    "schema_observations",
    "validation_runs",
]

metadata = MetaData()

#: Every version of every definition ever applied (append-only).
definitions = Table(
    "definitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("applied_by", String(200), nullable=False),
    UniqueConstraint("kind", "name", "version", name="uq_definitions_kind_name_version"),
)

#: The version of each definition currently in force.
definition_heads = Table(
    "definition_heads",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: The physical schema of a source as last observed (for schema-drift detection).
schema_observations = Table(
    "schema_observations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    Column("snapshot", JSON, nullable=False),
    Index("ix_schema_observations_source", "source", "id"),
)

#: One row per validation of a source against its contract.
validation_runs = Table(
    "validation_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("view", String(200), nullable=False),
    Column("source", String(200), nullable=False),
    Column("contract_version", String(64), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("n_valid", BigInteger, nullable=False),
    Column("n_quarantined", BigInteger, nullable=False),
    Column("quarantine_path", Text, nullable=True),
    Column("report", JSON, nullable=False),
    Index("ix_validation_runs_view", "view", "id"),
)

#: One row per materialisation of a feature view into the online store.
materializations = Table(
    "materializations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("view", String(200), nullable=False),
    Column("start", DateTime(timezone=True), nullable=True),
    Column("end", DateTime(timezone=True), nullable=False),
    Column("rows_written", BigInteger, nullable=False),
    Column("rows_skipped", BigInteger, nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Index("ix_materializations_view", "view", "id"),
)

#: Append-only journal of every decision (apply, promote, rollback, ...).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(400), nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_audit_log_subject", "subject", "id"),
)

#: One row per registered model (the name is the key every other model table uses).
models = Table(
    "models",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("task", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("description", Text, nullable=False),
    Column("spec", JSON, nullable=True),
    Column("tags", JSON, nullable=False),
)

#: Every trained (or failed) version of every model; numbers are 1, 2, 3... per model.
model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), ForeignKey("models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("artifact", JSON, nullable=True),
    Column("format", String(64), nullable=True),
    Column("metrics", JSON, nullable=False),
    Column("gates", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("failure_reason", Text, nullable=True),
    Column("description", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    UniqueConstraint("model", "version", name="uq_model_versions_model_version"),
)

#: Where each alias (champion, challenger, ...) of each model points now.
aliases = Table(
    "aliases",
    metadata,
    Column("model", String(200), ForeignKey("models.name"), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Append-only journal of every alias move; replayed, it is the alias's history.
alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("alias", String(100), nullable=False),
    Column("action", String(16), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_alias_events_model_alias", "model", "alias", "id"),
)

#: How each model's traffic is split beyond its aliases (shares, an A/B split, the rollout stage).
routing = Table(
    "routing",
    metadata,
    Column("model", String(200), ForeignKey("models.name"), primary_key=True),
    Column("canary_share", Float, nullable=False),
    Column("ab", JSON, nullable=True),
    Column("stage", String(32), nullable=False),
    Column("sticky_key", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Every routing change, with the whole routing after it.
routing_events = Table(
    "routing_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_routing_events_model", "model", "id"),
)

#: One row per alert episode of the monitor (updated, not repeated, when a later run sees it again).
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=True),
    Column("route", String(200), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("column_name", String(400), nullable=True),
    Column("segment", String(400), nullable=True),
    Column("window_start", DateTime(timezone=True), nullable=True),
    Column("window_end", DateTime(timezone=True), nullable=True),
    Column("windows", Integer, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("cause", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("key", name="uq_alerts_key"),
    Index("ix_alerts_model", "model", "id"),
)

#: Alerts of a kind (for one column, or all) of a model silenced until a time.
alert_snoozes = Table(
    "alert_snoozes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("column_name", String(400), nullable=True),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_alert_snoozes_model", "model", "until"),
)

#: Who holds a lease (the controller's: one acts at a time) and until when.
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
)

#: Every rollout of a candidate: its policy, stage, history and how it ended.
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("champion", Integer, nullable=True),
    Column("policy", JSON, nullable=False),
    Column("stage_index", Integer, nullable=False),
    Column("stage_started_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("state", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_rollouts_model", "model", "id"),
)

#: What each server process counted per model over a short period (a refresh interval): requests
#: answered, requests the contract rejected (by field and rule), and the process's CPU time.
serving_periods = Table(
    "serving_periods",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("process", String(200), nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("period_end", DateTime(timezone=True), nullable=False),
    Column("predictions", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("rejections", JSON, nullable=False),
    Column("cpu_seconds", Float, nullable=False),
    Index("ix_serving_periods_model", "model", "period_end"),
)
