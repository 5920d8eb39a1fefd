"""Routing owned by the registry: a routing row per model and its journal.

The canary share and an A/B split used to be model tags; they move into
``routing`` (one row per model, with a revision number) and every change is
journaled in ``routing_events`` with the whole routing after it. Existing
tags are carried over and removed from the tags.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LEGACY_TAGS = ("canary_share", "ab_split")


def upgrade() -> None:
    op.create_table(
        "routing",
        sa.Column("model", sa.String(200), sa.ForeignKey("models.name"), primary_key=True),
        sa.Column("canary_share", sa.Float, nullable=False),
        sa.Column("ab", sa.JSON, nullable=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("sticky_key", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "routing_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_routing_events_model", "routing_events", ["model", "id"])
    _carry_over_tags()


def _carry_over_tags() -> None:
    conn = op.get_bind()
    models = sa.table("models", sa.column("name"), sa.column("tags", sa.JSON))
    routing = sa.table(
        "routing",
        sa.column("model"),
        sa.column("canary_share"),
        sa.column("ab", sa.JSON),
        sa.column("stage"),
        sa.column("sticky_key"),
        sa.column("revision"),
        sa.column("updated_at"),
    )
    now = datetime.now(UTC)
    for name, tags in conn.execute(sa.select(models.c.name, models.c.tags)).all():
        tags = _as_dict(tags)
        if not any(k in tags for k in _LEGACY_TAGS):
            continue
        share = tags.get("canary_share")
        split = tags.get("ab_split")
        conn.execute(
            routing.insert().values(
                model=name,
                canary_share=float(share) if isinstance(share, int | float) else 0.0,
                ab=split if isinstance(split, dict) and split else None,
                stage="none",
                sticky_key="unit_id",
                revision=1,
                updated_at=now,
            )
        )
        kept = {k: v for k, v in tags.items() if k not in _LEGACY_TAGS}
        conn.execute(models.update().where(models.c.name == name).values(tags=kept))


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}


def downgrade() -> None:
    op.drop_index("ix_routing_events_model", table_name="routing_events")
    op.drop_table("routing_events")
    op.drop_table("routing")
