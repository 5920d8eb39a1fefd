"""Model registry: models, model versions, aliases and the alias journal.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("spec", sa.JSON, nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), sa.ForeignKey("models.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("artifact", sa.JSON, nullable=True),
        sa.Column("format", sa.String(64), nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("gates", sa.JSON, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.UniqueConstraint("model", "version", name="uq_model_versions_model_version"),
    )
    op.create_table(
        "aliases",
        sa.Column("model", sa.String(200), sa.ForeignKey("models.name"), primary_key=True),
        sa.Column("alias", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_alias_events_model_alias", "alias_events", ["model", "alias", "id"])


def downgrade() -> None:
    op.drop_index("ix_alias_events_model_alias", table_name="alias_events")
    for table in ("alias_events", "aliases", "model_versions", "models"):
        op.drop_table(table)
