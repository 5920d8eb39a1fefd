"""The ``/v2`` routes: the Open Inference Protocol (KServe/Triton V2) form of predict.

``POST /v2/models/{model}/infer`` takes named, columnar input tensors (one
``data`` list per request field, all of the same length) and answers one
output tensor ``prediction``. Each row gets its own request id: the body's
``id`` for a single row, ``<id>-<row>`` otherwise (listed in
``parameters.request_ids``), so that labels can be sent for each row.
A tensor's ``shape`` must fit its data and its ``datatype`` the field it
feeds (``FP*``/``INT*`` for numbers, ``BOOL``, ``BYTES`` for text); an input
named twice is refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from fourloops.definitions import Bool, Field, Float, Int
from fourloops.inference.dispatch import Dispatcher
from fourloops.inference.http import HTTPError, JSONResponse, read_json
from fourloops.inference.throttle import RateLimitCheck
from fourloops.inference.v1 import client_request_id

__all__ = ["Infer"]


#: The datatypes each field type accepts (Open Inference Protocol names).
_DATATYPES: dict[type, frozenset[str]] = {
    Float: frozenset(
        {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
    ),  # fmt: skip
    Int: frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}),
    Bool: frozenset({"BOOL"}),
}
_TEXT = frozenset({"BYTES"})


def _check_tensor(tensor: Mapping[str, Any], fields: Mapping[str, Field] | None) -> None:
    name, data = tensor["name"], tensor["data"]
    shape = tensor.get("shape")
    if shape is not None:
        if (
            not isinstance(shape, list)
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
            or shape not in ([len(data)], [len(data), 1])
        ):
            raise HTTPError(
                400,
                "invalid_request",
                f"input {name!r}: shape {shape!r} does not fit its {len(data)} values "
                f"(give [{len(data)}] or [{len(data)}, 1])",
                field=name,
            )
    datatype = tensor.get("datatype")
    if datatype is None or fields is None or name not in fields:
        return  # unknown inputs are refused by the contract, by name
    f = fields[name]
    allowed = next((kinds for kind, kinds in _DATATYPES.items() if isinstance(f, kind)), _TEXT)
    if not isinstance(datatype, str) or datatype not in allowed:
        raise HTTPError(
            400,
            "invalid_request",
            f"input {name!r}: datatype {datatype!r} does not suit a {type(f).__name__} field "
            f"(use {', '.join(sorted(allowed))})",
            field=name,
        )


class Infer:
    """``POST /v2/models/{model}/infer``."""

    def __init__(
        self, dispatcher: Dispatcher, check_rate: RateLimitCheck, *, max_body_bytes: int, max_instances: int
    ) -> None:
        self.dispatcher = dispatcher
        self.check_rate = check_rate
        self.max_body_bytes = max_body_bytes
        self.max_instances = max_instances

    def instances(self, body: Any, fields: Mapping[str, Field] | None = None) -> list[dict[str, Any]]:
        """The rows of an infer body (its tensors turned into one mapping per row).

        Each tensor's ``shape`` (when given) must be ``[rows]`` or ``[rows, 1]``
        and its ``datatype`` (when given) must suit the field it feeds
        (``fields``: the model's serving contract); a name given twice is refused.
        """
        tensors = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(tensors, list) or not tensors:
            raise HTTPError(400, "invalid_request", "'inputs' must be a non-empty list of named tensors")
        columns: dict[str, list[Any]] = {}
        for t in tensors:
            if (
                not isinstance(t, dict)
                or not isinstance(t.get("name"), str)
                or not isinstance(t.get("data"), list)
            ):
                raise HTTPError(400, "invalid_request", "each input needs 'name' and a flat 'data' list")
            name = t["name"]
            if name in columns:
                raise HTTPError(400, "invalid_request", f"input {name!r} is given twice", field=name)
            _check_tensor(t, fields)
            columns[name] = t["data"]
        sizes = {len(v) for v in columns.values()}
        if len(sizes) != 1:
            raise HTTPError(400, "invalid_request", "every input must have the same number of rows")
        n = sizes.pop()
        if n == 0:
            raise HTTPError(400, "invalid_request", "inputs have no rows")
        if n > self.max_instances:  # as for /v1 instances
            raise HTTPError(413, "too_many_instances", f"{n} rows exceed the limit of {self.max_instances}")
        return [{k: v[i] for k, v in columns.items()} for i in range(n)]

    async def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        service = self.dispatcher.service_for(request)
        await self.check_rate(request, service.name)
        body = await read_json(request, self.max_body_bytes)
        instances = self.instances(body, service.contract.fields)
        n = len(instances)
        request_id = client_request_id(body.get("id"), "id")
        answers, shadow = await self.dispatcher.answer(service, instances, request_id, [None] * n)
        self.dispatcher.record(service, answers, started)
        data = [a.prediction for a in answers]
        shape = [n, len(data[0])] if data and isinstance(data[0], list) else [n]
        flat = [x for row in data for x in row] if len(shape) == 2 else data
        return JSONResponse(
            {
                "model_name": service.name,
                "model_version": ",".join(sorted({str(a.version) for a in answers})),
                "id": answers[0].request_id
                if n == 1
                else (request_id or answers[0].request_id.rsplit("-", 1)[0]),
                "outputs": [
                    {
                        "name": "prediction",
                        "shape": shape,
                        "datatype": "BYTES" if service.decider is not None else "FP64",  # actions are text
                        "data": flat,
                    }
                ],
                "parameters": {
                    "fallback": any(a.fallback for a in answers),
                    "request_ids": [a.request_id for a in answers],
                    "feature_status": [a.feature_status for a in answers],
                },
            },
            background=BackgroundTask(service.score_shadow, shadow) if shadow else None,
        )
