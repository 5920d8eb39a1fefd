"""What servers counted per model and period: answers, contract rejections, CPU time.

``serving_periods`` holds one row per server process, model and period (a
refresh interval): the requests it answered, the requests the model's
contract rejected (by field and rule) and the process's CPU seconds in the
period, shared among its models by their answers. The monitor sums them per
window (contract rejections by rule, CPU per 1,000 predictions).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_periods",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("process", sa.String(200), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("predictions", sa.BigInteger, nullable=False),
        sa.Column("rejected", sa.BigInteger, nullable=False),
        sa.Column("rejections", sa.JSON, nullable=False),
        sa.Column("cpu_seconds", sa.Float, nullable=False),
    )
    op.create_index("ix_serving_periods_model", "serving_periods", ["model", "period_end"])


def downgrade() -> None:
    op.drop_index("ix_serving_periods_model", "serving_periods")
    op.drop_table("serving_periods")
