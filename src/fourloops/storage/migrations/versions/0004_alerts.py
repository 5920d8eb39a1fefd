"""Alerts of the monitor and their snoozes.

``alerts`` holds one row per alert episode (a rule that held for a model's
route, column and segment from a first window on), with its evidence, cause
and playbook action; a later monitor run that sees the same episode updates
``last_seen_at`` and its windows instead of adding a row. ``alert_snoozes``
silences a kind of alert (for one column, or all) of a model until a time.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("column_name", sa.String(400), nullable=True),
        sa.Column("segment", sa.String(400), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("windows", sa.Integer, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key", name="uq_alerts_key"),
    )
    op.create_index("ix_alerts_model", "alerts", ["model", "id"])
    op.create_table(
        "alert_snoozes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("column_name", sa.String(400), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_snoozes_model", "alert_snoozes", ["model", "until"])


def downgrade() -> None:
    op.drop_index("ix_alert_snoozes_model", "alert_snoozes")
    op.drop_table("alert_snoozes")
    op.drop_index("ix_alerts_model", "alerts")
    op.drop_table("alerts")
