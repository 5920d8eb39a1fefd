"""Operations routes: ``GET /healthz`` (alive), ``GET /readyz`` (ready to answer), ``GET /metrics``.

Readiness means every model has a version loaded and the event store can be
reached; the store check is a constant-time probe (``EventStore.ping``),
whatever the size of the log, so a probe every few seconds costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from fourloops.inference.http import JSONResponse
from fourloops.inference.metrics import ServerMetrics
from fourloops.inference.service import ModelService
from fourloops.storage.events import EventStore

__all__ = ["Healthz", "MetricsRoute", "Readyz"]


class Healthz:
    """``GET /healthz``: the process answers."""

    async def __call__(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})


class Readyz:
    """``GET /readyz``: 200 with each model's routing when every model is loaded and the store answers."""

    def __init__(self, services: Mapping[str, ModelService], events: EventStore) -> None:
        self.services = services
        self.events = events

    async def __call__(self, request: Request) -> Response:
        problems = {name: "no champion loaded" for name, s in self.services.items() if s.state is None}
        try:
            await asyncio.to_thread(self.events.ping)
        except Exception as err:  # any failure of the store means "not ready", never a crash
            problems["event_store"] = str(err)
        if problems:
            return JSONResponse({"status": "not_ready", "problems": problems}, status_code=503)
        versions = {n: s.state.table.to_dict() for n, s in self.services.items() if s.state is not None}
        return JSONResponse({"status": "ready", "models": versions})


class MetricsRoute:
    """``GET /metrics``: the Prometheus exposition of this process (or of every worker)."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    async def __call__(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)
