"""The server as a real process under load: SIGKILL durability and hot swap without dropped requests."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from fourloops.project import Project
from fourloops.server import open_events
from trips import T0, served_process, write_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proc") / "p"
    write_project(root)
    (root / "fourloops.toml").write_text('[project]\nname = "trips"\n[server]\nrefresh_interval = "1s"\n')
    with Project.load(root, env={}) as project:
        project.train("late", seed=1)
        project.promote("late", 1, force=True, reason="test")
        project.train("late", seed=2, params={"n_estimators": 10})
        project.materialize(end=T0 + timedelta(days=40))
    return root


@pytest.fixture
def server(project_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with served_process(project_dir) as running:
        yield running


def _load(
    base: str, prefix: str, stop: threading.Event, acked: list[str], errors: list[str], versions: list[int]
) -> None:
    with httpx.Client(base_url=base, timeout=5) as http:
        i = 0
        while not stop.is_set():
            rid = f"{prefix}-{i}"
            i += 1
            try:
                r = http.post(
                    "/v1/models/late/predict",
                    json={"inputs": {"station": "a", "load": 0.5, "rain": 1.0}, "request_id": rid},
                )
            except httpx.HTTPError:
                errors.append(rid)
                continue
            if r.status_code == 200:
                acked.append(rid)
                versions.append(r.json()["version"])
            else:
                errors.append(f"{rid}:{r.status_code}")


def test_every_acknowledged_prediction_survives_sigkill(
    server: tuple[subprocess.Popen[bytes], str], project_dir: Path
) -> None:
    proc, base = server
    stop = threading.Event()
    acked: list[str] = []
    threads = [threading.Thread(target=_load, args=(base, f"k{t}", stop, acked, [], [])) for t in range(4)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGKILL)  # mid-traffic, no chance to flush anything
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 20
    with Project.load(project_dir, env={}) as project:
        store = open_events(project)
        logged = {e["request_id"] for e in store.scan(model="late").to_pylist()}
        store.close()
    missing = [rid for rid in acked if rid not in logged]
    assert not missing, f"{len(missing)} acknowledged predictions are not in the log, e.g. {missing[:3]}"


def test_promotion_is_picked_up_under_load_without_dropped_requests(
    server: tuple[subprocess.Popen[bytes], str], project_dir: Path
) -> None:
    _, base = server
    stop = threading.Event()
    acked: list[str] = []
    errors: list[str] = []
    versions: list[int] = []
    threads = [
        threading.Thread(target=_load, args=(base, f"h{t}", stop, acked, errors, versions)) for t in range(4)
    ]
    for t in threads:
        t.start()
    time.sleep(1.0)
    with Project.load(project_dir, env={}) as project:
        project.promote("late", 2, force=True, reason="hot swap test")
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (not versions or versions[-1] != 2):
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            project.rollback("late", reason="restore")
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors[:5]
    assert 1 in versions and 2 in versions
    first_two = versions.index(2)
    assert len(acked) > 20 and first_two > 0
