"""The server as a real process under load.

SIGKILL durability, graceful SIGTERM mid-traffic (every answer and its shadow
score logged, exit 0), hot swap without dropped requests, ``--workers 2`` (two
processes serving, every answer logged, clean SIGTERM) and one rate-limit
budget shared over Redis by two servers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from fourloops.project import Project
from trips import prepare_project, served_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proc") / "p"
    config = '[project]\nname = "trips"\n[server]\nrefresh_interval = "1s"\n'
    return prepare_project(root, versions=2, config=config)


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
        store = project.open_event_store()
        logged = {e["request_id"] for e in store.scan(model="late").to_pylist()}
        store.close()
    missing = [rid for rid in acked if rid not in logged]
    assert not missing, f"{len(missing)} acknowledged predictions are not in the log, e.g. {missing[:3]}"


def test_sigterm_mid_traffic_drains_and_every_answer_is_logged(project_dir: Path, tmp_path: Path) -> None:
    """Graceful shutdown: requests in flight are answered (never a 5xx), their events and their
    shadow scores (work left after the response) are all logged, and the process exits 0."""
    copy = _copy_project(project_dir, tmp_path / "p", '[project]\nname = "trips"\n')
    with Project.load(copy, env={}) as project:
        project.registry.set_alias("late", "shadow", 2, actor="test", reason="shadow during shutdown")
    stop = threading.Event()
    acked: list[str] = []
    errors: list[str] = []
    with served_process(copy) as (proc, base):
        threads = [
            threading.Thread(target=_load, args=(base, f"g{t}", stop, acked, errors, [])) for t in range(4)
        ]
        for t in threads:
            t.start()
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stop.set()
        for t in threads:
            t.join(10)
    assert len(acked) > 20
    # After the listener closes, new requests fail to connect; no request got an error status.
    assert not [e for e in errors if ":" in e], [e for e in errors if ":" in e][:5]
    with Project.load(copy, env={}) as project:
        store = project.open_event_store()
        events = store.scan(model="late").to_pylist()
        store.close()
    logged = {e["request_id"]: e for e in events}
    missing = [rid for rid in acked if rid not in logged]
    assert not missing, f"{len(missing)} answered predictions are not in the log, e.g. {missing[:3]}"
    no_shadow = [rid for rid in acked if f"{rid}:shadow" not in logged]
    assert not no_shadow, f"{len(no_shadow)} shadow scores were lost at shutdown, e.g. {no_shadow[:3]}"
    assert {logged[f"{rid}:shadow"]["version"] for rid in acked} == {2}


def test_ctrl_c_after_a_drain_exits_0(server: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, base = server
    assert httpx.post(
        f"{base}/v1/models/late/predict", json={"inputs": {"station": "a", "load": 0.5}}
    ).is_success
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0


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


def _copy_project(src: Path, dest: Path, config: str) -> Path:
    """A copy of the trained project ``src`` with ``config`` as its fourloops.toml and no events yet.

    Every storage location is the default, relative to the project folder, and the
    artifact store finds an artifact by its hash under its own root, so the copy
    serves the same models without touching ``src``.
    """
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("events"))
    (dest / "fourloops.toml").write_text(config)
    return dest


def _children(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is ``pid``, from /proc."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]  # the name in (...) may hold spaces
        if int(ppid) == pid and state not in "ZX":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in "ZX"


def _wait_for_log(log: Path, pattern: str, count: int, timeout: float) -> list[str]:
    """The matches of ``pattern`` in ``log`` once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(pattern, log.read_text(errors="replace"))
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} of {count} {pattern!r} in the server log after {timeout} s")
        time.sleep(0.1)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
def test_two_workers_serve_log_every_answer_and_stop_cleanly_on_sigterm(
    project_dir: Path, tmp_path: Path
) -> None:
    copy = _copy_project(project_dir, tmp_path / "p", '[project]\nname = "trips"\n')
    log = tmp_path / "server.log"
    metric_dirs = set(Path(tempfile.gettempdir()).glob("fourloops-metrics-*"))
    with served_process(copy, args=["--workers", "2"], log=log) as (proc, base):
        # /readyz answers once one worker is up; wait for both before sending the traffic.
        _wait_for_log(log, r"Application startup complete", 2, 60)
        started = {int(p) for p in _wait_for_log(log, r"Started server process \[(\d+)\]", 2, 1)}
        children = _children(proc.pid)
        assert len(started) == 2 and started <= children, (started, children)

        answers: list[tuple[str, int | str]] = []

        def send(prefix: str) -> None:
            # No keep-alive: every request is a new connection, which goes to whichever worker
            # accepts it first; one kept-alive connection would tie a thread to one worker.
            no_keepalive = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(base_url=base, timeout=10, limits=no_keepalive) as http:
                for i in range(25):
                    rid = f"{prefix}-{i}"
                    try:
                        r = http.post(
                            "/v1/models/late/predict",
                            json={"inputs": {"station": "b", "load": 0.3}, "request_id": rid},
                        )
                    except httpx.HTTPError as err:
                        answers.append((rid, repr(err)))
                    else:
                        answers.append(
                            (rid, r.status_code if r.status_code == 200 else f"{r.status_code} {r.text}")
                        )

        threads = [threading.Thread(target=send, args=(f"w{t}",)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # Whichever worker takes a scrape reports both workers' counts (shared metric files).
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=base, timeout=10, limits=no_keepalive) as http:
            scrapes = [http.get("/metrics").text for _ in range(6)]
        for text in scrapes:
            assert 'fourloops_requests_total{model="late",status="ok"} 200.0' in text, text[:2000]
            assert 'fourloops_predictions_total{model="late",route="champion",version="1"} 200.0' in text
            assert 'fourloops_requests_in_progress{model="late"} 0.0' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    assert len(answers) == 200
    assert all(status == 200 for _, status in answers), [a for a in answers if a[1] != 200][:5]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)], "processes of the server outlived it"
    assert "Traceback" not in log.read_text(errors="replace")
    assert set(Path(tempfile.gettempdir()).glob("fourloops-metrics-*")) == metric_dirs  # cleaned up

    with Project.load(copy, env={}) as project:
        store = project.open_event_store()
        logged = {e["request_id"] for e in store.scan(model="late").to_pylist()}
        store.close()
        events_dir = project.config.path(project.config.storage.events)
    missing = [rid for rid, _ in answers if rid not in logged]
    assert not missing, f"{len(missing)} acknowledged predictions are not in the log, e.g. {missing[:3]}"
    # The local event store gives every writing process its own segments, events-<pid>-...:
    # the answers were logged by both workers, and by no other process.
    writers = {int(f.name.split("-")[1]) for f in events_dir.glob("events-*.log")}
    assert writers == started, (writers, started)


RATE = 20  # server.model_rate: tokens per second, shared by every server of the project
BURST = RATE  # the default burst: one second's worth (RateLimits)


def _flood(base: str, stop: threading.Event, answers: list[tuple[int, str | None, bytes]]) -> None:
    with httpx.Client(base_url=base, timeout=5) as http:
        while not stop.is_set():
            try:
                r = http.post("/v1/models/late/predict", json={"inputs": {"station": "c", "load": 0.9}})
            except httpx.HTTPError as err:
                answers.append((0, None, repr(err).encode()))
            else:
                answers.append((r.status_code, r.headers.get("retry-after"), r.content))


@pytest.mark.services
def test_two_servers_share_one_rate_limit_budget_over_redis(
    project_dir: Path, tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    import redis

    # The project's name is the limiter's Redis namespace: a fresh one starts with a full
    # bucket, and the redis_namespace fixture removes its keys afterwards.
    config = (
        f'[project]\nname = "{redis_namespace}"\n'
        f'[server]\nmodel_rate = {RATE}\nrate_limit_store = "{redis_url}"\n'
    )
    copy = _copy_project(project_dir, tmp_path / "p", config)
    answers: dict[str, list[tuple[int, str | None, bytes]]] = defaultdict(list)
    with ExitStack() as stack:
        bases = [stack.enter_context(served_process(copy))[1] for _ in range(2)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_flood, args=(base, stop, answers[base]))
            for base in bases
            for _ in range(3)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(1.0)
        client = redis.Redis.from_url(redis_url)
        try:
            buckets = [k.decode() for k in client.scan_iter(match=f"*{redis_namespace}*")]
        finally:
            client.close()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(10)
        elapsed = time.monotonic() - started
    assert any("ratelimit" in k for k in buckets), buckets

    # One token bucket lets through at most burst + rate * (time from its first request to
    # its last), however many servers draw on it, and every request fell within `elapsed`.
    # The 20 % margin covers the bucket being timed by Redis's clock rather than ours. Each
    # server was offered more than a whole budget, so budgets kept per process would have
    # let through about twice the budget: far above the margin.
    budget = BURST + RATE * elapsed
    ok = {base: sum(status == 200 for status, _, _ in answers[base]) for base in bases}
    for base in bases:
        assert len(answers[base]) > budget, "too little load to tell one budget from two"
    assert sum(ok.values()) <= 1.2 * budget, (ok, budget)
    # And the budget is spent, not withheld: a pause shorter than burst / rate = 1 s loses
    # no tokens (they pile up to the burst), so only a longer stall of this process could
    # bring the count near half.
    assert sum(ok.values()) >= budget / 2, (ok, budget)
    for base in bases:
        odd = [(status, body) for status, _, body in answers[base] if status not in (200, 429)]
        assert not odd, (base, len(odd), odd[:3])
        assert {status for status, _, _ in answers[base]} == {200, 429}, base
        limited = [(retry, body) for status, retry, body in answers[base] if status == 429]
        assert all(retry is not None and retry.isdigit() and int(retry) >= 1 for retry, _ in limited)
        assert all(json.loads(body)["error"]["type"] == "rate_limited" for _, body in limited)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_as_of_reads_and_stamps_as_of_then_in_every_worker(project_dir: Path, workers: str) -> None:
    """The trips' weather ends on day 40 with a 2 h ttl: on today's clock it has expired."""
    from datetime import UTC, datetime, timedelta

    from trips import T0

    as_of = T0 + timedelta(days=39, hours=23)
    row = {"station": "b", "load": 0.4}
    with served_process(project_dir) as (_, base):
        now = httpx.post(f"{base}/v1/models/late/predict", json={"inputs": row}).json()
    assert now["feature_status"] == {"weather": "expired"}
    args = ["--as-of", as_of.isoformat(), "--workers", workers]
    with served_process(project_dir, args=args) as (_, base):
        answers = [
            httpx.post(f"{base}/v1/models/late/predict", json={"inputs": row}).json() for _ in range(8)
        ]
    assert all(a["feature_status"] == {"weather": "ok"} for a in answers), answers
    ids = {a["request_id"] for a in answers}
    with Project.load(project_dir) as project:
        stamped = [e["at"] for e in project.events(model="late").to_pylist() if e["request_id"] in ids]
    assert len(stamped) == 8
    assert all(as_of <= at.astimezone(UTC) < as_of + timedelta(minutes=5) for at in stamped)
    assert datetime.now(UTC) - as_of > timedelta(days=365)


def test_serve_as_of_refuses_a_time_without_a_zone(project_dir: Path) -> None:
    import sys

    command = ["serve", "-p", str(project_dir), "--as-of", "2013-01-01T00:00"]
    done = subprocess.run(
        [sys.executable, "-m", "fourloops.cli", *command], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "--as-of" in done.stderr and "time zone" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
