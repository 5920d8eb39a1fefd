"""The PostgreSQL event store's own behaviour: lost connections, dropped partitions, safe names.

Needs the run's PostgreSQL (skipped without it, failing under FOURLOOPS_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fourloops.storage.events import PredictionEvent
from fourloops.storage.events.postgres import PostgresEventStore

pytestmark = pytest.mark.services

NOW = datetime.now(UTC).replace(microsecond=0)


def _event(rid: str) -> PredictionEvent:
    return PredictionEvent(rid, None, NOW, "churn", 1, "champion", {"x": 1.0}, 0.25, 1.0, 1.0)


@pytest.fixture
def url(postgres_events_url: str) -> str:
    return postgres_events_url


def _admin(url: str) -> object:
    import psycopg

    from fourloops.storage.events.postgres import _libpq

    return psycopg.connect(_libpq(url.split("?")[0]), autocommit=True)


def test_a_connection_lost_between_appends_is_reopened_without_failing_a_request(url: str) -> None:
    store = PostgresEventStore(url)
    store.append([_event("before")])
    pid = store._conn.info.backend_pid
    with _admin(url) as admin:  # a server restart, a failover, an idle-connection reaper
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    store.append([_event("after")])  # reconnects and retries once
    assert store._conn.info.backend_pid != pid
    assert sorted(store.scan().column("request_id").to_pylist()) == ["after", "before"]
    store.close()


def test_a_partition_dropped_by_retention_is_recreated(url: str) -> None:
    store = PostgresEventStore(url)
    store.append([_event("a")])
    with _admin(url) as admin:
        schema = url.split("search_path%3D")[1]
        admin.execute(f'DROP TABLE "{schema}".prediction_events_p{NOW:%Y%m%d}')
    store.append([_event("b")])
    assert store.scan().column("request_id").to_pylist() == ["b"]
    store.close()


def test_the_password_never_shows_in_names(url: str) -> None:
    store = PostgresEventStore(url)
    store.url = "postgresql+psycopg://fl:s3cret@db.example:5432/events"
    assert "s3cret" not in repr(store) and ":***@" in repr(store)
    store.url = url
    store.close()


def test_the_readmes_search_path_keeps_a_projects_tables_in_its_own_schema(url: str) -> None:
    """README, Configuration: a schema named in the URL's search path holds the metadata and the events."""
    from pathlib import Path

    from fourloops.storage.metadata import MetadataStore

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert '?options=-csearch_path%3Dflights"`; the same' in readme and "?options=-csearch_path%3D" in url
    schema = url.split("search_path%3D")[1]
    MetadataStore(url).close()
    store = PostgresEventStore(url)
    store.append([_event("in-schema")])
    store.close()
    ours = ("alembic_version", "model_versions", "aliases", "prediction_events", "prediction_labels")
    with _admin(url) as admin:
        found = admin.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name = ANY(%s)",
            [list(ours)],
        ).fetchall()
    assert {name for where, name in found if where == schema} == set(ours)
    assert not [name for where, name in found if where == "public"]
