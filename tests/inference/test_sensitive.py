"""Fields marked ``sensitive`` reach the event log only as a keyed hash (HMAC-SHA256).

A plain hash of a low-entropy value (a station code, a postcode, a phone
number) is reversed by hashing every candidate; with a secret key it is not,
and equal values still hash equally, so events can be grouped and joined. The
key comes from ``storage.events_hash_key`` or, by default, from a random key
the project keeps in ``.fourloops/events-hash.key``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fourloops.errors import ConfigError
from fourloops.project import Project
from fourloops.server import build_app
from trips import DEFINITIONS, T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23)
SENSITIVE = DEFINITIONS.replace(
    'fl.Category(["a", "b", "c"])', 'fl.Category(["a", "b", "c"], sensitive=True)'
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert SENSITIVE != DEFINITIONS
    root = tmp_path_factory.mktemp("sensitive") / "p"
    prepare_project(root, versions=2, materialize=False, definitions=SENSITIVE)
    with Project.load(root, env={}) as project:
        project.registry.set_alias("late", "shadow", 2, actor="test", reason="shadow is logged too")
    return root


def _keyed(key: bytes, value: str) -> str:
    return "hmac-sha256:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def _serve(root: Path, env: dict[str, str], bodies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Answer ``bodies`` and return the logged features by request id."""
    with Project.load(root, env=env, clock=lambda: NOW) as project:
        with TestClient(build_app(project)) as client:
            for body in bodies:
                assert client.post("/v1/models/late/predict", json=body).status_code == 200
        store = project.open_event_store()
        try:
            return {e["request_id"]: json.loads(e["features"]) for e in store.scan(model="late").to_pylist()}
        finally:
            store.close()


def _body(rid: str, station: str) -> dict[str, Any]:
    return {"inputs": {"station": station, "load": 0.25, "rain": 1.0}, "request_id": rid}


def test_sensitive_values_are_logged_as_a_keyed_hash_with_a_project_key(served: Path) -> None:
    logged = _serve(served, {}, [_body("k-a1", "a"), _body("k-a2", "a"), _body("k-b", "b")])
    key_file = served / ".fourloops" / "events-hash.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    assert len(key) == 32
    assert logged["k-a1"]["station"] == _keyed(key, "a") == logged["k-a2"]["station"]  # stable
    assert logged["k-b"]["station"] == _keyed(key, "b") != logged["k-a1"]["station"]
    assert logged["k-a1"]["load"] == 0.25  # other fields as they are
    # The shadow's event hides the value too.
    assert logged["k-a1:shadow"]["station"] == logged["k-a1"]["station"]
    # A second server of the project (another process, later) uses the same key.
    again = _serve(served, {}, [_body("k-a3", "a")])
    assert again["k-a3"]["station"] == logged["k-a1"]["station"]
    # Nothing in the log is the plain value or its unkeyed hash.
    unkeyed = hashlib.sha256(b"a").hexdigest()[:16]
    assert all(unkeyed not in json.dumps(f) and f["station"] != "a" for f in again.values())


def test_a_configured_key_is_used_instead(served: Path) -> None:
    secret = "correct horse battery staple"
    logged = _serve(served, {"FOURLOOPS_STORAGE_EVENTS_HASH_KEY": secret}, [_body("c-a", "a")])
    assert logged["c-a"]["station"] == _keyed(secret.encode(), "a")


def test_a_short_key_is_refused_by_name(served: Path) -> None:
    with pytest.raises(ConfigError, match="FOURLOOPS_STORAGE_EVENTS_HASH_KEY: storage.events_hash_key"):
        Project.load(served, env={"FOURLOOPS_STORAGE_EVENTS_HASH_KEY": "short"})
