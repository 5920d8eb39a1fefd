"""Building and running the prediction server of a project (``fourloops serve``).

With ``--workers N`` uvicorn starts N processes; each builds its own app from
the project folder named in ``FOURLOOPS_PROJECT`` (:func:`app_factory`). They
share the registry (so a promotion reaches all of them within the refresh
interval), the online store, the event store (multi-process safe) and, when
``server.rate_limit_store`` and ``server.request_id_store`` name a Redis, the
rate-limit budget and the claims on client request ids.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from fourloops.clock import ReplayClock, utcnow
from fourloops.config import MAX_PORT
from fourloops.errors import ConfigError
from fourloops.inference.app import ServerSettings, create_app
from fourloops.inference.cache import PredictionCache
from fourloops.inference.metrics import multiprocess_mode
from fourloops.inference.ratelimit import RateLimits
from fourloops.inference.request_ids import RedisRequestIds, RequestIdLedger, RequestIds
from fourloops.inference.service import ModelService
from fourloops.logs import logging_config
from fourloops.project import Project
from fourloops.storage.events import EventStore

#: Hands a ``serve --as-of`` clock to worker processes.
AS_OF_VARIABLE = "FOURLOOPS_SERVE_AS_OF"

__all__ = [
    "AS_OF_VARIABLE",
    "ProjectRollouts",
    "app_factory",
    "build_app",
    "check_port",
    "serve",
    "uvicorn_options",
]

log = logging.getLogger("fourloops.server")


def build_app(project: Project, *, models: list[str] | None = None, record_periods: bool = True) -> Starlette:
    """The ASGI app serving ``models`` (default: every defined model).

    A model without a champion yet is served as not ready (503 ``not_ready``,
    named by ``/readyz``) until one is promoted; the registry refresher picks
    it up without a restart. With ``record_periods`` the server stores its
    contract rejections and CPU time per refresh interval in the metadata
    store, for the monitor (:mod:`fourloops.inference.tally`).
    """
    cfg = project.config.server  # validated when the project loaded
    cache_ttl = cfg.cache_ttl_seconds
    events = project.open_event_store()  # the app's own handle: it outlives a `with Project` block
    hash_key = project.events_hash_key
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
            timeout=cfg.timeout_seconds,
            inline_max=cfg.inline_max_ms / 1000 if cfg.batching else 0.0,
            cache=PredictionCache(cache_ttl, max_entries=cfg.cache_max_entries) if cache_ttl else None,
        )
        if not service.refresh():
            log.warning("model %s has no champion yet: it answers 503 not_ready until one is promoted", name)
        services[name] = service
    ledger = _request_ids(project, events)
    if ledger is not None:
        for service in services.values():
            service.request_ids = ledger
    limiter = _limiter(project) if cfg.model_rate or cfg.client_rate else None
    settings = ServerSettings(
        refresh_interval=cfg.refresh_seconds,
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
        rollouts=ProjectRollouts(project),
        periods=project.serving_periods if record_periods else None,
    )


class ProjectRollouts:
    """The server's view of the project's rollouts (:class:`fourloops.inference.rollouts.RolloutActions`)."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def __repr__(self) -> str:
        return f"ProjectRollouts({self.project!r})"

    def start(self, model: str, version: int, *, reason: str, force: bool) -> dict[str, Any]:
        return self.project.rollout(model, version, reason=reason, force=force).to_dict()

    def status(self, model: str) -> dict[str, Any]:
        return self.project.rollout_status(model)

    def abort(self, model: str, *, reason: str) -> dict[str, Any]:
        return self.project.rollout_abort(model, reason=reason).to_dict()


def _request_ids(project: Project, events: EventStore) -> RequestIds | None:
    """Where client request ids are claimed: shared in Redis, or this process's ledger seeded from the log."""
    cfg = project.config.server
    window = cfg.request_id_seconds
    if window is None:
        return None
    if cfg.request_id_store:
        return RedisRequestIds(cfg.request_id_store, window, namespace=project.name)
    if cfg.workers > 1:
        log.warning(
            "%d workers share the event log but not their request-id ledgers: a request_id reused on "
            "another worker is caught only with server.request_id_store (Redis)",
            cfg.workers,
        )
    ledger = RequestIdLedger(window, max_ids=cfg.request_id_max)
    ledger.seed(events.request_ids(project.clock() - timedelta(seconds=window)))
    return ledger


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
    as_of = os.environ.get(AS_OF_VARIABLE)
    clock = ReplayClock.from_text(as_of) if as_of else utcnow
    app = build_app(Project.load(Path(path), clock=clock))
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
    check_port(options["host"], options["port"])
    if workers > 1:
        os.environ["FOURLOOPS_PROJECT"] = str(project.root)
        if isinstance(project.clock, ReplayClock):  # every worker reads the same replayed time
            os.environ[AS_OF_VARIABLE] = project.clock.to_text()
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


def check_port(host: str, port: int) -> None:
    """Refuse, in one line, a port that is out of range or that something already listens on."""
    if not 1 <= port <= MAX_PORT:
        raise ConfigError(f"port {port} is not a TCP port (1-{MAX_PORT})")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {err.strerror or err} "
                "(another server there? pick one with --port)"
            ) from None


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
        "timeout_graceful_shutdown": cfg.shutdown_seconds,
    }


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
