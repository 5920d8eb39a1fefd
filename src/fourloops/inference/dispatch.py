"""Getting a request answered by its model: back-pressure, micro-batching, errors as HTTP answers.

:class:`Dispatcher` owns the one piece of shared state on the request path:
how many requests per model are being answered. Beyond ``max_pending`` a
request is shed with 503 at once, so a slow event store slows the server and
then sheds load, and nothing queues without bound. A single-instance request
goes through the model's micro-batcher (grouped with concurrent ones into one
model call and one event-log write); a multi-instance one runs in a worker
thread. What the service raises becomes the HTTP answer here: 422 for a
contract violation, 409 for a request id already used, 503 when no model is loaded, the model and its fallback
failed, or the event log did not take the prediction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from fourloops.errors import ContractViolation, ModelUnavailable, NotFoundError, StoreError
from fourloops.inference.batching import MicroBatcher, Overloaded
from fourloops.inference.http import HTTPError
from fourloops.inference.metrics import ServerMetrics
from fourloops.inference.request_ids import DuplicateRequestId
from fourloops.inference.service import Answer, BatchRequest, ModelService, Prediction
from fourloops.inference.tally import ServingTally

__all__ = ["Dispatcher"]

log = logging.getLogger("fourloops.server")


class Dispatcher:
    """Answer requests for ``services`` with back-pressure and (optionally) micro-batching.

    ``pending`` counts, per model, the requests being answered or waiting;
    the metrics read it as requests in progress.
    """

    def __init__(
        self,
        services: Mapping[str, ModelService],
        metrics: ServerMetrics,
        pending: dict[str, int],
        *,
        max_pending: int,
        batching: bool,
        batch_max_size: int,
        batch_max_wait: float,
        tally: ServingTally | None = None,
    ) -> None:
        self.services = services
        self.metrics = metrics
        self.pending = pending
        self.max_pending = max_pending
        self.tally = tally  # answers and contract rejections per model, for the monitor
        self.batchers: dict[str, MicroBatcher[BatchRequest, Answer]] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        if batching:
            for name, service in services.items():
                self.batchers[name] = self._batcher(service, batch_max_size, batch_max_wait)

    def _batcher(self, service: ModelService, size: int, wait: float) -> MicroBatcher[BatchRequest, Answer]:
        batcher: MicroBatcher[BatchRequest, Answer] = MicroBatcher(
            service.predict_batch,
            max_batch=size,
            max_wait=wait,
            max_queue=self.max_pending,
            on_flush=self.metrics.micro_batch.labels(service.name).observe,
            inline=service.can_answer_inline,
            inline_run=service.predict_inline,
        )
        self.metrics.watch_queue(service.name, lambda: batcher.depth)
        return batcher

    def service_for(self, request: Request) -> ModelService:
        """The service of the request's ``{model}``, or a 404 naming the models served here."""
        name = request.path_params["model"]
        service = self.services.get(name)
        if service is None:
            raise HTTPError(
                404, "not_found", f"no model {name!r} is served here (served: {sorted(self.services)})"
            )
        return service

    async def answer(
        self, service: ModelService, instances: list[Any], request_id: str | None, unit_ids: list[Any]
    ) -> Answer:
        """The predictions (each logged before this returns) and the shadow work, or an HTTPError."""
        name = service.name
        if self.pending[name] >= self.max_pending:
            self.metrics.shed.labels(name).inc()
            raise HTTPError(
                503, "overloaded", f"{self.pending[name]} requests for model {name!r} are pending; try again"
            )
        batcher = self.batchers.get(name) if len(instances) == 1 else None
        self.pending[name] += 1
        try:
            if batcher is not None:
                answer = await batcher.submit(BatchRequest(instances, request_id, unit_ids))
            else:
                answer = await asyncio.to_thread(
                    service.predict, instances, request_id=request_id, unit_ids=unit_ids
                )
            if self.tally is not None:
                self.tally.served(name, len(instances))
            return answer
        except Overloaded as err:
            self.metrics.shed.labels(name).inc()
            raise HTTPError(503, "overloaded", str(err)) from None
        except ContractViolation as err:
            for rule in set(err.violations.values()):
                self.metrics.rejections.labels(name, rule).inc()
            if self.tally is not None:
                self.tally.rejected(name, err.violations)
            raise HTTPError(
                422,
                "contract_violation",
                str(err),
                violations=[{"field": f, "rule": r} for f, r in err.violations.items()],
            ) from None
        except DuplicateRequestId as err:
            raise HTTPError(409, "duplicate_request_id", str(err), request_id=err.request_id) from None
        except NotFoundError as err:
            raise HTTPError(503, "not_ready", str(err)) from None
        except ModelUnavailable as err:
            log.error("%s", err, extra={"model": name})
            raise HTTPError(503, "model_unavailable", str(err)) from None
        except StoreError as err:
            self.metrics.event_failures.labels(name).inc()
            log.error("%s", err, extra={"model": name})
            raise HTTPError(503, "unavailable", str(err)) from None
        finally:
            self.pending[name] -= 1

    def record(self, service: ModelService, answers: list[Prediction], started: float) -> None:
        """Count an answered request: batch size, predictions, fallbacks, lookups, latency."""
        metrics = self.metrics
        elapsed = time.perf_counter() - started
        name = service.name
        self._child(metrics.batch, (name,)).observe(len(answers))
        # One latency observation per (version, route) that answered: a single-instance request
        # has one; the instances of a batch without a unit id may be routed apart.
        routes: set[tuple[str, str]] = set()
        for a in answers:
            version = str(a.version)
            routes.add((version, a.route))
            self._child(metrics.predictions, (name, version, a.route)).inc()
            if a.fallback:
                metrics.fallbacks.labels(name, a.fallback, a.fallback_reason or "-").inc()
            for view, status in a.feature_status.items():
                self._child(metrics.feature_lookups, (name, view, status)).inc()
        for version, route in routes:
            self._child(metrics.latency, (name, version, route)).observe(elapsed)

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """``metric.labels(*labels)``, kept: the request path looks each series up once."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child
