"""Initial metadata schema: definitions, schema observations, validation runs,
materialisations, audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "definitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("kind", "name", "version", name="uq_definitions_kind_name_version"),
    )
    op.create_table(
        "definition_heads",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "schema_observations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
    )
    op.create_index("ix_schema_observations_source", "schema_observations", ["source", "id"])
    op.create_table(
        "validation_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("contract_version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.BigInteger, nullable=False),
        sa.Column("n_valid", sa.BigInteger, nullable=False),
        sa.Column("n_quarantined", sa.BigInteger, nullable=False),
        sa.Column("quarantine_path", sa.Text, nullable=True),
        sa.Column("report", sa.JSON, nullable=False),
    )
    op.create_index("ix_validation_runs_view", "validation_runs", ["view", "id"])
    op.create_table(
        "materializations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows_written", sa.BigInteger, nullable=False),
        sa.Column("rows_skipped", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_materializations_view", "materializations", ["view", "id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject", "id"])


def downgrade() -> None:
    for index, table in (
        ("ix_audit_log_subject", "audit_log"),
        ("ix_materializations_view", "materializations"),
        ("ix_validation_runs_view", "validation_runs"),
        ("ix_schema_observations_source", "schema_observations"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "audit_log",
        "materializations",
        "validation_runs",
        "schema_observations",
        "definition_heads",
        "definitions",
    ):
        op.drop_table(table)
