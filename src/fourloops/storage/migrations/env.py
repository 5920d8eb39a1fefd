"""Alembic environment: runs migrations on the connection fourloops hands over."""

from __future__ import annotations

from alembic import context

from fourloops.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only used through fourloops
    raise RuntimeError("fourloops migrations run through fourloops.storage.metadata")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
