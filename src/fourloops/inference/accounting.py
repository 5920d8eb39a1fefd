"""Every answer the server gives is counted and has the JSON error shape, whatever went wrong.

:class:`CountResponses` wraps the whole app and counts each HTTP answer in
``fourloops_requests_total{model, status}`` (``status`` is ``ok`` for a 2xx,
the code otherwise; ``model`` is ``-`` for routes without one, or a model not
served here), including the answers Starlette gives itself (an unknown route)
and a 500 after an unexpected exception. :func:`exception_handlers` makes
those answers JSON like every other error: ``{"error": {"type", "message"}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fourloops.inference.http import error_response
from fourloops.inference.metrics import ServerMetrics

__all__ = ["CountResponses", "exception_handlers"]

log = logging.getLogger("fourloops.server")

_KINDS = {404: "not_found", 405: "method_not_allowed"}


class CountResponses:
    """ASGI middleware: count every HTTP answer by model and status (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics, models: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.models = set(models)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app fails before it answers

        async def counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            model = scope.get("path_params", {}).get("model", "-")
            label = "ok" if 200 <= status < 300 else str(status)
            self.metrics.requests.labels(model if model in self.models else "-", label).inc()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = _KINDS.get(exc.status_code, "http_error")
    message = f"no route {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
    response = error_response(exc.status_code, kind, message)
    response.headers.update(exc.headers or {})
    return response


async def _internal(request: Request, exc: Exception) -> Response:
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; the server log has the details")


def exception_handlers() -> Mapping[Any, Any]:
    """Starlette exception handlers: its own 404/405 answers and any unexpected error, as JSON."""
    return {HTTPException: _http_error, Exception: _internal}
