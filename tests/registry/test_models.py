from __future__ import annotations

import doctest
import importlib
import json
import multiprocessing as mp
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fourloops.errors import NotFoundError, RegistryError, StoreError
from fourloops.registry.models import ModelRegistry, Stage, VersionStatus
from fourloops.storage.metadata import MetadataStore

ARTIFACT = {"uri": "file:///artifacts/ab/abc", "sha256": "a" * 64, "size": 1234}
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class Ticker:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = START

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
    registry = ModelRegistry(store)
    registry.register_model("delays", "binary", description="late flights", spec={"k": 1})
    return registry


def test_register_model_is_an_idempotent_upsert(registry: ModelRegistry) -> None:
    registry.register_model("delays", "binary", description="flights > 15 min late")
    registry.register_model("fares", "regression", tags={"team": "pricing"})
    [delays, fares] = registry.models()
    assert (delays.name, delays.task) == ("delays", "binary")
    assert delays.description == "flights > 15 min late"
    assert delays.spec == {"k": 1}  # spec=None keeps the stored spec
    assert delays.created_at == START + timedelta(seconds=1)
    assert (delays.versions, delays.latest, delays.aliases) == (0, None, {})
    assert fares.tags == {"team": "pricing"}
    registry.register_model("delays", "binary", spec={"k": 2}, tags={"a": "b"})
    [delays, _] = registry.models()
    assert (delays.spec, delays.tags) == ({"k": 2}, {"a": "b"})
    json.dumps(delays.to_dict())
    with pytest.raises(RegistryError, match="needs a name"):
        registry.register_model("", "binary")


def test_task_is_fixed_once_a_model_has_versions(registry: ModelRegistry) -> None:
    registry.register_model("delays", "regression")  # no versions yet: allowed
    registry.register_model("delays", "binary")
    registry.create_version("delays", artifact=ARTIFACT)
    with pytest.raises(RegistryError, match="cannot become 'regression'"):
        registry.register_model("delays", "regression")


def test_create_version_numbers_and_records_every_field(registry: ModelRegistry) -> None:
    first = registry.create_version(
        "delays",
        artifact=ARTIFACT,
        format="sklearn",
        metrics={"auc": 0.71},
        gates={"passed": True, "verdicts": []},
        lineage={"code": "abc"},
        params={"depth": 3},
        description="baseline",
        tags={"k": "v"},
        actor="ci",
    )
    failed = registry.create_version(
        "delays", status="failed", failure_reason="ValueError: no rows", actor="ci"
    )
    third = registry.create_version("delays", status=VersionStatus.READY, artifact=ARTIFACT)
    assert [first.version, failed.version, third.version] == [1, 2, 3]
    assert first.status is VersionStatus.READY and first.stage is Stage.NONE
    assert failed.status is VersionStatus.FAILED and failed.artifact is None
    assert failed.failure_reason == "ValueError: no rows"
    assert third.created_by  # the default actor
    stored = registry.get_version("delays", 1)
    assert stored == first
    assert stored.created_at.tzinfo is not None and stored.created_at.utcoffset() == timedelta(0)
    assert (stored.metrics, stored.params, stored.lineage, stored.tags) == (
        {"auc": 0.71},
        {"depth": 3},
        {"code": "abc"},
        {"k": "v"},
    )
    as_dict = json.loads(json.dumps(stored.to_dict()))
    assert as_dict["status"] == "ready" and as_dict["stage"] == "none"
    assert as_dict["artifact"] == ARTIFACT and as_dict["version"] == 1
    assert datetime.fromisoformat(as_dict["created_at"]) == stored.created_at
    assert [v.version for v in registry.versions("delays")] == [1, 2, 3]
    [summary] = registry.models()
    assert (summary.versions, summary.latest) == (3, 3)


def test_create_version_rejects_incomplete_records(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="needs an artifact with uri, sha256, size"):
        registry.create_version("delays")
    with pytest.raises(RegistryError, match="needs an artifact with size"):
        registry.create_version("delays", artifact={"uri": "x", "sha256": "y"})
    with pytest.raises(RegistryError, match="needs a failure_reason"):
        registry.create_version("delays", status="failed")
    with pytest.raises(RegistryError, match="unknown version status 'done'"):
        registry.create_version("delays", status="done", artifact=ARTIFACT)
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        registry.create_version("nope", artifact=ARTIFACT)
    assert registry.versions("delays") == []


def test_get_version_by_number_string_or_alias(registry: ModelRegistry) -> None:
    for _ in range(2):
        registry.create_version("delays", artifact=ARTIFACT)
    registry.set_alias("delays", "champion", 2, actor="me", reason="best")
    assert registry.get_version("delays", 1).version == 1
    assert registry.get_version("delays", "1").version == 1
    assert registry.get_version("delays", "champion").version == 2
    with pytest.raises(NotFoundError, match="model 'delays' has no version 9"):
        registry.get_version("delays", 9)
    with pytest.raises(NotFoundError, match="model 'delays' has no alias 'challenger'"):
        registry.get_version("delays", "challenger")
    with pytest.raises(NotFoundError, match="no model named 'fares'"):
        registry.get_version("fares", "champion")
    with pytest.raises(NotFoundError, match="no model named 'fares'"):
        registry.get_version("fares", 1)
    with pytest.raises(NotFoundError, match="no model named 'fares'"):
        registry.versions("fares")


def test_set_stage_validates_and_is_audited(registry: ModelRegistry, store: MetadataStore) -> None:
    registry.create_version("delays", artifact=ARTIFACT)
    registry.create_version("delays", status="failed", failure_reason="boom")
    moved = registry.set_stage("delays", 1, "canary", actor="controller")
    assert moved.stage is Stage.CANARY
    assert registry.get_version("delays", 1).stage is Stage.CANARY
    registry.set_stage("delays", 1, Stage.PRODUCTION)
    with pytest.raises(RegistryError, match="unknown stage 'live'.*'production'"):
        registry.set_stage("delays", 1, "live")
    with pytest.raises(RegistryError, match="version 2 of 'delays' failed \\(boom\\)"):
        registry.set_stage("delays", 2, "canary")
    assert registry.set_stage("delays", 2, "none").stage is Stage.NONE
    with pytest.raises(NotFoundError, match="no version 5"):
        registry.set_stage("delays", 5, "canary")
    stages = [e for e in store.audit_entries("model:delays") if e["action"] == "model.stage"]
    assert stages[-1]["actor"] == "controller"
    assert stages[-1]["details"] == {"version": 1, "from": "none", "to": "canary"}


def test_set_tags_and_description(registry: ModelRegistry, store: MetadataStore) -> None:
    registry.create_version("delays", artifact=ARTIFACT, tags={"a": "1", "b": "2"})
    registry.set_tags("delays", 1, {"b": None, "c": "3"})
    registry.set_description("delays", 1, "retrained after the schema fix")
    version = registry.get_version("delays", 1)
    assert version.tags == {"a": "1", "c": "3"}
    assert version.description == "retrained after the schema fix"
    registry.set_tags("delays", None, {"owner": "ops"})
    registry.set_description("delays", None, "departure delay > 15 min")
    [summary] = registry.models()
    assert (summary.tags, summary.description) == ({"owner": "ops"}, "departure delay > 15 min")
    with pytest.raises(NotFoundError):
        registry.set_tags("delays", 7, {"x": 1})
    with pytest.raises(NotFoundError):
        registry.set_description("fares", None, "x")
    # Tags steer serving (canary share, A/B split): every change is audited, refused ones are not.
    registry.set_tags("delays", None, {"canary_share": 0.2}, actor="admin-api")
    tags = [
        (e["actor"], e["details"]) for e in store.audit_entries("model:delays") if e["action"] == "model.tags"
    ]
    assert len(tags) == 3
    assert tags[0] == ("admin-api", {"version": None, "tags": {"canary_share": 0.2}})  # newest first
    assert {"version": 1, "tags": {"b": None, "c": "3"}} in [d for _, d in tags]


def test_versions_are_audited(registry: ModelRegistry, store: MetadataStore) -> None:
    registry.create_version("delays", artifact=ARTIFACT, actor="ci")
    actions = [(e["action"], e["actor"], e["details"]) for e in store.audit_entries("model:delays")]
    assert ("model.version", "ci", {"version": 1, "status": "ready"}) in actions
    assert any(a == "model.register" for a, _, _ in actions)


def test_backend_errors_become_store_errors(registry: ModelRegistry, store: MetadataStore) -> None:
    store.engine.dispose()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alias_events")
    registry.create_version("delays", artifact=ARTIFACT)
    with pytest.raises(StoreError, match="registry .*alias_events"):
        registry.alias_history("delays", "champion")
    assert "ModelRegistry(" in repr(registry)


def _create_many(url: str, worker: int, n: int, start: Any) -> None:
    registry = ModelRegistry(MetadataStore(url))
    start.wait()
    for i in range(n):
        registry.create_version("race", artifact=ARTIFACT, actor=f"w{worker}", params={"i": i})
    registry.metadata.close()


def test_two_processes_create_versions_concurrently(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    registry = ModelRegistry(store)
    registry.register_model("race", "binary")
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_create_many, args=(metadata_url, w, 20, start)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    versions = registry.versions("race")
    assert [v.version for v in versions] == list(range(1, 41))
    for worker in ("w0", "w1"):
        mine = [v.params["i"] for v in versions if v.created_by == worker]
        assert mine == list(range(20))  # each worker's versions in its own order
    store.close()


@pytest.mark.parametrize("module", ["fourloops.registry.models", "fourloops.registry.aliases"])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_one_model_summary_matches_the_listing(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    reg = ModelRegistry(store)
    reg.register_model("a", "binary", tags={"k": 1})
    reg.register_model("b", "regression")
    reg.create_version("b", status="failed", failure_reason="x")
    assert reg.model("b") == next(m for m in reg.models() if m.name == "b")
    assert reg.model("a").tags == {"k": 1} and reg.model("b").versions == 1
    with pytest.raises(NotFoundError, match="no registered model 'c'"):
        reg.model("c")
    store.close()
