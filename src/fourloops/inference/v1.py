"""The ``/v1`` routes: ``POST /v1/models/{model}/predict`` and ``POST /v1/labels``.

A predict body is ``{"inputs": {...}}`` (one row) or ``{"instances": [...]}``
(several), with an optional ``request_id`` (the client's; the server makes
one otherwise) and ``unit_id`` (the sticky routing key). A labels body is one
``{"request_id", "value"}`` object or ``{"labels": [...]}`` of them. Every
shape problem is a 4xx naming the field; the contract itself is judged by
the model's service.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from fourloops.clock import Clock
from fourloops.definitions import Task
from fourloops.errors import FourloopsError, StoreError
from fourloops.inference.dispatch import Dispatcher
from fourloops.inference.http import HTTPError, JSONResponse, read_json
from fourloops.inference.openapi import MAX_REQUEST_ID
from fourloops.inference.service import SHADOW_SUFFIX
from fourloops.inference.throttle import RateLimitCheck
from fourloops.ingestion.labels import SHOWN_REJECTIONS, label_problem
from fourloops.storage.events import EventStore, Label

__all__ = ["Labels", "Predict", "client_request_id"]


def client_request_id(value: Any, field: str) -> str | None:
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


def _unit_id(value: Any) -> str | int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON does not tell 7.0 from 7: both route as unit 7
    if value is not None and (not isinstance(value, str | int) or isinstance(value, bool)):
        raise HTTPError(400, "invalid_request", "unit_id must be a string or an integer", field="unit_id")
    return value


class Predict:
    """``POST /v1/models/{model}/predict``."""

    def __init__(
        self, dispatcher: Dispatcher, check_rate: RateLimitCheck, *, max_body_bytes: int, max_instances: int
    ) -> None:
        self.dispatcher = dispatcher
        self.check_rate = check_rate
        self.max_body_bytes = max_body_bytes
        self.max_instances = max_instances

    def instances(self, body: dict[str, Any]) -> tuple[list[Any], bool]:
        """The rows of a predict body and whether it was one ``inputs`` object."""
        if "inputs" in body and "instances" in body:
            raise HTTPError(400, "invalid_request", "give 'inputs' or 'instances', not both")
        if "inputs" in body:
            if not isinstance(body["inputs"], dict):
                raise HTTPError(400, "invalid_request", "'inputs' must be an object", field="inputs")
            return [body["inputs"]], True
        if "instances" not in body:
            raise HTTPError(400, "invalid_request", "body must have 'inputs' or 'instances'")
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise HTTPError(400, "invalid_request", "'instances' must be a non-empty list", field="instances")
        if len(instances) > self.max_instances:
            raise HTTPError(
                413,
                "too_many_instances",
                f"{len(instances)} instances exceed the limit of {self.max_instances}",
            )
        return instances, False

    async def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        service = self.dispatcher.service_for(request)
        await self.check_rate(request, service.name)
        body = await read_json(request, self.max_body_bytes)
        if not isinstance(body, dict):
            raise HTTPError(400, "invalid_request", "body must be a JSON object with 'inputs' or 'instances'")
        request_id = client_request_id(body.get("request_id"), "request_id")
        unit_id = _unit_id(body.get("unit_id"))
        instances, single = self.instances(body)
        answers, shadow = await self.dispatcher.answer(
            service, instances, request_id, [unit_id] * len(instances)
        )
        self.dispatcher.record(service, answers, started)
        task = BackgroundTask(service.score_shadow, shadow) if shadow else None
        if single:
            return JSONResponse(answers[0].to_dict(), background=task)
        return JSONResponse(
            {"model": service.name, "predictions": [a.to_dict() for a in answers]}, background=task
        )


#: The JSON types a label value may have: a number (finite), a boolean or a string.
_LABEL_TYPES = (bool, int, float, str)


def _label(i: int, item: Any, at: Any) -> Label:
    """The ``i``-th label of a body, or a 400 naming what was sent and what is missing."""
    where = f"labels[{i}]"
    if not isinstance(item, dict):
        raise HTTPError(
            400, "invalid_request", f"{where} must be an object, got {_json_type(item)}", field=where
        )
    for key in ("request_id", "value"):
        if key not in item:
            sent = ", ".join(repr(k) for k in list(item)[:10]) or "none"
            raise HTTPError(
                400,
                "invalid_request",
                f"{where} has no {key!r} (keys sent: {sent}); "
                "each label is {'request_id': ..., 'value': ...}",
                field=f"{where}.{key}",
            )
    rid, value = item["request_id"], item["value"]
    if not isinstance(rid, str) or not rid:
        raise HTTPError(
            400,
            "invalid_request",
            f"{where}.request_id must be a non-empty string, got {_json_type(rid)}",
            field=f"{where}.request_id",
        )
    if (
        value is None
        or not isinstance(value, _LABEL_TYPES)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise HTTPError(
            400,
            "invalid_request",
            f"{where}.value must be a number, a boolean or a string, got {_json_type(value)}",
            field=f"{where}.value",
        )
    try:
        return Label(request_id=rid, value=value, at=at)
    except FourloopsError as err:
        raise HTTPError(400, "invalid_request", f"{where}: {err}", field=where) from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
             dict: "an object"}  # fmt: skip
    return names.get(type(value), type(value).__name__) + (f" {value!r}" if isinstance(value, str) else "")


class Labels:
    """``POST /v1/labels``: delayed ground truth, stamped by ``clock`` (idempotent, first label wins).

    A label whose prediction was logged by a model in ``tasks`` must fit that
    model's task (:func:`~fourloops.ingestion.labels.label_problem`); otherwise
    the body is refused (422 ``invalid_label``, naming each label) and nothing
    is recorded. A label for an id not logged (yet) cannot be checked: it is
    kept and counted as unknown.
    """

    def __init__(
        self,
        events: EventStore,
        clock: Clock,
        *,
        max_body_bytes: int,
        tasks: Mapping[str, Task] | None = None,
    ) -> None:
        self.events = events
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.tasks = dict(tasks or {})

    def check(self, labels: list[Label]) -> None:
        """422 naming the labels that do not fit the task of the model that logged their prediction."""
        if not self.tasks:
            return
        models = self.events.models_of([label.request_id for label in labels])
        problems = []
        for i, label in enumerate(labels):
            model = models.get(label.request_id)
            task = self.tasks.get(model) if model is not None else None
            problem = label_problem(task, label.value) if task is not None else None
            if problem is not None:
                problems.append(
                    f"labels[{i}].value (request {label.request_id!r}, model {model!r}): {problem}"
                )
        if problems:
            shown = "; ".join(problems[:SHOWN_REJECTIONS])
            more = (
                f"; and {len(problems) - SHOWN_REJECTIONS} more" if len(problems) > SHOWN_REJECTIONS else ""
            )
            raise HTTPError(422, "invalid_label", f"nothing recorded: {shown}{more}", count=len(problems))

    async def __call__(self, request: Request) -> Response:
        body = await read_json(request, self.max_body_bytes)
        if isinstance(body, list):
            items = body
        elif isinstance(body, dict) and "labels" in body:
            items = body["labels"]
        else:
            items = [body]
        if not isinstance(items, list) or not items:
            raise HTTPError(
                400, "invalid_request", "give {'labels': [{'request_id': ..., 'value': ...}, ...]}"
            )
        at = self.clock()
        parsed = [_label(i, item, at) for i, item in enumerate(items)]
        try:
            await asyncio.to_thread(self.check, parsed)
            stats = await asyncio.to_thread(self.events.add_labels, parsed)
        except StoreError as err:
            raise HTTPError(503, "unavailable", str(err)) from None
        return JSONResponse(
            {"inserted": stats.inserted, "duplicates": stats.duplicates, "unknown": stats.unknown}
        )
