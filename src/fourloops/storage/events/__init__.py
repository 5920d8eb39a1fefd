"""Prediction event stores: the durable log of every prediction, joined with delayed labels.

``open_event_store(url)`` picks the backend from the URL:

* ``local:///abs/folder``, ``local://relative/folder`` or a plain folder path
  -> :class:`LocalEventStore` (the embedded default, multi-process safe);
* ``postgresql+psycopg://user@host/db`` (or ``postgresql://``)
  -> :class:`PostgresEventStore` (partitioned by day).

Every backend follows :class:`EventStore` (see :mod:`fourloops.storage.events.base`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fourloops.errors import ConfigError
from fourloops.storage.events.base import (
    MAX_REQUEST_ID_CHARS,
    SCAN_SCHEMA,
    EventStore,
    Label,
    LabelStats,
    PredictionEvent,
    corrupt_records,
)
from fourloops.storage.events.local import LocalEventStore
from fourloops.storage.events.postgres import PostgresEventStore

__all__ = [
    "MAX_REQUEST_ID_CHARS",
    "SCAN_SCHEMA",
    "EventStore",
    "Label",
    "LabelStats",
    "LocalEventStore",
    "PostgresEventStore",
    "PredictionEvent",
    "corrupt_records",
    "open_event_store",
]

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def open_event_store(url: str | Path, *, fsync: bool | None = None, **options: Any) -> EventStore:
    """Open the event store named by ``url``.

    ``fsync`` asks for durability against machine crashes too (default: off for
    the local store, the server's setting, normally on, for PostgreSQL).

    >>> import tempfile
    >>> store = open_event_store(tempfile.mkdtemp())
    >>> type(store).__name__, store.count()
    ('LocalEventStore', 0)
    >>> store.close()
    """
    text = str(url)
    if "://" not in text:
        return LocalEventStore(text, fsync=bool(fsync), **options)
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme == "local":
        if not rest:
            raise ConfigError(f"event store URL {text!r} names no folder: use local:///path/to/dir")
        return LocalEventStore(rest, fsync=bool(fsync), **options)
    if scheme in _POSTGRES_SCHEMES:
        return PostgresEventStore(text, fsync=True if fsync is None else fsync, **options)
    raise ConfigError(
        f"unsupported event store URL {text!r}: use local:///path/to/dir, a folder path, "
        "or postgresql+psycopg://user@host/db"
    )
