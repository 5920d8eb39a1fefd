"""The stores of a project, built from its configuration: the one place backends are chosen.

Every store opens on first use and is shared by every loop of the project:
the metadata database and the registry on it, the offline store, the online
store, the batch engine, the artifact store, the prediction event store and
the key that hides sensitive fields in events. Each gets the project's clock,
so one (simulated) clock drives them all. Nothing here serves: commands that
do not serve never import the server.
"""

from __future__ import annotations

import os
import secrets
import time
from functools import cached_property
from typing import TYPE_CHECKING

from fourloops.config import MIN_HASH_KEY_BYTES
from fourloops.errors import ConfigError
from fourloops.project.base import ProjectBase
from fourloops.storage.metadata import MetadataStore
from fourloops.storage.online import OnlineStore, open_online_store

if TYPE_CHECKING:
    from fourloops.engines import Engine
    from fourloops.evaluation.sinks import Dispatcher
    from fourloops.ingestion.offline_store import OfflineStore
    from fourloops.registry.models import ModelRegistry
    from fourloops.storage.alert_log import AlertLog
    from fourloops.storage.artifacts import ArtifactStore
    from fourloops.storage.events import EventStore
    from fourloops.storage.events.columnar import EventTables

__all__ = ["HASH_KEY_FILE", "Stores"]

#: Where a project keeps its events' hash key when ``storage.events_hash_key`` is not set.
HASH_KEY_FILE = ".fourloops/events-hash.key"
#: How long to wait for another process that is writing the key file right now.
_KEY_WAIT_S = 1.0


class Stores(ProjectBase):
    """The store half of :class:`fourloops.Project`: each store built once, from the config."""

    @cached_property
    def metadata(self) -> MetadataStore:
        """Definitions, runs, the registry's tables and the audit log (SQLite or PostgreSQL)."""
        return MetadataStore(self.config.url(self.config.storage.metadata), clock=self.clock)

    @cached_property
    def offline(self) -> OfflineStore:
        """Validated feature rows, as Parquet."""
        from fourloops.ingestion.offline_store import OfflineStore

        return OfflineStore(self.config.path(self.config.storage.offline))

    @cached_property
    def online(self) -> OnlineStore:
        """The latest feature values per entity (SQLite or Redis), namespaced by the project name."""
        return open_online_store(self.config.url(self.config.storage.online), namespace=self.name)

    @cached_property
    def engine(self) -> Engine:
        """The batch engine (DuckDB) for joins and summaries."""
        from fourloops.engines import DuckDBEngine

        e = self.config.engine
        temp = self.config.path(e.temp_directory)
        return DuckDBEngine(
            memory_limit=e.memory_limit or None,
            threads=e.threads or None,
            temp_directory=str(temp),
        )

    @cached_property
    def registry(self) -> ModelRegistry:
        """Model versions, aliases and routing, on the metadata database."""
        from fourloops.registry.models import ModelRegistry

        return ModelRegistry(self.metadata)

    @cached_property
    def alert_log(self) -> AlertLog:
        """The monitor's alerts (one row per episode) and snoozes, on the metadata database."""
        from fourloops.storage.alert_log import AlertLog

        return AlertLog(self.metadata)

    @cached_property
    def alert_dispatcher(self) -> Dispatcher:
        """Sends new alerts to the configured sinks in the background (drained when the project closes)."""
        from fourloops.evaluation.sinks import Dispatcher, sinks_from

        a = self.config.alerts
        return Dispatcher(
            sinks_from(
                a.sink_names,
                webhook=a.webhook,
                webhook_format=a.webhook_format,
                timeout=a.timeout_seconds,
                retries=a.webhook_retries,
            )
        )

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """Content-addressed model files (a local folder or any fsspec URL)."""
        from fourloops.storage.artifacts import open_artifact_store

        value = self.config.storage.artifacts
        return open_artifact_store(value if "://" in value else self.config.path(value))

    @cached_property
    def event_store(self) -> EventStore:
        """The prediction event log with its labels (closed with the project)."""
        return self.open_event_store()

    def open_event_store(self) -> EventStore:
        """A new handle on the event log (``storage.events``: a folder or a PostgreSQL URL); close it.

        ``storage.events_fsync = "true"`` makes every group of events survive a
        machine crash too (an ``fsync`` per group); by default the local store
        survives the process being killed, and PostgreSQL commits durably.
        """
        from fourloops.storage.events import open_event_store

        value = self.config.storage.events
        target = value if "://" in value else self.config.path(value)
        return open_event_store(target, fsync=self.config.storage.fsync)

    @cached_property
    def event_tables(self) -> EventTables:
        """The event log compacted to typed Parquet by model and day (``storage.event_tables``)."""
        from fourloops.storage.events.columnar import EventTables

        return EventTables(self.config.path(self.config.storage.event_tables))

    @cached_property
    def events_hash_key(self) -> bytes:
        """The key of the keyed hash that hides sensitive fields in events.

        ``storage.events_hash_key`` when set (at least 16 bytes; give it through
        ``FOURLOOPS_STORAGE_EVENTS_HASH_KEY`` and use the same one on every
        server of a project). Otherwise a random 32-byte key kept in the
        project's ``.fourloops/events-hash.key`` (mode 0600), created by
        whichever process needs it first.
        """
        configured = self.config.storage.events_hash_key
        if configured:
            return configured.encode()  # its length is checked when the config loads
        path = self.config.path(HASH_KEY_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made earlier, or by another worker just now
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
        deadline = time.monotonic() + _KEY_WAIT_S
        text = path.read_text().strip()
        while not text and time.monotonic() < deadline:  # another process is between create and write
            time.sleep(0.01)
            text = path.read_text().strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) < MIN_HASH_KEY_BYTES:
            raise ConfigError(f"{path} does not hold a hex key of at least {MIN_HASH_KEY_BYTES} bytes")
        return key

    def close(self) -> None:
        """Release database connections and files (after handing queued alerts to their sinks)."""
        dispatcher = self.__dict__.pop("alert_dispatcher", None)
        if dispatcher is not None:
            dispatcher.close(
                timeout=self.config.alerts.timeout_seconds * (self.config.alerts.webhook_retries + 1)
            )
        for name in ("metadata", "online", "event_store"):
            store = self.__dict__.pop(name, None)
            if store is not None:
                store.close()
