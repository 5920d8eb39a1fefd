"""``GET /docs``: an interactive page for the server's OpenAPI description, served offline.

The page runs Swagger UI from the files of the ``swagger-ui-bundle-v2``
package, served by this server under ``/docs/assets/`` (nothing is fetched
from a CDN, so it works on a machine without internet). It reads
``/openapi.json``; "Try it out" sends requests to this server, and
"Authorize" takes ``server.admin_token`` for the admin routes. Without
JavaScript the page still lists the routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS", "docs_routes", "swagger_ui_files"]

#: Where the viewer's files are served.
ASSETS = "/docs/assets"
#: The viewer files the page loads (the rest of the package is not served).
_SERVED = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")


def swagger_ui_files() -> Path:
    """The folder of the Swagger UI files that ``swagger-ui-bundle-v2`` carries in its wheel."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


class _Assets(StaticFiles):
    """The viewer's files, and only those (the package also holds templates and maps)."""

    def lookup_path(self, path: str) -> tuple[str, Any]:
        if path not in _SERVED:
            return "", None
        return super().lookup_path(path)


def _page(models: Mapping[str, str]) -> str:
    routes = "".join(
        f"<li><code>POST /v1/models/{escape(n)}/predict</code>, "
        f"<code>POST /v2/models/{escape(n)}/infer</code>: {escape(description)}</li>"
        for n, description in models.items()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fourloops prediction server</title>
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<style>body {{ margin: 0; }} .fl-fallback {{ font-family: sans-serif; margin: 2em; }}</style>
</head>
<body>
<div id="ui"></div>
<noscript><div class="fl-fallback">
<h1>fourloops prediction server</h1>
<p>The machine-readable description is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<ul>{routes}
<li><code>POST /v1/labels</code>: delayed ground truth by request id</li>
<li><code>GET /v1/models</code>, <code>GET /v2/models/{{model}}</code>, <code>GET /healthz</code>,
<code>GET /readyz</code>, <code>GET /metrics</code></li>
<li><code>POST /v1/admin/models/{{model}}/promote|rollback|canary|pause|ab</code> (bearer token)</li>
</ul></div></noscript>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "/openapi.json",
  dom_id: "#ui",
  deepLinking: true,
  tryItOutEnabled: false,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
  presets: [SwaggerUIBundle.presets.apis],
}});
</script>
</body>
</html>
"""


def docs_routes(models: Mapping[str, str]) -> list[BaseRoute]:
    """``/docs`` and its assets; ``models`` maps each served model to its description."""
    page = _page(models)

    async def docs(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    return [
        Route("/docs", docs, methods=["GET"]),
        Mount(ASSETS, app=_Assets(directory=swagger_ui_files()), name="docs-assets"),
    ]
