"""The server's admin routes: promote, roll back, set or pause the canary share, set an A/B split.

Each needs ``Authorization: Bearer <server.admin_token>``; without the token
(or when no token is configured) they answer 401 and change nothing. Every
change goes through the registry (checked, audited, compare-and-set): the
same gate rule as ``promote`` applies to every version these routes send
traffic to, with the same audited ``"force": true``. The serving state is
refreshed at once; other servers pick it up within their refresh interval.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fourloops.definitions.lifecycle import Alias
from fourloops.errors import ConfigError, NotFoundError, RegistryError
from fourloops.inference.http import HTTPError, JSONResponse, read_json
from fourloops.inference.service import ModelService
from fourloops.registry.models import ModelRegistry
from fourloops.registry.routing import RoutingChange

__all__ = ["admin_handlers", "authorizer"]

Handler = Callable[[Request], Awaitable[Response]]

#: The actor the audit log records for changes made through these routes.
ACTOR = "admin-api"


def authorizer(
    service_for: Callable[[Request], ModelService], *, token: str
) -> Callable[[Request], ModelService]:
    """Check a request's admin token (401 otherwise, or when none is configured); its model's service."""

    def admin(request: Request) -> ModelService:
        given = request.headers.get("authorization", "")
        if not token:
            raise HTTPError(
                401,
                "unauthorized",
                "admin routes are disabled: no server.admin_token is configured "
                "(set it, or FOURLOOPS_SERVER_ADMIN_TOKEN, and restart the server)",
            )
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPError(401, "unauthorized", "admin routes need 'Authorization: Bearer <admin_token>'")
        return service_for(request)

    return admin


def admin_handlers(
    service_for: Callable[[Request], ModelService],
    registry: ModelRegistry,
    *,
    token: str,
    max_body_bytes: int,
) -> dict[str, Handler]:
    """Route path -> handler of every admin route (``service_for`` resolves the model of a request)."""

    admin = authorizer(service_for, token=token)

    async def admin_promote(request: Request) -> Response:
        service = admin(request)
        body = await read_json(request, max_body_bytes)
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise HTTPError(400, "invalid_request", "'version' must be an integer", field="version")
        alias = _optional(body, "alias", str, Alias.CHAMPION.value)
        if not alias:
            raise HTTPError(400, "invalid_request", "'alias' must not be empty", field="alias")
        reason = _optional(body, "reason", str, "") or "promoted through the admin API"
        force = _optional(body, "force", bool, False)  # "false" is not False: only a JSON boolean counts
        try:
            change = await asyncio.to_thread(
                registry.promote, service.name, version, alias=alias, actor=ACTOR, reason=reason, force=force
            )
        except (RegistryError, NotFoundError) as err:
            raise HTTPError(409, "refused", str(err)) from None
        await asyncio.to_thread(service.refresh)
        return JSONResponse(change.to_dict())

    async def admin_rollback(request: Request) -> Response:
        service = admin(request)
        try:
            change = await asyncio.to_thread(
                registry.rollback, service.name, actor=ACTOR, reason="rolled back through the admin API"
            )
        except (RegistryError, NotFoundError) as err:
            raise HTTPError(409, "refused", str(err)) from None
        await asyncio.to_thread(service.refresh)
        return JSONResponse(change.to_dict())

    async def route(service: ModelService, **changes: Any) -> RoutingChange:
        """Change the model's routing in the registry (checked and audited there), then serve it."""
        try:
            change = await asyncio.to_thread(registry.set_routing, service.name, actor=ACTOR, **changes)
        except ConfigError as err:
            raise HTTPError(400, "invalid_request", str(err)) from None
        except (RegistryError, NotFoundError) as err:
            raise HTTPError(409, "refused", str(err)) from None
        await asyncio.to_thread(service.refresh)
        return change

    async def admin_canary(request: Request) -> Response:
        """Set the canary share, and optionally which version is canary: ``{"share": 0.1, "version": 3}``."""
        service = admin(request)
        body = await read_json(request, max_body_bytes)
        share = body.get("share") if isinstance(body, dict) else None
        if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
            raise HTTPError(400, "invalid_request", "'share' must be a number in [0, 1]", field="share")
        assert isinstance(body, dict)
        changes: dict[str, Any] = {"canary_share": float(share)}
        if body.get("version") is not None:
            version = body["version"]
            if not isinstance(version, int) or isinstance(version, bool):
                raise HTTPError(400, "invalid_request", "'version' must be an integer", field="version")
            changes["canary"] = version
        changes["force"] = _optional(body, "force", bool, False)
        reason = _optional(body, "reason", str, "") or "canary share set through the admin API"
        change = await route(service, reason=reason, **changes)
        return JSONResponse(
            {"model": service.name, "canary": change.after.canary, "canary_share": float(share)}
        )

    async def admin_pause(request: Request) -> Response:
        service = admin(request)
        await route(service, canary_share=0.0, reason="canary paused through the admin API")
        return JSONResponse({"model": service.name, "canary_share": 0.0, "paused": True})

    async def admin_ab(request: Request) -> Response:
        """Set an A/B split ``{"split": {"1": 0.5, "2": 0.5}}``, or clear it with ``{"split": null}``."""
        service = admin(request)
        body = await read_json(request, max_body_bytes)
        if not isinstance(body, dict) or "split" not in body:
            raise HTTPError(400, "invalid_request", "give {'split': {'<version>': share, ...}} or null")
        force = _optional(body, "force", bool, False)
        reason = _optional(body, "reason", str, "") or "A/B split set through the admin API"
        if body["split"] is None:
            await route(service, ab=None, reason="A/B split cleared through the admin API")
            return JSONResponse({"model": service.name, "ab_split": None})
        split = _split(body["split"])
        change = await route(service, ab=split, force=force, reason=reason)
        ab = change.after.ab or {}
        return JSONResponse({"model": service.name, "ab_split": {str(v): s for v, s in ab.items()}})

    return {
        "/v1/admin/models/{model}/promote": admin_promote,
        "/v1/admin/models/{model}/rollback": admin_rollback,
        "/v1/admin/models/{model}/canary": admin_canary,
        "/v1/admin/models/{model}/pause": admin_pause,
        "/v1/admin/models/{model}/ab": admin_ab,
    }


def _split(value: object) -> dict[int, float]:
    """An A/B split from its JSON form (``{"1": 0.5, "2": 0.5}``); a 400 names what is wrong."""
    if not isinstance(value, dict) or not value:
        raise HTTPError(
            400, "invalid_request", f"an A/B split maps versions to shares, got {value!r}", field="split"
        )
    split: dict[int, float] = {}
    for key, share in value.items():
        if not (key.isascii() and key.isdigit()):  # "1_0", " 1", "١" are not spellings of a version
            raise HTTPError(
                400, "invalid_request", f"A/B split: {key[:40]!r} is not a version number", field="split"
            )
        version = int(key)
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise HTTPError(
                400,
                "invalid_request",
                f"A/B split: the share of version {version} must be a number, got {share!r}",
                field="split",
            )
        split[version] = float(share)
    return split


def _optional(body: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    """``body[key]`` when it is a ``kind`` (null or absent: ``default``); else a 400 naming the key."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise HTTPError(
            400, "invalid_request", f"'{key}' must be a {_JSON_NAMES[kind]}, got {value!r}", field=key
        )
    return value


_JSON_NAMES = {str: "string", bool: "boolean"}
