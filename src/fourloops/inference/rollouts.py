"""Rollouts as the server shows them: admin routes to start, inspect and abort, and their checks as metrics.

The server never runs a rollout itself (that is the adaptation loop's
controller): the composition root hands it a :class:`RolloutActions` that
starts, reads and aborts rollouts through the registry, the same code the
command line calls. The routes need the admin token, like every admin route:

* ``POST /v1/admin/models/{model}/rollout`` ``{"version": 3, "reason": "...", "force": false}``
* ``GET  /v1/admin/models/{model}/rollout``: the stage, the last checks' numbers, the routing
* ``POST /v1/admin/models/{model}/rollout/abort`` ``{"reason": "..."}``

:class:`RolloutCollector` exports each model's open rollout at scrape time:
``fourloops_rollout_stage`` (the stage's position, 1-based), and per check
``fourloops_rollout_check_difference``, ``..._low``, ``..._high`` (the
always-valid interval), ``..._margin`` and ``fourloops_rollout_check_verdict``
(1 for the verdict it has, labelled by verdict).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

from fourloops.errors import ConfigError, FourloopsError, NotFoundError, RegistryError
from fourloops.inference.http import HTTPError, JSONResponse, read_json

__all__ = ["RolloutActions", "RolloutCollector", "rollout_routes"]

Handler = Callable[[Request], Awaitable[Response]]


class RolloutActions(Protocol):
    """What the server may do with rollouts (provided by the project)."""

    def start(self, model: str, version: int, *, reason: str, force: bool) -> dict[str, Any]: ...

    def status(self, model: str) -> dict[str, Any]: ...

    def abort(self, model: str, *, reason: str) -> dict[str, Any]: ...


def rollout_routes(
    actions: RolloutActions,
    authorize: Callable[[Request], str],
    *,
    max_body_bytes: int,
) -> list[tuple[str, list[str], Handler]]:
    """``(path, methods, handler)`` of the rollout routes; ``authorize`` checks the token, names the model."""

    async def call(function: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> Response:
        try:
            return JSONResponse(await asyncio.to_thread(function, *args, **kwargs))
        except NotFoundError as err:
            raise HTTPError(404, "not_found", str(err)) from None
        except (ConfigError, RegistryError) as err:
            raise HTTPError(409, "refused", str(err)) from None
        except FourloopsError as err:
            raise HTTPError(409, "refused", str(err)) from None

    async def start(request: Request) -> Response:
        model = authorize(request)
        body = await read_json(request, max_body_bytes)
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise HTTPError(400, "invalid_request", "'version' must be an integer", field="version")
        reason = body.get("reason", "")
        force = body.get("force", False)
        if not isinstance(reason, str):
            raise HTTPError(400, "invalid_request", "'reason' must be a string", field="reason")
        if not isinstance(force, bool):
            raise HTTPError(400, "invalid_request", "'force' must be true or false", field="force")
        return await call(
            actions.start, model, version, reason=reason or "started through the admin API", force=force
        )

    async def status(request: Request) -> Response:
        return await call(actions.status, authorize(request))

    async def abort(request: Request) -> Response:
        model = authorize(request)
        body = (
            await read_json(request, max_body_bytes)
            if int(request.headers.get("content-length") or 0)
            else {}
        )
        reason = body.get("reason", "") if isinstance(body, dict) else ""
        if not isinstance(reason, str):
            raise HTTPError(400, "invalid_request", "'reason' must be a string", field="reason")
        return await call(actions.abort, model, reason=reason or "aborted through the admin API")

    return [
        ("/v1/admin/models/{model}/rollout", ["POST"], start),
        ("/v1/admin/models/{model}/rollout", ["GET"], status),
        ("/v1/admin/models/{model}/rollout/abort", ["POST"], abort),
    ]


class RolloutCollector:
    """Each model's open rollout and its last checks, read at scrape time (see the module docstring)."""

    def __init__(self, actions: RolloutActions, models: Sequence[str]) -> None:
        self.actions = actions
        self.models = list(models)

    def collect(self) -> Iterator[Metric]:
        stage = GaugeMetricFamily(
            "fourloops_rollout_stage",
            "Stage of the open rollout (1-based)",
            labels=["model", "version", "kind"],
        )
        families = {
            name: GaugeMetricFamily(
                f"fourloops_rollout_check_{name}", help_text, labels=["model", "stage", "outcome"]
            )
            for name, help_text in (
                (
                    "difference",
                    "Candidate minus champion on the check's outcome (positive: candidate better)",
                ),
                ("low", "Lower end of the always-valid interval of the difference"),
                ("high", "Upper end of the always-valid interval of the difference"),
                ("margin", "How much worse the candidate may be and still pass"),
            )
        }
        verdicts = GaugeMetricFamily(
            "fourloops_rollout_check_verdict",
            "1 for the check's verdict",
            labels=["model", "stage", "outcome", "verdict"],
        )
        for model in self.models:
            try:
                record = self.actions.status(model).get("rollout")
            except FourloopsError:
                continue
            if not record or record.get("status") not in ("running", "paused"):
                continue
            kind = record["policy"]["stages"][record["stage_index"]]["kind"]
            stage.add_metric([model, str(record["version"]), kind], record["stage_index"] + 1)
            for check in record.get("state", {}).get("last_checks", []):
                labels = [model, kind, check.get("check", check["outcome"])]
                for name, family in families.items():
                    value = check.get(name)
                    if value is not None:
                        family.add_metric(labels, float(value))
                verdicts.add_metric([*labels, check["verdict"]], 1.0)
        yield stage
        yield from families.values()
        yield verdicts
