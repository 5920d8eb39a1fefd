"""The prediction server: a Starlette ASGI app over :class:`ModelService` objects, composed here.

Each piece is a small callable in its own module, readable and testable alone:
:mod:`~fourloops.inference.http` (JSON bodies, error answers),
:mod:`~fourloops.inference.throttle` (rate limits),
:mod:`~fourloops.inference.dispatch` (back-pressure, micro-batching, errors of
the model path), :mod:`~fourloops.inference.v1` and
:mod:`~fourloops.inference.v2` (the predict, labels and infer handlers),
:mod:`~fourloops.inference.health`, :mod:`~fourloops.inference.admin` and
:mod:`~fourloops.inference.refresher` (following the registry).

Routes (see ``docs/architecture.md`` and the README's Serving section):
``POST /v1/models/{model}/predict``, ``POST /v2/models/{model}/infer`` (Open
Inference Protocol), ``POST /v1/labels``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics``, ``POST /v1/admin/...``.

Bad input never gets a 5xx: a body that is not JSON, too large, of the wrong
shape, or breaking the model's contract gets a 4xx whose JSON body names the
field and the rule. A 503 means the server could not log the prediction (it
is then not acknowledged) or has no model loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from fourloops.clock import Clock, utcnow
from fourloops.inference.accounting import CountResponses, exception_handlers
from fourloops.inference.admin import admin_handlers, authorizer
from fourloops.inference.batching import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT
from fourloops.inference.dispatch import Dispatcher
from fourloops.inference.health import Healthz, MetricsRoute, Readyz
from fourloops.inference.http import json_errors
from fourloops.inference.metadata import Live, ModelMetadata, ModelReady, Models, Ready
from fourloops.inference.metrics import ServerMetrics
from fourloops.inference.openapi import description_routes
from fourloops.inference.refresher import Refresher
from fourloops.inference.rollouts import RolloutActions, RolloutCollector, rollout_routes
from fourloops.inference.service import ModelService
from fourloops.inference.tally import ServingTally
from fourloops.inference.throttle import RateLimitCheck
from fourloops.inference.v1 import Labels, Predict
from fourloops.inference.v2 import Infer
from fourloops.registry.models import ModelRegistry
from fourloops.storage.events import EventStore
from fourloops.storage.serving_periods import ServingPeriods

__all__ = ["ServerSettings", "create_app"]


@dataclass(frozen=True)
class ServerSettings:
    refresh_interval: float = 5.0
    admin_token: str = ""
    max_body_bytes: int = 1_048_576
    max_instances: int = 1000
    batching: bool = True  # group concurrent single-instance requests (see fourloops.inference.batching)
    batch_max_size: int = DEFAULT_MAX_BATCH
    batch_max_wait: float = DEFAULT_MAX_WAIT  # seconds
    max_pending: int = 256  # requests per model queued or running; beyond them: 503 overloaded
    limiter_blocks: bool = False  # the limiter does I/O (Redis): call it off the event loop
    rate_limit_on_error: str = "allow"  # the limiter failed: "allow" the request or "reject" it (503)


def create_app(
    services: Mapping[str, ModelService],
    *,
    events: EventStore,
    registry: ModelRegistry,
    settings: ServerSettings | None = None,
    limiter: Callable[[str, str], Any] | None = None,
    clock: Clock = utcnow,
    rollouts: RolloutActions | None = None,
    periods: ServingPeriods | None = None,
) -> Starlette:
    """The ASGI app serving ``services`` (model name -> service), composed from its pieces.

    ``limiter(model, client_key)`` returns a rate-limit decision (``allowed``,
    ``retry_after``, ``limit``) or None to allow everything; when it raises
    :class:`StoreError` (Redis unreachable) the request is let through or
    refused with 503 as ``settings.rate_limit_on_error`` says. ``clock`` stamps
    the labels received (the services stamp their predictions with their own).
    With ``periods``, what the server counts that the event log cannot hold
    (contract rejections by field and rule, CPU time) is stored there every
    refresh interval (:mod:`fourloops.inference.tally`).
    """
    settings = settings or ServerSettings()
    pending = dict.fromkeys(services, 0)  # requests per model being answered (back-pressure)
    metrics = ServerMetrics(services, pending.__getitem__)
    for service in services.values():
        service.writer.on_append = metrics.event_append.labels(service.name).observe
    tally = ServingTally(clock=clock) if periods is not None else None
    dispatcher = Dispatcher(
        services,
        metrics,
        pending,
        max_pending=settings.max_pending,
        batching=settings.batching,
        batch_max_size=settings.batch_max_size,
        batch_max_wait=settings.batch_max_wait,
        tally=tally,
    )
    check_rate = RateLimitCheck(
        limiter, metrics, blocks=settings.limiter_blocks, on_error=settings.rate_limit_on_error
    )
    limits = {"max_body_bytes": settings.max_body_bytes, "max_instances": settings.max_instances}
    refresher = Refresher(services, metrics, interval=settings.refresh_interval, tally=tally, periods=periods)

    admin = admin_handlers(
        dispatcher.service_for, registry, token=settings.admin_token, max_body_bytes=settings.max_body_bytes
    )
    rollout_admin: list[Route] = []
    if rollouts is not None:
        guard = authorizer(dispatcher.service_for, token=settings.admin_token)
        rollout_admin = [
            Route(path, json_errors(handler), methods=methods)
            for path, methods, handler in rollout_routes(
                rollouts, lambda request: guard(request).name, max_body_bytes=settings.max_body_bytes
            )
        ]
        metrics.add_collector(RolloutCollector(rollouts, list(services)))
    # Handlers are request -> response callables; Starlette takes bound methods as such
    # (a bare object with __call__ would be taken for a raw ASGI app).
    routes = [
        Route(
            "/v1/models/{model}/predict",
            json_errors(Predict(dispatcher, check_rate, **limits)),
            methods=["POST"],
        ),
        Route(
            "/v2/models/{model}/infer",
            json_errors(Infer(dispatcher, check_rate, **limits)),
            methods=["POST"],
        ),
        Route(
            "/v1/labels",
            json_errors(
                Labels(
                    events,
                    clock,
                    max_body_bytes=settings.max_body_bytes,
                    tasks={name: s.model.task for name, s in services.items()},
                )
            ),
            methods=["POST"],
        ),
        Route("/v1/models", Models(services).__call__, methods=["GET"]),
        Route("/v2/health/live", Live().__call__, methods=["GET"]),
        Route("/v2/health/ready", Ready(services).__call__, methods=["GET"]),
        Route("/v2/models/{model}", json_errors(ModelMetadata(dispatcher).__call__), methods=["GET"]),
        Route("/v2/models/{model}/ready", json_errors(ModelReady(dispatcher).__call__), methods=["GET"]),
        Route("/healthz", Healthz().__call__, methods=["GET"]),
        Route("/readyz", Readyz(services, events).__call__, methods=["GET"]),
        Route("/metrics", MetricsRoute(metrics).__call__, methods=["GET"]),
        *description_routes(services, rollouts=rollouts is not None),
        *(Route(path, json_errors(handler), methods=["POST"]) for path, handler in admin.items()),
        *rollout_admin,
    ]
    app = Starlette(
        routes=routes,
        lifespan=refresher.lifespan,
        middleware=[Middleware(CountResponses, metrics=metrics, models=list(services))],
        exception_handlers=dict(exception_handlers()),
    )
    app.state.metrics = metrics
    app.state.services = services
    return app
