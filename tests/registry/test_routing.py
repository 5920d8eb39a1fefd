"""Routing owned by the registry: one record per model, journaled, checked by the one gate rule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from fourloops.definitions.lifecycle import Stage
from fourloops.errors import ConfigError, NotFoundError, PromotionBlocked, RegistryError
from fourloops.registry.models import ModelRegistry
from fourloops.registry.records import GateReport, GateVerdict
from fourloops.registry.routing import RoutingSpec
from fourloops.storage.metadata import MetadataStore

ARTIFACT = {"uri": "file:///artifacts/ab/abc", "sha256": "a" * 64, "size": 1234}
FAILED = GateReport.judge([GateVerdict("max_calibration_error", False, "ece 0.08 (max 0.05)")])


class Ticker:
    def __init__(self) -> None:
        self.now = datetime(2024, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def registry(metadata_url: str) -> Iterator[ModelRegistry]:
    """Model ``delays``: v1 champion, v2 and v3 ready, v4 failed its gates, v5 a failed run."""
    store = MetadataStore(metadata_url, clock=Ticker())
    registry = ModelRegistry(store)
    registry.register_model("delays", "binary")
    for _ in range(3):
        registry.create_version("delays", artifact=ARTIFACT)
    registry.create_version("delays", artifact=ARTIFACT, gates=FAILED)
    registry.create_version("delays", status="failed", failure_reason="OOM")
    registry.promote("delays", 1, actor="ann", reason="first")
    yield registry
    store.close()


def _stages(registry: ModelRegistry) -> dict[int, str]:
    return {v.version: v.stage.value for v in registry.versions("delays")}


def test_a_model_without_routing_has_the_defaults(registry: ModelRegistry) -> None:
    registry.register_model("other", "binary")
    assert registry.routing("other") == RoutingSpec("other")
    with pytest.raises(NotFoundError):
        registry.routing("nope")


def test_canary_and_share_are_one_audited_change_with_a_new_revision(registry: ModelRegistry) -> None:
    before = registry.routing("delays")
    change = registry.set_routing("delays", canary=2, canary_share=0.2, actor="bob", reason="try v2")
    after = registry.routing("delays")
    assert change.before == before and change.after == after
    assert (after.champion, after.canary, after.canary_share) == (1, 2, 0.2)
    assert after.revision == before.revision + 1
    assert registry.aliases("delays") == {"champion": 1, "canary": 2}
    last = registry.routing_history("delays")[-1]
    assert (last.revision, last.actor, last.reason, last.spec) == (after.revision, "bob", "try v2", after)
    audit = registry.metadata.audit_entries("model:delays")[0]  # newest first
    assert audit["action"] == "routing.set" and audit["details"]["to"]["canary"] == 2
    assert audit["details"]["from"]["canary"] is None


def test_parts_left_out_are_kept(registry: ModelRegistry) -> None:
    registry.set_routing("delays", canary=2, canary_share=0.2, shadow=3, reason="r")
    registry.set_routing("delays", canary_share=0.5, reason="ramp")
    spec = registry.routing("delays")
    assert (spec.canary, spec.canary_share, spec.shadow) == (2, 0.5, 3)
    registry.set_routing("delays", shadow=None, reason="shadow done")
    spec = registry.routing("delays")
    assert (spec.canary, spec.shadow) == (2, None)
    assert "shadow" not in registry.aliases("delays")


def test_every_path_to_traffic_applies_the_gate_rule_and_force_is_recorded(registry: ModelRegistry) -> None:
    for changes in ({"canary": 4, "canary_share": 0.1}, {"shadow": 4}, {"ab": {1: 0.5, 4: 0.5}}):
        with pytest.raises(PromotionBlocked, match=r"version 4 of 'delays' failed its gates"):
            registry.set_routing("delays", reason="r", **changes)  # type: ignore[arg-type]
    with pytest.raises(PromotionBlocked, match=r"--force"):
        registry.promote("delays", 4, reason="r")
    assert registry.routing("delays").revision == 1  # nothing changed
    registry.set_routing("delays", ab={1: 0.5, 4: 0.5}, force=True, actor="ops", reason="urgent")
    last = registry.routing_history("delays")[-1]
    assert last.reason == "urgent [forced past failed gates]" and last.spec.ab == {1: 0.5, 4: 0.5}
    # A version keeping its role is not judged again: changing the split's other parts needs no force.
    registry.set_routing("delays", stage=Stage.CANARY, reason="stage")
    with pytest.raises(RegistryError, match="only ready versions"):
        registry.set_routing("delays", canary=5, reason="r")
    with pytest.raises(NotFoundError, match="no version 9"):
        registry.set_routing("delays", shadow=9, reason="r")


def test_invalid_routing_is_refused_and_changes_nothing(registry: ModelRegistry) -> None:
    revision = registry.routing("delays").revision
    for changes, message in [
        ({"ab": {1: 0.5, 2: 0.4}}, "must sum to 1"),
        ({"canary_share": 1.5}, "share in"),
        ({"canary_share": 0.3}, "no canary version"),
        ({"canary": 2, "canary_share": -0.1}, "share in"),
        ({"stage": "rolling"}, "stage"),
        ({"sticky_key": ""}, "sticky_key"),
    ]:
        with pytest.raises((ConfigError, ValueError), match=message):
            registry.set_routing("delays", reason="r", **changes)  # type: ignore[arg-type]
    assert registry.routing("delays").revision == revision
    assert registry.aliases("delays") == {"champion": 1}


def test_compare_and_set_on_the_revision(registry: ModelRegistry) -> None:
    seen = registry.routing("delays").revision
    registry.set_routing("delays", canary=2, canary_share=0.1, reason="first", expected_revision=seen)
    with pytest.raises(RegistryError, match=f"revision {seen + 1}, not {seen}"):
        registry.set_routing("delays", canary_share=0.9, reason="stale", expected_revision=seen)
    assert registry.routing("delays").canary_share == 0.1


def test_promote_and_rollback_are_routing_changes_too(registry: ModelRegistry) -> None:
    registry.promote("delays", 2, actor="ann", reason="better")
    registry.rollback("delays", actor="ann", reason="regressed")
    journal = registry.routing_history("delays")
    assert [e.spec.champion for e in journal] == [1, 2, 1]
    assert [e.revision for e in journal] == [1, 2, 3]
    assert journal[-1].reason == "regressed"


def test_version_stages_follow_the_routing(registry: ModelRegistry) -> None:
    assert _stages(registry) == {1: "production", 2: "none", 3: "none", 4: "none", 5: "none"}
    registry.set_stage("delays", 3, "archived")
    registry.set_routing("delays", canary=2, canary_share=0.1, reason="r")
    assert _stages(registry)[2] == "canary"
    registry.promote("delays", 2, reason="canary won")
    registry.set_routing("delays", canary=None, reason="done")
    assert _stages(registry) == {1: "none", 2: "production", 3: "archived", 4: "none", 5: "none"}


def test_a_canary_share_survives_the_canary_being_unset_as_tags_did(registry: ModelRegistry) -> None:
    registry.set_routing("delays", canary=2, canary_share=0.3, reason="r")
    registry.delete_alias("delays", "canary", reason="pause by alias")
    assert registry.routing("delays").canary_share == 0.0  # no canary: no share
    registry.set_alias("delays", "canary", 3, reason="next candidate")
    assert registry.routing("delays").canary_share == 0.3


def test_the_migration_carries_canary_and_ab_tags_over(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from fourloops.storage import metadata as metadata_module

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(metadata_module._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        now = datetime(2024, 1, 1, tzinfo=UTC)
        tags = {"canary_share": 0.25, "ab_split": {"1": 0.5, "2": 0.5}, "owner": "ops"}
        conn.execute(
            sa.text(
                "INSERT INTO models (name, task, created_at, description, spec, tags) "
                "VALUES ('m', 'binary', :at, '', NULL, :tags)"
            ),
            {"at": now, "tags": __import__("json").dumps(tags)},
        )
        for version in (1, 2):
            conn.execute(
                sa.text(
                    "INSERT INTO model_versions (model, version, status, stage, created_at, created_by,"
                    " artifact, format, metrics, gates, lineage, params, failure_reason, description, tags)"
                    " VALUES ('m', :v, 'ready', 'none', :at, 'me', :art, 'lightgbm', '{}', '{}', '{}', '{}',"
                    " NULL, '', '{}')"
                ),
                {"v": version, "at": now, "art": __import__("json").dumps(ARTIFACT)},
            )
        conn.execute(
            sa.text("INSERT INTO aliases VALUES ('m', 'champion', 1, :at), ('m', 'canary', 2, :at)"),
            {"at": now},
        )
    engine.dispose()
    store = MetadataStore(url)
    try:
        registry = ModelRegistry(store)
        spec = registry.routing("m")
        assert (spec.champion, spec.canary, spec.canary_share, spec.ab) == (1, 2, 0.25, {1: 0.5, 2: 0.5})
        assert registry.model("m").tags == {"owner": "ops"}
    finally:
        store.close()


def test_spec_round_trips_and_refuses_garbage() -> None:
    spec = RoutingSpec("m", champion=1, canary=2, canary_share=0.1, shadow=3, stage=Stage.CANARY)
    assert RoutingSpec.from_dict(spec.to_dict()) == spec
    assert RoutingSpec("m", champion=1, ab={2: 0.5, 1: 0.5}).versions() == {1, 2}
    with pytest.raises(ConfigError, match="invalid routing"):
        RoutingSpec.from_dict({"champion": 1})
