from __future__ import annotations

import pytest

import fourloops as fl
from fourloops.definitions.loader import Definitions
from fourloops.errors import BreakingChangeError
from fourloops.registry.definitions import apply_definitions, plan_definitions
from fourloops.storage.metadata import MetadataStore


def defs(contract: fl.Contract, *, ttl: str = "3h", keys: tuple[str, ...] = ("origin",)) -> Definitions:
    d = Definitions()
    d.add(
        fl.FeatureView(
            "weather",
            entity=fl.Entity("airport", join_keys=list(keys)),
            source=fl.FileSource("w.parquet", timestamp="t"),
            ttl=ttl,
            contract=contract,
        ),
        "test",
    )
    return d


BASE = fl.Contract(
    {"temp": fl.Float(min=-40, max=130), "visib": fl.Float(min=0, max=10)}, null_tokens=["", "NA"]
)


@pytest.fixture
def store(metadata_url: str) -> MetadataStore:
    s = MetadataStore(metadata_url)
    yield s  # type: ignore[misc]
    s.close()


def test_first_apply_creates_then_nothing_changes(store: MetadataStore) -> None:
    plan = apply_definitions(defs(BASE), store, actor="t")
    assert {(c.kind, c.action) for c in plan.changes} == {
        ("entity", "create"),
        ("source", "create"),
        ("feature_view", "create"),
    }
    again = apply_definitions(defs(BASE), store)
    assert all(c.action == "unchanged" for c in again.changes)
    assert {e["action"] for e in store.audit_entries()} == {"apply.create"}


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (
            fl.Contract(
                {"temp": fl.Float(min=-40, max=120), "visib": fl.Float(min=0, max=10)},
                null_tokens=["", "NA"],
            ),
            "max lowered from 130.0 to 120.0",
        ),
        (fl.Contract({"temp": fl.Float(min=-40, max=130)}, null_tokens=["", "NA"]), "visib"),
        (
            fl.Contract({"temp": fl.Int(), "visib": fl.Float(min=0, max=10)}, null_tokens=["", "NA"]),
            "temp",
        ),
        (
            fl.Contract(
                {"temp": fl.Float(min=-40, max=130), "visib": fl.Float(min=0, max=10)},
                null_tokens=[""],
            ),
            "NA",
        ),
    ],
)
def test_breaking_changes_are_refused_and_named(
    store: MetadataStore, new: fl.Contract, expected: str
) -> None:
    apply_definitions(defs(BASE), store)
    with pytest.raises(BreakingChangeError) as info:
        apply_definitions(defs(new), store)
    assert expected in str(info.value)
    assert "--allow-breaking" in str(info.value)
    assert store.heads()[("feature_view", "weather")].version == defs(BASE).feature_views["weather"].version
    plan = apply_definitions(defs(new), store, allow_breaking=True, actor="alice")
    assert plan.breaking
    assert store.heads()[("feature_view", "weather")].version == defs(new).feature_views["weather"].version
    entry = store.audit_entries("feature_view:weather")[0]
    assert entry["actor"] == "alice" and entry["details"]["allowed_breaking"] is True


def test_loosening_and_ttl_are_not_breaking(store: MetadataStore) -> None:
    apply_definitions(defs(BASE), store)
    looser = fl.Contract(
        {
            "temp": fl.Float(min=-50, max=140),
            "visib": fl.Float(min=0, max=10),
            "gust": fl.Float(nullable=True),
        },
        null_tokens=["", "NA", "NULL"],
    )
    plan = plan_definitions(defs(looser, ttl="6h"), store)
    [view] = [c for c in plan.changes if c.kind == "feature_view"]
    assert view.action == "update" and not view.breaking
    assert any("ttl changed from 3h to 6h" in d for d in view.details)
    apply_definitions(defs(looser, ttl="6h"), store)


def test_changed_join_keys_and_removed_view_are_breaking(store: MetadataStore) -> None:
    apply_definitions(defs(BASE), store)
    with pytest.raises(BreakingChangeError, match="join keys changed"):
        apply_definitions(defs(BASE, keys=("origin", "hour")), store)
    with pytest.raises(BreakingChangeError, match="no longer defined"):
        apply_definitions(Definitions(), store)
