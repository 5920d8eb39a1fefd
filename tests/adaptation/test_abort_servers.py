"""An abort reaches every server: two real server processes answer from the champion only, soon after."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from fourloops.project import Project
from trips import DEFINITIONS, prepare_project, served_process

CANARY_ONLY = (
    'segments=["station"], rollout=fl.Rollout(stages=[fl.Canary(0.5, min_requests=100000), fl.Full()], '
    'checks=[fl.Check("fallback", margin=0.02, critical=True)]),'
)
REFRESH = 0.5


def _routes(base: str, client: httpx.Client, start: int, n: int = 40) -> set[str]:
    routes = set()
    for i in range(start, start + n):
        body = {"inputs": {"station": "a", "load": 0.5, "rain": 0.1}, "unit_id": f"unit-{i % 40}"}
        answer = client.post(f"{base}/v1/models/late/predict", json=body)
        assert answer.status_code == 200, answer.text
        routes.add(answer.json()["route"])
    return routes


@pytest.mark.slow
def test_an_abort_sends_every_server_back_to_the_champion(tmp_path: Path) -> None:
    root = prepare_project(
        tmp_path / "p",
        versions=2,
        definitions=DEFINITIONS.replace('segments=["station"],', CANARY_ONLY),
        config=f'[project]\nname = "trips"\n[server]\nrefresh_interval = "{REFRESH}s"\n',
    )
    with Project.load(root, env={}) as project:
        project.rollout("late", 2, reason="two servers")
    with served_process(root) as (_, first), served_process(root) as (_, second), httpx.Client() as client:
        for base in (first, second):
            assert _routes(base, client, 0) == {"champion", "canary"}  # half the units on the canary
        with Project.load(root, env={}) as project:
            project.rollout_abort("late", reason="test: abort reaches every server")
        aborted = time.monotonic()
        pending = {first, second}
        k = 100
        while pending and time.monotonic() - aborted < 30:
            for base in sorted(pending):
                k += 40
                if _routes(base, client, k) == {"champion"}:
                    pending.discard(base)
        elapsed = time.monotonic() - aborted
        assert not pending, f"servers still routing to the canary {elapsed:.1f}s after the abort: {pending}"
        for base in (first, second):  # and they stay there
            assert _routes(base, client, 5000) == {"champion"}
    print(f"every server answered from the champion only {elapsed:.2f}s after the abort (refresh {REFRESH}s)")
