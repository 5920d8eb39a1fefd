"""Shared fixtures: external services (Redis, PostgreSQL) and backend suites.

Service fixtures probe the service and skip the test when it is unreachable,
unless ``FOURLOOPS_REQUIRE_SERVICES=1`` (CI), where they fail instead. Every
test gets its own Redis namespace and the run its own PostgreSQL database,
so parallel runs do not collide; both are removed afterwards.

Override the addresses with ``FOURLOOPS_TEST_REDIS_URL`` and
``FOURLOOPS_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROBE_TIMEOUT_S = 1.0
RUN_ID = uuid.uuid4().hex[:10]


def _require_services() -> bool:
    return os.environ.get("FOURLOOPS_REQUIRE_SERVICES", "") == "1"


def _unavailable(what: str, url: str, why: object) -> None:
    message = f"{what} is not reachable at {url} ({why})"
    if _require_services():
        pytest.fail(f"{message}; FOURLOOPS_REQUIRE_SERVICES=1 requires it", pytrace=False)
    pytest.skip(message)


def _probe(url: str, default_port: int) -> str | None:
    """None when a TCP connection to the URL's host and port succeeds, else why not."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), PROBE_TIMEOUT_S
        ):
            return None
    except OSError as err:
        return str(err)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis server (skips or fails otherwise)."""
    url = os.environ.get("FOURLOOPS_TEST_REDIS_URL", REDIS_URL)
    why = _probe(url, 6379)
    if why is not None:
        _unavailable("Redis", url, why)
    return url


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A namespace unique to this test; every Redis key containing it is removed after."""
    import redis

    namespace = f"fltest-{RUN_ID}-{uuid.uuid4().hex[:8]}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*{namespace}*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database created for this run and dropped after it."""
    base = os.environ.get("FOURLOOPS_TEST_POSTGRES_URL", POSTGRES_URL)
    why = _probe(base, 5432)
    if why is not None:
        _unavailable("PostgreSQL", base, why)
    try:
        import psycopg
    except ImportError as err:
        _unavailable("PostgreSQL", base, f"psycopg is not installed: {err}")
    parts = urlsplit(base)
    libpq = urlunsplit(parts._replace(scheme="postgresql"))
    database = f"fltest_{RUN_ID}"
    try:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
    except psycopg.Error as err:
        _unavailable("PostgreSQL", base, err)
    yield urlunsplit(parts._replace(path=f"/{database}"))
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


ONLINE_BACKENDS = ["sqlite", pytest.param("redis", marks=pytest.mark.services)]


@pytest.fixture(params=ONLINE_BACKENDS)
def online_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """An empty online store on every backend the machine offers.

    Open more handles on the same data with
    ``open_online_store(store.url, namespace=store.namespace)``.
    """
    from fourloops.storage.online import open_online_store

    if request.param == "sqlite":
        url, namespace = f"sqlite:///{tmp_path / 'online.db'}", "test"
    else:
        url = request.getfixturevalue("redis_url")
        namespace = request.getfixturevalue("redis_namespace")
    store = open_online_store(url, namespace=namespace)
    yield store
    store.close()


@contextmanager
def _postgres_schema(request: pytest.FixtureRequest, prefix: str) -> Iterator[str]:
    """A URL of the run's PostgreSQL database whose search path is a new, empty schema."""
    import psycopg

    base = request.getfixturevalue("postgres_url")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    libpq = urlunsplit(urlsplit(base)._replace(scheme="postgresql"))
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


METADATA_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]


@pytest.fixture(params=METADATA_BACKENDS)
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty metadata database on every backend the machine offers.

    PostgreSQL tests each get their own schema in the run's database.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    with _postgres_schema(request, "t") as url:
        yield url


EVENT_BACKENDS = ["local", pytest.param("postgres", marks=pytest.mark.services)]


@pytest.fixture(params=EVENT_BACKENDS)
def event_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty event store on every backend the machine offers.

    Local stores live in the test's temporary folder; PostgreSQL stores each get
    their own schema in the run's database.
    """
    if request.param == "local":
        yield f"local://{tmp_path / 'events'}"
        return
    with _postgres_schema(request, "ev") as url:
        yield url


@pytest.fixture
def postgres_events_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL event store (its own schema), for PostgreSQL-only tests."""
    with _postgres_schema(request, "evpg") as url:
        yield url


PROJECT_BACKENDS = ["embedded", pytest.param("postgres", marks=pytest.mark.services)]


@pytest.fixture(scope="module", params=PROJECT_BACKENDS)
def project_config(request: pytest.FixtureRequest) -> Iterator[str]:
    """``fourloops.toml`` of a test project (named ``trips``) on every backend the machine offers.

    ``embedded``: the defaults (SQLite, local event segments). ``postgres``: metadata and events in
    a PostgreSQL schema of their own, named in the URLs' search path as the README shows.
    """
    head = '[project]\nname = "trips"\n'
    if request.param == "embedded":
        yield head
        return
    with _postgres_schema(request, "proj") as url:
        yield head + f'[storage]\nmetadata = "{url}"\nevents = "{url}"\n'
