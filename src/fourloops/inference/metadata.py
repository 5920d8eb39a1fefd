"""What is served here: ``GET /v1/models`` and the Open Inference Protocol's health and model routes.

* ``GET /v1/models``: every served model, its task, whether it is ready and
  how it is routed now;
* ``GET /v2/health/live`` and ``GET /v2/health/ready`` (``{"live": true}``,
  ``{"ready": ...}``; 503 when not ready);
* ``GET /v2/models/{model}``: the model's metadata: its versions being
  served, its input tensors (one per request field: name, datatype, shape
  ``[-1]``) and its output tensor;
* ``GET /v2/models/{model}/ready`` (503 when it has no champion loaded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fourloops.definitions import Bool, Field, Float, Int, Task
from fourloops.inference.dispatch import Dispatcher
from fourloops.inference.http import JSONResponse
from fourloops.inference.service import ModelService

__all__ = ["Live", "ModelMetadata", "ModelReady", "Models", "Ready", "tensor_datatype"]

#: The platform name the metadata reports.
PLATFORM = "fourloops"


def tensor_datatype(f: Field) -> str:
    """The Open Inference Protocol datatype of a field's tensor."""
    if isinstance(f, Float):
        return "FP64"
    if isinstance(f, Int):
        return "INT64"
    if isinstance(f, Bool):
        return "BOOL"
    return "BYTES"


def _routing(service: ModelService) -> dict[str, Any] | None:
    return None if service.state is None else service.state.table.to_dict()


class Models:
    """``GET /v1/models``."""

    def __init__(self, services: Mapping[str, ModelService]) -> None:
        self.services = services

    async def __call__(self, request: Request) -> Response:
        return JSONResponse(
            {
                "models": [
                    {
                        "name": name,
                        "task": service.model.task.value,
                        "ready": service.state is not None,
                        "routing": _routing(service),
                    }
                    for name, service in sorted(self.services.items())
                ]
            }
        )


class Live:
    """``GET /v2/health/live``."""

    async def __call__(self, request: Request) -> Response:
        return JSONResponse({"live": True})


class Ready:
    """``GET /v2/health/ready``: every served model has a version loaded."""

    def __init__(self, services: Mapping[str, ModelService]) -> None:
        self.services = services

    async def __call__(self, request: Request) -> Response:
        ready = all(s.state is not None for s in self.services.values())
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


class ModelMetadata:
    """``GET /v2/models/{model}``."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def __call__(self, request: Request) -> Response:
        service = self.dispatcher.service_for(request)
        versions = sorted(service.state.table.versions()) if service.state is not None else []
        shape = [-1, -1] if service.model.task is Task.MULTICLASS else [-1]
        return JSONResponse(
            {
                "name": service.name,
                "versions": [str(v) for v in versions],
                "platform": PLATFORM,
                "inputs": [
                    {"name": name, "datatype": tensor_datatype(f), "shape": [-1]}
                    for name, f in service.contract.fields.items()
                ],
                "outputs": [
                    {
                        "name": "prediction",
                        "datatype": "BYTES" if service.model.task is Task.POLICY else "FP64",
                        "shape": shape,
                    }
                ],
            }
        )


class ModelReady:
    """``GET /v2/models/{model}/ready``."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def __call__(self, request: Request) -> Response:
        service = self.dispatcher.service_for(request)
        ready = service.state is not None
        return JSONResponse({"name": service.name, "ready": ready}, status_code=200 if ready else 503)
