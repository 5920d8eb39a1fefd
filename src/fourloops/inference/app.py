"""The prediction server: a Starlette ASGI app over :class:`ModelService` objects.

Routes (see ``../shared/DESIGN.md``): ``POST /v1/models/{model}/predict``,
``POST /v2/models/{model}/infer`` (Open Inference Protocol), ``POST /v1/labels``,
``GET /healthz``, ``GET /readyz``, ``GET /metrics``, ``POST /v1/admin/...``.

Bad input never gets a 5xx: a body that is not JSON, too large, of the wrong
shape, or breaking the model's contract gets a 4xx whose JSON body names the
field and the rule. A 503 means the server could not log the prediction (it
is then not acknowledged) or has no model loaded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fourloops.clock import Clock, utcnow
from fourloops.errors import (
    ContractViolation,
    FourloopsError,
    ModelUnavailable,
    NotFoundError,
    StoreError,
)
from fourloops.inference.admin import admin_handlers
from fourloops.inference.batching import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT, MicroBatcher, Overloaded
from fourloops.inference.http import HTTPError, JSONResponse, read_json
from fourloops.inference.metrics import SAMPLE_INTERVAL_S, ServerMetrics
from fourloops.inference.openapi import MAX_REQUEST_ID, description_routes
from fourloops.inference.service import SHADOW_SUFFIX, Answer, BatchRequest, ModelService
from fourloops.registry.models import ModelRegistry
from fourloops.storage.events import EventStore, Label

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("fourloops.server")


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
) -> Starlette:
    """The ASGI app serving ``services`` (model name -> service).

    ``limiter(model, client_key)`` returns a rate-limit decision (``allowed``,
    ``retry_after``, ``limit``) or None to allow everything; when it raises
    :class:`StoreError` (Redis unreachable) the request is let through or
    refused with 503 as ``settings.rate_limit_on_error`` says. ``clock`` stamps
    the labels received (the services stamp their predictions with their own).
    """
    settings = settings or ServerSettings()
    pending = dict.fromkeys(services, 0)  # requests per model being answered (back-pressure)
    metrics = ServerMetrics(services, pending.__getitem__)
    for service in services.values():
        service.writer.on_append = metrics.event_append.labels(service.name).observe

    def service_for(request: Request) -> ModelService:
        name = request.path_params["model"]
        service = services.get(name)
        if service is None:
            raise HTTPError(
                404, "not_found", f"no model {name!r} is served here (served: {sorted(services)})"
            )
        return service

    limiter_errors = _Throttled(log, every=10.0)

    async def check_rate(request: Request, model: str) -> None:
        if limiter is None:
            return
        client = request.headers.get("x-client-key", "anonymous")
        try:
            if settings.limiter_blocks:
                decision = await asyncio.to_thread(limiter, model, client)
            else:
                decision = limiter(model, client)
        except StoreError as err:
            metrics.rate_limit_errors.labels(model).inc()
            limiter_errors.warning("rate limiter failed (%s): %s", settings.rate_limit_on_error, err)
            if settings.rate_limit_on_error == "reject":
                raise HTTPError(503, "unavailable", f"the rate limiter is unavailable: {err}") from None
            return
        if decision is not None and not decision.allowed:
            metrics.rate_limited.labels(model, decision.limit or "model").inc()
            retry = decision.retry_after
            headers = {} if math.isinf(retry) else {"Retry-After": str(max(1, math.ceil(retry)))}
            raise HTTPError(
                429, "rate_limited", f"rate limit of {decision.limit or 'model'} exceeded", headers=headers
            )

    def batcher_for(service: ModelService) -> MicroBatcher[BatchRequest, Answer]:
        batcher: MicroBatcher[BatchRequest, Answer] = MicroBatcher(
            service.predict_batch,
            max_batch=settings.batch_max_size,
            max_wait=settings.batch_max_wait,
            max_queue=settings.max_pending,
            on_flush=metrics.micro_batch.labels(service.name).observe,
        )
        metrics.watch_queue(service.name, lambda: batcher.depth)
        return batcher

    batchers = {name: batcher_for(s) for name, s in services.items()} if settings.batching else {}

    async def run(
        service: ModelService, instances: list[Any], request_id: str | None, unit_ids: list[Any]
    ) -> Answer:
        """Answer through the service's micro-batcher (single instances) or in a worker thread.

        At most ``max_pending`` requests per model are answered or waiting at
        once; beyond them a request is shed with 503 at once. A slow event store
        therefore slows the server and then sheds load: nothing is acknowledged
        before it is logged, and nothing queues without bound.
        """
        name = service.name
        if pending[name] >= settings.max_pending:
            metrics.shed.labels(name).inc()
            raise HTTPError(
                503, "overloaded", f"{pending[name]} requests for model {name!r} are pending; try again"
            )
        batcher = batchers.get(name) if len(instances) == 1 else None
        pending[name] += 1
        try:
            if batcher is not None:
                return await batcher.submit(BatchRequest(instances, request_id, unit_ids))
            return await asyncio.to_thread(
                service.predict, instances, request_id=request_id, unit_ids=unit_ids
            )
        except Overloaded as err:
            metrics.shed.labels(name).inc()
            raise HTTPError(503, "overloaded", str(err)) from None
        except ContractViolation as err:
            for rule in set(err.violations.values()):
                metrics.rejections.labels(service.name, rule).inc()
            raise HTTPError(
                422,
                "contract_violation",
                str(err),
                violations=[{"field": f, "rule": r} for f, r in err.violations.items()],
            ) from None
        except NotFoundError as err:
            raise HTTPError(503, "not_ready", str(err)) from None
        except ModelUnavailable as err:
            log.error("%s", err, extra={"model": name})
            raise HTTPError(503, "model_unavailable", str(err)) from None
        except StoreError as err:
            metrics.event_failures.labels(service.name).inc()
            log.error("%s", err, extra={"model": name})
            raise HTTPError(503, "unavailable", str(err)) from None
        finally:
            pending[name] -= 1

    def record(service: ModelService, answers: list[Any], started: float) -> None:
        elapsed = time.perf_counter() - started
        metrics.batch.labels(service.name).observe(len(answers))
        # One latency observation per (version, route) that answered: a single-instance request
        # has one; the instances of a batch without a unit id may be routed apart.
        routes: set[tuple[str, str]] = set()
        for a in answers:
            version = str(a.version)
            routes.add((version, a.route))
            metrics.predictions.labels(service.name, version, a.route).inc()
            if a.fallback:
                metrics.fallbacks.labels(service.name, a.fallback, a.fallback_reason or "-").inc()
            for view, status in a.feature_status.items():
                metrics.feature_lookups.labels(service.name, view, status).inc()
        for version, route in routes:
            metrics.latency.labels(service.name, version, route).observe(elapsed)

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        service = service_for(request)
        await check_rate(request, service.name)
        body = await read_json(request, settings.max_body_bytes)
        if not isinstance(body, dict):
            raise HTTPError(400, "invalid_request", "body must be a JSON object with 'inputs' or 'instances'")
        request_id = _client_request_id(body.get("request_id"), "request_id")
        unit_id = body.get("unit_id")
        if isinstance(unit_id, float) and unit_id.is_integer():
            unit_id = int(unit_id)  # JSON does not tell 7.0 from 7: both route as unit 7
        if unit_id is not None and (not isinstance(unit_id, str | int) or isinstance(unit_id, bool)):
            raise HTTPError(400, "invalid_request", "unit_id must be a string or an integer", field="unit_id")
        if "inputs" in body and "instances" in body:
            raise HTTPError(400, "invalid_request", "give 'inputs' or 'instances', not both")
        if "inputs" in body:
            if not isinstance(body["inputs"], dict):
                raise HTTPError(400, "invalid_request", "'inputs' must be an object", field="inputs")
            instances, single = [body["inputs"]], True
        elif "instances" in body:
            instances, single = body["instances"], False
            if not isinstance(instances, list) or not instances:
                raise HTTPError(
                    400, "invalid_request", "'instances' must be a non-empty list", field="instances"
                )
            if len(instances) > settings.max_instances:
                raise HTTPError(
                    413,
                    "too_many_instances",
                    f"{len(instances)} instances exceed the limit of {settings.max_instances}",
                )
        else:
            raise HTTPError(400, "invalid_request", "body must have 'inputs' or 'instances'")
        units = [unit_id] * len(instances)
        answers, shadow = await run(service, instances, request_id, units)
        record(service, answers, started)
        metrics.requests.labels(service.name, "ok").inc()
        task = BackgroundTask(service.score_shadow, shadow) if shadow else None
        if single:
            return JSONResponse(answers[0].to_dict(), background=task)
        return JSONResponse(
            {"model": service.name, "predictions": [a.to_dict() for a in answers]}, background=task
        )

    async def infer_v2(request: Request) -> Response:
        """Open Inference Protocol: named, columnar inputs -> one output tensor."""
        started = time.perf_counter()
        service = service_for(request)
        await check_rate(request, service.name)
        body = await read_json(request, settings.max_body_bytes)
        tensors = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(tensors, list) or not tensors:
            raise HTTPError(400, "invalid_request", "'inputs' must be a non-empty list of named tensors")
        columns: dict[str, list[Any]] = {}
        for t in tensors:
            if (
                not isinstance(t, dict)
                or not isinstance(t.get("name"), str)
                or not isinstance(t.get("data"), list)
            ):
                raise HTTPError(400, "invalid_request", "each input needs 'name' and a flat 'data' list")
            columns[t["name"]] = t["data"]
        sizes = {len(v) for v in columns.values()}
        if len(sizes) != 1:
            raise HTTPError(400, "invalid_request", "every input must have the same number of rows")
        n = sizes.pop()
        if n == 0:
            raise HTTPError(400, "invalid_request", "inputs have no rows")
        if n > settings.max_instances:  # as for /v1 instances
            raise HTTPError(
                413, "too_many_instances", f"{n} rows exceed the limit of {settings.max_instances}"
            )
        instances = [{k: v[i] for k, v in columns.items()} for i in range(n)]
        request_id = _client_request_id(body.get("id"), "id")
        answers, shadow = await run(service, instances, request_id, [None] * n)
        record(service, answers, started)
        metrics.requests.labels(service.name, "ok").inc()
        data = [a.prediction for a in answers]
        shape = [n, len(data[0])] if data and isinstance(data[0], list) else [n]
        flat = [x for row in data for x in row] if len(shape) == 2 else data
        return JSONResponse(
            {
                "model_name": service.name,
                "model_version": ",".join(sorted({str(a.version) for a in answers})),
                "id": answers[0].request_id
                if n == 1
                else (request_id or answers[0].request_id.rsplit("-", 1)[0]),
                "outputs": [{"name": "prediction", "shape": shape, "datatype": "FP64", "data": flat}],
                "parameters": {
                    "fallback": any(a.fallback for a in answers),
                    "request_ids": [a.request_id for a in answers],
                },
            },
            background=BackgroundTask(service.score_shadow, shadow) if shadow else None,
        )

    async def labels(request: Request) -> Response:
        body = await read_json(request, settings.max_body_bytes)
        items = body.get("labels") if isinstance(body, dict) and "labels" in body else [body]
        if not isinstance(items, list) or not items:
            raise HTTPError(400, "invalid_request", "give {'labels': [{'request_id', 'value'}, ...]}")
        parsed = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise HTTPError(
                    400,
                    "invalid_request",
                    f"labels[{i}] must be an object with 'request_id' and 'value'",
                    field=f"labels[{i}]",
                )
            try:  # Label refuses a missing or empty request id and a missing value
                parsed.append(
                    Label(request_id=item.get("request_id", ""), value=item.get("value"), at=clock())
                )
            except (ValueError, TypeError, FourloopsError) as err:
                raise HTTPError(400, "invalid_request", f"labels[{i}]: {err}", field=f"labels[{i}]") from None
        try:
            stats = await asyncio.to_thread(events.add_labels, parsed)
        except StoreError as err:
            raise HTTPError(503, "unavailable", str(err)) from None
        return JSONResponse(
            {"inserted": stats.inserted, "duplicates": stats.duplicates, "unknown": stats.unknown}
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problems = {}
        for name, service in services.items():
            if service.state is None:
                problems[name] = "no champion loaded"
        try:
            await asyncio.to_thread(events.count)
        except Exception as err:  # any failure of the store means "not ready", never a crash
            problems["event_store"] = str(err)
        if problems:
            return JSONResponse({"status": "not_ready", "problems": problems}, status_code=503)
        versions = {n: s.state.table.to_dict() for n, s in services.items() if s.state is not None}
        return JSONResponse({"status": "ready", "models": versions})

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def refresher() -> None:
            while True:
                await asyncio.sleep(settings.refresh_interval)
                for service in services.values():
                    try:
                        if await asyncio.to_thread(service.refresh):
                            log.info(
                                "model %s: routing now %s",
                                service.name,
                                service.state and service.state.table,
                            )
                    except Exception as err:  # keep serving the state we have
                        log.warning("model %s: refresh failed: %s", service.name, err)

        for service in services.values():
            table = service.state.table if service.state is not None else None
            log.info(
                "serving model %s: %s",
                service.name,
                table,
                extra={"model": service.name, "routing": table.to_dict() if table is not None else None},
            )

        async def sampler() -> None:  # several workers: their gauges go to the shared files
            while True:
                await asyncio.sleep(SAMPLE_INTERVAL_S)
                metrics.sample()

        tasks = [asyncio.create_task(refresher())]
        if metrics.multiprocess:
            tasks.append(asyncio.create_task(sampler()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            metrics.close()

    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPError as err:
                name = request.path_params.get("model", "-")
                if name in services:
                    metrics.requests.labels(name, str(err.response.status_code)).inc()
                return err.response

        return wrapped

    routes = [
        Route("/v1/models/{model}/predict", guarded(predict), methods=["POST"]),
        Route("/v2/models/{model}/infer", guarded(infer_v2), methods=["POST"]),
        Route("/v1/labels", guarded(labels), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
        *description_routes(services),
        *(
            Route(path, guarded(handler), methods=["POST"])
            for path, handler in admin_handlers(
                service_for, registry, token=settings.admin_token, max_body_bytes=settings.max_body_bytes
            ).items()
        ),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.services = services
    return app


class _Throttled:
    """Log a recurring problem at most once per ``every`` seconds, with how often it happened."""

    def __init__(self, logger: logging.Logger, every: float) -> None:
        self.logger = logger
        self.every = every
        self._last = -math.inf
        self._suppressed = 0

    def warning(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self.logger.warning(message + suffix, *args)
        self._last, self._suppressed = now, 0


def _client_request_id(value: Any, field: str) -> str | None:
    """A request id chosen by the client (None: the server makes one), or a 400 naming ``field``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_REQUEST_ID:
        raise HTTPError(
            400, "invalid_request", f"{field} must be a non-empty string (max {MAX_REQUEST_ID})", field=field
        )
    if value.endswith(SHADOW_SUFFIX):
        raise HTTPError(
            400,
            "invalid_request",
            f"{field} may not end in {SHADOW_SUFFIX!r}: that names the event of a shadow score",
            field=field,
        )
    return value
