"""Building and running the prediction server of a project (``fourloops serve``).

With ``--workers N`` uvicorn starts N processes; each builds its own app from
the project folder named in ``FOURLOOPS_PROJECT`` (:func:`app_factory`). They
share the registry (so a promotion reaches all of them within the refresh
interval), the online store, the event store (multi-process safe) and, when
``server.rate_limit_store`` names a Redis, the rate-limit budget.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from fourloops.definitions.durations import parse_duration
from fourloops.errors import ConfigError, DefinitionError
from fourloops.inference.app import ServerSettings, create_app
from fourloops.inference.cache import PredictionCache
from fourloops.inference.eventlog import MIN_HASH_KEY_BYTES
from fourloops.inference.metrics import multiprocess_mode
from fourloops.inference.ratelimit import RateLimits
from fourloops.inference.service import ModelService
from fourloops.logs import logging_config
from fourloops.project import Project
from fourloops.storage.events import EventStore, open_event_store

__all__ = [
    "ThreadedServer",
    "app_factory",
    "build_app",
    "events_hash_key",
    "free_port",
    "open_events",
    "serve",
    "uvicorn_options",
]

log = logging.getLogger("fourloops.server")


def open_events(project: Project) -> EventStore:
    """The project's event store (``storage.events``: a folder or a PostgreSQL URL).

    ``storage.events_fsync = "true"`` makes every group of events survive a
    machine crash too (an ``fsync`` per group); by default the local store
    survives the process being killed, and PostgreSQL commits durably.
    """
    value = project.config.storage.events
    flag = project.config.storage.events_fsync.strip().lower()
    if flag not in ("", "true", "false"):
        raise ConfigError(f"storage.events_fsync must be true, false or empty, got {flag!r}")
    fsync = None if not flag else flag == "true"
    return open_event_store(value if "://" in value else project.config.path(value), fsync=fsync)


#: Where a project keeps its events' hash key when ``storage.events_hash_key`` is not set.
HASH_KEY_FILE = ".fourloops/events-hash.key"


def events_hash_key(project: Project) -> bytes:
    """The key of the keyed hash that hides sensitive fields in events.

    ``storage.events_hash_key`` when set (at least 16 bytes; give it through
    ``FOURLOOPS_STORAGE_EVENTS_HASH_KEY`` and use the same one on every server
    of a project). Otherwise a random 32-byte key kept in the project's
    ``.fourloops/events-hash.key`` (mode 0600), created by whichever process
    needs it first.
    """
    configured = project.config.storage.events_hash_key
    if configured:
        key = configured.encode()
        if len(key) < MIN_HASH_KEY_BYTES:
            raise ConfigError(
                f"storage.events_hash_key must have at least {MIN_HASH_KEY_BYTES} bytes, got {len(key)}"
            )
        return key
    path = project.config.path(HASH_KEY_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made earlier, or by another worker just now
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    for _ in range(100):  # another process may be between creating and writing it
        text = path.read_text().strip()
        if text:
            break
        time.sleep(0.01)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_HASH_KEY_BYTES:
        raise ConfigError(f"{path} does not hold a hex key of at least {MIN_HASH_KEY_BYTES} bytes")
    return key


def build_app(project: Project, *, models: list[str] | None = None) -> Starlette:
    """The ASGI app serving ``models`` (default: every defined model).

    A model without a champion yet is served as not ready (503 ``not_ready``,
    named by ``/readyz``) until one is promoted; the registry refresher picks
    it up without a restart.
    """
    cfg = project.config.server
    timeout = _timeout(cfg.timeout_ms)
    cache_ttl = _seconds(cfg.cache_ttl, "cache_ttl") if cfg.cache_ttl else None
    if cfg.rate_limit_on_error not in ("allow", "reject"):
        raise ConfigError(
            f"server.rate_limit_on_error must be 'allow' or 'reject', got {cfg.rate_limit_on_error!r}"
        )
    if cfg.max_pending < 1:
        raise ConfigError(f"server.max_pending must be >= 1, got {cfg.max_pending}")
    if cfg.cache_max_entries < 1:
        raise ConfigError(f"server.cache_max_entries must be >= 1, got {cfg.cache_max_entries}")
    events = open_events(project)
    hash_key = events_hash_key(project)
    names = models or sorted(project.models)
    services = {}
    for name in names:
        service = ModelService(
            project.model(name),
            views=project.feature_views,
            registry=project.registry,
            artifacts=project.artifacts,
            online=project.online,
            events=events,
            clock=project.clock,
            hash_key=hash_key,
            timeout=timeout,
            cache=PredictionCache(cache_ttl, max_entries=cfg.cache_max_entries) if cache_ttl else None,
        )
        if not service.refresh():
            log.warning("model %s has no champion yet: it answers 503 not_ready until one is promoted", name)
        services[name] = service
    limiter = _limiter(project) if cfg.model_rate or cfg.client_rate else None
    settings = ServerSettings(
        refresh_interval=_seconds(cfg.refresh_interval, "refresh_interval"),
        admin_token=cfg.admin_token,
        max_body_bytes=cfg.max_body_bytes,
        max_instances=cfg.max_instances,
        batching=cfg.batching,
        batch_max_size=cfg.batch_max_size,
        batch_max_wait=cfg.batch_max_wait_ms / 1000,
        max_pending=cfg.max_pending,
        limiter_blocks=bool(cfg.rate_limit_store),
        rate_limit_on_error=cfg.rate_limit_on_error,
    )
    return create_app(
        services,
        events=events,
        registry=project.registry,
        settings=settings,
        limiter=limiter,
        clock=project.clock,
    )


def _seconds(value: str, key: str) -> float:
    try:
        seconds = parse_duration(value, what=f"server.{key}").total_seconds()
    except DefinitionError as err:
        raise ConfigError(str(err)) from None
    if seconds <= 0:
        raise ConfigError(f"server.{key} must be a positive duration, got {value!r}")
    return seconds


def _timeout(ms: int) -> float | None:
    if ms < 0:
        raise ConfigError(f"server.timeout_ms must be >= 0 (0 = no deadline), got {ms}")
    return ms / 1000 if ms else None


def _limiter(project: Project) -> Any:
    cfg = project.config.server
    limits = RateLimits(
        model_rate=float(cfg.model_rate) if cfg.model_rate else None,
        client_rate=float(cfg.client_rate) if cfg.client_rate else None,
    )
    combined = limits.build(cfg.rate_limit_store or None, namespace=project.name)
    return lambda model, client: combined.acquire(model, client=client)


def app_factory() -> Starlette:
    """Entry point for uvicorn worker processes: the project comes from ``FOURLOOPS_PROJECT``."""
    path = os.environ.get("FOURLOOPS_PROJECT")
    if not path:
        raise ConfigError("FOURLOOPS_PROJECT must name the project folder")
    app = build_app(Project.load(Path(path)))
    _freeze_heap()
    return app


def _freeze_heap() -> None:
    """Move everything loaded so far (models, definitions, libraries) out of the garbage collector's sight.

    A long-lived server otherwise re-scans those objects in every full
    collection; the pauses show up as latency spikes (p99) on requests.
    """
    gc.collect()
    gc.freeze()


def serve(
    project: Project,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    log_format: str | None = None,
) -> None:
    """Run the server until interrupted (graceful shutdown drains in-flight requests, flushes events)."""
    import uvicorn

    workers = workers or project.config.server.workers
    options = uvicorn_options(project, host=host, port=port, log_format=log_format)
    if workers > 1:
        os.environ["FOURLOOPS_PROJECT"] = str(project.root)
        # The workers keep their metrics in shared files, so that a scrape reports
        # them all (each worker is a fresh interpreter that reads this variable).
        own_dir = None
        if not multiprocess_mode():
            own_dir = tempfile.mkdtemp(prefix="fourloops-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
        try:
            uvicorn.run("fourloops.server:app_factory", factory=True, workers=workers, **options)
        finally:
            if own_dir is not None:
                shutil.rmtree(own_dir, ignore_errors=True)
    else:
        app = build_app(project)
        _freeze_heap()
        # uvicorn re-raises the SIGTERM or SIGINT it caught once the graceful
        # shutdown is over; the handler it restores then ends the process with
        # status 0, as the multi-worker supervisor does (a drained server is a
        # clean exit, not a crash or an interrupted command).
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_cleanly)
        uvicorn.run(app, **options)


def uvicorn_options(
    project: Project, *, host: str | None = None, port: int | None = None, log_format: str | None = None
) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` from the server config (arguments win over it)."""
    cfg = project.config.server
    return {
        "host": host or cfg.host,
        "port": port or cfg.port,
        "log_config": logging_config(log_format or cfg.log_format),
        "access_log": cfg.access_log,
        "timeout_graceful_shutdown": _seconds(cfg.shutdown_timeout, "shutdown_timeout"),
    }


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ThreadedServer:
    """An app served by uvicorn on a free loopback port, in a daemon thread of this process.

    For the demo and for tests that need a real HTTP server next to objects
    they can reach into. ``with ThreadedServer(app) as server:`` returns once
    the server accepts connections (``server.url``); leaving the block shuts it
    down gracefully (in-flight requests and background work finish).
    """

    def __init__(self, app: Starlette, *, start_timeout: float = 30.0) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fourloops-server", daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            self.server.should_exit = True
            raise RuntimeError(f"the server on port {self.port} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
