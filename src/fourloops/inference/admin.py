"""The server's admin routes: promote, roll back, set or pause the canary share.

Each needs ``Authorization: Bearer <server.admin_token>``; without the token
(or when no token is configured) they answer 401 and change nothing. Every
change goes through the registry (audited, compare-and-set) and the serving
state is refreshed at once; other servers pick it up within their refresh
interval.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from fourloops.errors import NotFoundError, RegistryError
from fourloops.inference.http import HTTPError, JSONResponse, read_json
from fourloops.inference.service import ModelService
from fourloops.inference.state import CANARY_SHARE_TAG
from fourloops.registry.models import ModelRegistry

__all__ = ["admin_handlers"]

Handler = Callable[[Request], Awaitable[Response]]


def admin_handlers(
    service_for: Callable[[Request], ModelService],
    registry: ModelRegistry,
    *,
    token: str,
    max_body_bytes: int,
) -> dict[str, Handler]:
    """Route path -> handler of every admin route (``service_for`` resolves the model of a request)."""

    def admin(request: Request) -> ModelService:
        given = request.headers.get("authorization", "")
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPError(401, "unauthorized", "admin routes need 'Authorization: Bearer <admin_token>'")
        return service_for(request)

    async def admin_promote(request: Request) -> Response:
        service = admin(request)
        body = await read_json(request, max_body_bytes)
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise HTTPError(400, "invalid_request", "'version' must be an integer", field="version")
        alias = body.get("alias", "champion")
        try:
            change = await asyncio.to_thread(
                registry.promote,
                service.name,
                version,
                alias=alias,
                actor="admin-api",
                reason=str(body.get("reason") or "promoted through the admin API"),
                force=bool(body.get("force", False)),
            )
        except (RegistryError, NotFoundError) as err:
            raise HTTPError(409, "refused", str(err)) from None
        await asyncio.to_thread(service.refresh)
        return JSONResponse(change.to_dict())

    async def admin_rollback(request: Request) -> Response:
        service = admin(request)
        try:
            change = await asyncio.to_thread(
                registry.rollback, service.name, actor="admin-api", reason="rolled back through the admin API"
            )
        except (RegistryError, NotFoundError) as err:
            raise HTTPError(409, "refused", str(err)) from None
        await asyncio.to_thread(service.refresh)
        return JSONResponse(change.to_dict())

    async def admin_canary(request: Request) -> Response:
        service = admin(request)
        body = await read_json(request, max_body_bytes)
        share = body.get("share") if isinstance(body, dict) else None
        if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
            raise HTTPError(400, "invalid_request", "'share' must be a number in [0, 1]", field="share")
        await asyncio.to_thread(registry.set_tags, service.name, None, {CANARY_SHARE_TAG: float(share)})
        await asyncio.to_thread(service.refresh)
        return JSONResponse({"model": service.name, "canary_share": float(share)})

    async def admin_pause(request: Request) -> Response:
        service = admin(request)
        await asyncio.to_thread(registry.set_tags, service.name, None, {CANARY_SHARE_TAG: 0.0})
        await asyncio.to_thread(service.refresh)
        return JSONResponse({"model": service.name, "canary_share": 0.0, "paused": True})

    return {
        "/v1/admin/models/{model}/promote": admin_promote,
        "/v1/admin/models/{model}/rollback": admin_rollback,
        "/v1/admin/models/{model}/canary": admin_canary,
        "/v1/admin/models/{model}/pause": admin_pause,
    }
