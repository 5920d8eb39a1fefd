"""The server's self-description: ``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs``.

The request schema of each model comes from its contract (the same rules the
server enforces), so clients can generate code or validate requests before
sending them.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fourloops.inference.http import JSONResponse
from fourloops.inference.service import ModelService

__all__ = ["description_routes", "openapi_spec"]


def description_routes(services: Mapping[str, ModelService]) -> list[Route]:
    """The ``/openapi.json`` and ``/docs`` routes for ``services``."""

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_spec(services))

    async def docs(request: Request) -> Response:
        rows = "".join(
            f"<li><code>POST /v1/models/{escape(n)}/predict</code>: {escape(s.model.description or n)}</li>"
            for n, s in services.items()
        )
        page = (
            "<!doctype html><meta charset=utf-8><title>fourloops server</title>"
            "<h1>fourloops prediction server</h1><p>The machine-readable description is "
            f"<a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p><ul>{rows}</ul>"
        )
        return Response(page, media_type="text/html")

    return [Route("/openapi.json", openapi, methods=["GET"]), Route("/docs", docs, methods=["GET"])]


def openapi_spec(services: Mapping[str, ModelService]) -> dict[str, Any]:
    """OpenAPI 3.1 for the served models; request schemas come from the models' contracts."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name, service in services.items():
        schemas[f"{name}.inputs"] = service.validator.json_schema()
        ref = {"$ref": f"#/components/schemas/{name}.inputs"}
        body = {
            "type": "object",
            "properties": {
                "inputs": ref,
                "instances": {"type": "array", "items": ref},
                "request_id": {"type": "string"},
                "unit_id": {"type": "string"},
            },
        }
        paths[f"/v1/models/{name}/predict"] = {
            "post": {
                "summary": f"Predict with model {name} ({service.model.task.value})",
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": {
                    "200": {"description": "request_id, model, version, route, prediction, fallback"},
                    "400": {"description": "malformed body"},
                    "413": {"description": "payload too large"},
                    "422": {"description": "contract violation: the field and the rule"},
                    "429": {"description": "rate limited (Retry-After)"},
                    "503": {"description": "not ready, or the prediction could not be logged"},
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "fourloops prediction server", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
