from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from fourloops.storage import tables
from fourloops.storage.metadata import DefinitionRecord, MetadataStore


def test_migrations_create_the_declared_tables(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    inspector = sa.inspect(store.engine)
    for table in tables.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    # Opening again is a no-op (already at head).
    MetadataStore(metadata_url).close()
    store.close()


def test_definitions_heads_and_history(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    store.apply_definitions([DefinitionRecord("feature_view", "w", "v1", {"ttl": "3h"})], actor="a")
    store.apply_definitions([DefinitionRecord("feature_view", "w", "v2", {"ttl": "4h"})], actor="b")
    heads = store.heads()
    assert heads[("feature_view", "w")].version == "v2"
    assert heads[("feature_view", "w")].spec == {"ttl": "4h"}
    history = store.definition_history("feature_view", "w")
    assert [(h["version"], h["applied_by"]) for h in history] == [("v1", "a"), ("v2", "b")]
    assert history[0]["applied_at"].tzinfo is not None
    # Re-applying an old version moves the head back without duplicating history.
    store.apply_definitions([DefinitionRecord("feature_view", "w", "v1", {"ttl": "3h"})])
    assert store.heads()[("feature_view", "w")].version == "v1"
    assert len(store.definition_history("feature_view", "w")) == 2
    store.apply_definitions([], remove=[("feature_view", "w")])
    assert store.heads() == {}
    store.close()


def test_schema_runs_and_audit(metadata_url: str) -> None:
    clock = lambda: datetime(2013, 5, 1, tzinfo=UTC)  # noqa: E731
    store = MetadataStore(metadata_url, clock=clock)
    assert store.last_schema("weather") is None
    store.record_schema("weather", {"columns": {"a": "double"}})
    store.record_schema("weather", {"columns": {"a": "string"}})
    assert store.last_schema("weather") == {"columns": {"a": "string"}}
    run = store.record_validation(
        view="weather",
        source="f.parquet",
        contract_version="c1",
        n_rows=10,
        n_valid=9,
        n_quarantined=1,
        quarantine_path="q.parquet",
        report={"failures": []},
    )
    [row] = store.validation_runs("weather")
    assert row["id"] == run and row["n_quarantined"] == 1 and row["started_at"] == clock()
    store.record_materialization(view="weather", start=None, end=clock(), written=3, skipped=1)
    [m] = store.materialization_runs("weather")
    assert (m["rows_written"], m["rows_skipped"], m["end"]) == (3, 1, clock())
    store.audit("apply.create", "feature_view:weather", {"version": "x"}, actor="me")
    [entry] = store.audit_entries("feature_view:weather")
    assert (entry["actor"], entry["action"], entry["details"]) == (
        "me",
        "apply.create",
        {"version": "x"},
    )
    store.close()


def _apply_many(url: str, worker: int, n: int) -> None:
    store = MetadataStore(url)
    for i in range(n):
        store.apply_definitions([DefinitionRecord("entity", f"e{worker}", f"v{i}", {"i": i})])
        store.audit("apply.update", f"entity:e{worker}", {"i": i})
    store.close()


def test_two_processes_write_concurrently(metadata_url: str) -> None:
    MetadataStore(metadata_url).close()  # migrate once before the race
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_apply_many, args=(metadata_url, w, 25)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = MetadataStore(metadata_url)
    heads = store.heads()
    assert heads[("entity", "e0")].version == "v24" and heads[("entity", "e1")].version == "v24"
    assert len(store.audit_entries(limit=1000)) == 50
    store.close()


def test_a_failed_audit_entry_rolls_the_definition_change_back(metadata_url: str) -> None:
    import pytest

    from fourloops.errors import StoreError

    store = MetadataStore(metadata_url)
    store.apply_definitions(
        [DefinitionRecord("entity", "e", "v1", {})], audit=[("apply.create", "entity:e", {})]
    )
    with pytest.raises((StoreError, TypeError, ValueError)):
        store.apply_definitions(
            [DefinitionRecord("entity", "e", "v2", {})],
            audit=[("apply.update", "entity:e", {"bad": object()})],  # cannot be stored as JSON
        )
    assert store.heads()[("entity", "e")].version == "v1"
    assert [e["action"] for e in store.audit_entries("entity:e")] == ["apply.create"]
    store.close()


def test_schema_head_is_the_newest_migration(metadata_url: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from fourloops.storage import metadata

    cfg = Config()
    cfg.set_main_option("script_location", str(metadata._MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == metadata.SCHEMA_HEAD
    store = MetadataStore(metadata_url)
    try:
        assert store._revision() == metadata.SCHEMA_HEAD  # a new database is migrated to it
    finally:
        store.close()


def test_an_up_to_date_database_opens_without_loading_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'm.db'}"
    MetadataStore(url).close()  # creates and migrates
    code = (
        "import sys\nfrom fourloops.storage.metadata import MetadataStore\n"
        f"MetadataStore({url!r}).close()\nprint('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
