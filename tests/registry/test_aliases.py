from __future__ import annotations

import json
import multiprocessing as mp
import random
import sqlite3
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fourloops.errors import NotFoundError, PromotionBlocked, RegistryError, StoreError
from fourloops.registry import aliases as aliases_module
from fourloops.registry.aliases import AliasAction, AliasChange
from fourloops.registry.models import ModelRegistry
from fourloops.storage import tables
from fourloops.storage.metadata import MetadataStore

ARTIFACT = {"uri": "file:///artifacts/ab/abc", "sha256": "a" * 64, "size": 1234}


class Ticker:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2024, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def store(metadata_url: str) -> Iterator[MetadataStore]:
    store = MetadataStore(metadata_url, clock=Ticker())
    yield store
    store.close()


@pytest.fixture
def registry(store: MetadataStore) -> ModelRegistry:
    """A registry whose model ``delays`` has ready versions 1-4 and a failed version 5."""
    registry = ModelRegistry(store)
    registry.register_model("delays", "binary")
    for _ in range(4):
        registry.create_version("delays", artifact=ARTIFACT)
    registry.create_version("delays", status="failed", failure_reason="OOM")
    return registry


def test_set_alias_compare_and_set(registry: ModelRegistry) -> None:
    first = registry.set_alias("delays", "challenger", 1, actor="ann", reason="try", expected=None)
    assert first == AliasChange("delays", "challenger", None, 1)
    registry.set_alias("delays", "challenger", 2, actor="bob", reason="newer", expected=1)
    moved_by_bob = r"is version 2 \(set by bob at .*'newer'\), not version 1"
    with pytest.raises(RegistryError, match=moved_by_bob):
        registry.set_alias("delays", "challenger", 3, actor="ann", reason="x", expected=1)
    with pytest.raises(RegistryError, match="not unset as expected"):
        registry.set_alias("delays", "challenger", 3, actor="ann", reason="x", expected=None)
    assert registry.aliases("delays") == {"challenger": 2}
    # Pointing an alias where it already points changes and journals nothing.
    same = registry.set_alias("delays", "challenger", 2, actor="ann", reason="again")
    assert (same.previous, same.current) == (2, 2)
    assert len(registry.alias_history("delays", "challenger")) == 2


def test_only_ready_existing_versions_can_be_aliased(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="version 5 of 'delays' is failed \\(OOM\\)"):
        registry.set_alias("delays", "champion", 5, actor="a", reason="r")
    with pytest.raises(NotFoundError, match="model 'delays' has no version 8"):
        registry.promote("delays", 8, actor="a", reason="r")
    with pytest.raises(NotFoundError, match="no model named 'fares'"):
        registry.promote("fares", 1, actor="a", reason="r")
    for bad in ("", "12", "x" * 101):
        with pytest.raises(RegistryError, match="not a valid alias name"):
            registry.set_alias("delays", bad, 1, actor="a", reason="r")
    assert registry.aliases("delays") == {}
    assert registry.alias_history("delays") == []


def test_promote_and_rollback_walk_the_journal_as_a_stack(
    registry: ModelRegistry, store: MetadataStore
) -> None:
    assert registry.promote("delays", 1, actor="ci", reason="first").previous is None
    registry.promote("delays", 2, actor="ci", reason="better")
    registry.promote("delays", 3, actor="ci", reason="better still")
    assert registry.rollback("delays", actor="oncall", reason="p99") == AliasChange(
        "delays", "champion", 3, 2
    )
    registry.promote("delays", 4, actor="ci", reason="fixed")
    assert registry.rollback("delays", actor="oncall", reason="again").current == 2
    assert registry.rollback("delays", actor="oncall", reason="further").current == 1
    with pytest.raises(RegistryError, match="nothing to roll back to.*at version 1"):
        registry.rollback("delays", actor="oncall", reason="too far")
    with pytest.raises(RegistryError, match="nothing to roll back to.*'challenger'.*unset"):
        registry.rollback("delays", alias="challenger", actor="oncall", reason="x")
    assert registry.get_version("delays", "champion").version == 1

    history = registry.alias_history("delays", "champion")
    assert [(e.action, e.from_version, e.to_version) for e in history] == [
        (AliasAction.PROMOTE, None, 1),
        (AliasAction.PROMOTE, 1, 2),
        (AliasAction.PROMOTE, 2, 3),
        (AliasAction.ROLLBACK, 3, 2),
        (AliasAction.PROMOTE, 2, 4),
        (AliasAction.ROLLBACK, 4, 2),
        (AliasAction.ROLLBACK, 2, 1),
    ]
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert history[3].actor == "oncall" and history[3].reason == "p99"
    assert history[0].at.tzinfo is not None
    json.dumps([e.to_dict() for e in history])
    audit = [e for e in store.audit_entries("model:delays") if e["action"].startswith("alias.")]
    assert len(audit) == len(history)
    assert audit[0]["action"] == "alias.rollback"  # newest first
    assert audit[0]["details"] == {
        "alias": "champion",
        "from_version": 2,
        "to_version": 1,
        "reason": "further",
    }


def test_aliases_are_independent(registry: ModelRegistry) -> None:
    registry.promote("delays", 1, actor="a", reason="r")
    registry.promote("delays", 2, alias="challenger", actor="a", reason="r")
    registry.promote("delays", 3, alias="challenger", actor="a", reason="r")
    assert registry.aliases("delays") == {"challenger": 3, "champion": 1}
    assert registry.rollback("delays", alias="challenger", actor="a", reason="r").current == 2
    assert len(registry.alias_history("delays")) == 4
    assert len(registry.alias_history("delays", "champion")) == 1
    [summary] = registry.models()
    assert summary.aliases == {"challenger": 2, "champion": 1}


def test_delete_alias(registry: ModelRegistry) -> None:
    registry.promote("delays", 1, actor="a", reason="r")
    registry.promote("delays", 2, actor="a", reason="r")
    with pytest.raises(RegistryError, match="not version 1 as expected"):
        registry.delete_alias("delays", "champion", actor="a", reason="r", expected=1)
    change = registry.delete_alias("delays", "champion", actor="a", reason="retired", expected=2)
    assert (change.previous, change.current) == (2, None)
    assert registry.aliases("delays") == {}
    with pytest.raises(NotFoundError, match="has no alias 'champion'"):
        registry.delete_alias("delays", "champion", actor="a", reason="r")
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback("delays", actor="a", reason="r")
    last = registry.alias_history("delays", "champion")[-1]
    assert (last.action, last.from_version, last.to_version) == (AliasAction.DELETE, 2, None)
    # After a delete the history starts again.
    registry.promote("delays", 3, actor="a", reason="r", expected=None)
    registry.promote("delays", 4, actor="a", reason="r")
    assert registry.rollback("delays", actor="a", reason="r").current == 3


def test_failed_gates_block_promotion_unless_forced(registry: ModelRegistry) -> None:
    gates = {
        "passed": False,
        "verdicts": [
            {"gate": "min_auc", "passed": False},
            {"gate": "latency", "passed": True},
        ],
    }
    registry.create_version("delays", artifact=ARTIFACT, gates=gates)  # version 6
    blocked = r"version 6 of 'delays' failed its gates \(min_auc\)"
    with pytest.raises(PromotionBlocked, match=blocked):
        registry.promote("delays", 6, actor="a", reason="r")
    assert isinstance(PromotionBlocked("x"), RegistryError)
    # set_alias is the unchecked primitive; promote(force=True) records the override.
    registry.promote("delays", 6, actor="a", reason="hotfix", force=True)
    assert registry.alias_history("delays")[-1].reason == "hotfix [forced past failed gates]"


def test_a_move_and_its_records_commit_together(
    registry: ModelRegistry, store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.promote("delays", 1, actor="a", reason="r")
    broken = sa.Table(
        "no_such_audit_log",
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in tables.audit_log.columns),
    )
    monkeypatch.setattr(
        aliases_module,
        "t",
        types.SimpleNamespace(aliases=tables.aliases, alias_events=tables.alias_events, audit_log=broken),
    )
    with pytest.raises(StoreError):
        registry.promote("delays", 2, actor="a", reason="r")
    monkeypatch.undo()
    assert registry.aliases("delays") == {"champion": 1}
    assert len(registry.alias_history("delays")) == 1
    registry.promote("delays", 2, actor="a", reason="r")  # the connection pool is still healthy
    assert registry.aliases("delays") == {"champion": 2}


def test_sqlite_write_transactions_take_the_lock_first(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    registry = ModelRegistry(store)
    other = sqlite3.connect(tmp_path / "metadata.db", timeout=0.05)
    with registry._transaction(write=True) as conn:
        conn.execute(sa.select(tables.aliases)).all()  # only a read so far: the lock is held
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # released on commit
    other.rollback()
    other.close()
    store.close()


PROMOTIONS = 30


def _promote_many(url: str, worker: int, start: Any) -> None:
    registry = ModelRegistry(MetadataStore(url))
    rng = random.Random(worker)
    mine = (2 * worker + 1, 2 * worker + 2)
    start.wait()
    for i in range(PROMOTIONS):
        target = mine[i % 2]
        while True:
            current = registry.aliases("race").get("champion")
            time.sleep(rng.uniform(0, 0.002))  # widen the window between look and move
            try:
                registry.promote("race", target, actor=f"w{worker}", reason=str(i), expected=current)
                break
            except RegistryError:
                continue  # someone moved it since we looked: look again
    registry.metadata.close()


def test_two_processes_promote_with_compare_and_set(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    registry = ModelRegistry(store)
    registry.register_model("race", "binary")
    for _ in range(4):
        registry.create_version("race", artifact=ARTIFACT)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_promote_many, args=(metadata_url, w, start)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    history = registry.alias_history("race", "champion")
    assert len(history) == 2 * PROMOTIONS
    assert history[0].from_version is None
    for before, after in zip(history, history[1:], strict=False):
        assert after.from_version == before.to_version
    assert registry.aliases("race") == {"champion": history[-1].to_version}
    for worker in ("w0", "w1"):
        reasons = [e.reason for e in history if e.actor == worker]
        assert reasons == [str(i) for i in range(PROMOTIONS)]
    entries = store.audit_entries("model:race", limit=1000)
    audit = [e for e in entries if e["action"] == "alias.promote"]
    assert len(audit) == 2 * PROMOTIONS
    store.close()
