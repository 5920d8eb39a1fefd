"""The adaptation controller's state: its lease, and each model's rollouts.

``leases`` holds one row per lease name: who holds it and until when (one
controller acts at a time; another takes over once the lease expires).
``rollouts`` holds every rollout of a candidate version: its policy, the stage
it is in and since when, the stages it went through, the last checks and how
it ended (running, paused, aborted, completed).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("champion", sa.Integer, nullable=True),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("stage_index", sa.Integer, nullable=False),
        sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_rollouts_model", "rollouts", ["model", "id"])


def downgrade() -> None:
    op.drop_index("ix_rollouts_model", "rollouts")
    op.drop_table("rollouts")
    op.drop_table("leases")
