"""HTTP plumbing of the prediction server: JSON in and out, and errors that name the problem.

Bodies are parsed with orjson (several times faster than the standard
library on small bodies). JSON has no NaN or Infinity, but many clients send
them (Python's ``json.dumps`` does by default): such a body is parsed again
by the standard library with the constants kept as floats, so the model's
contract judges them (rule ``nan``/``infinite``) and the client learns which
field broke which rule, instead of a bare parse error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Handler", "HTTPError", "JSONResponse", "error_response", "json_errors", "read_json"]


class JSONResponse(Response):
    """A JSON response encoded by orjson; NumPy values are accepted, NaN becomes null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error_response(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    """``{"error": {"type": kind, "message": message, ...}}`` with ``status``."""
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


class HTTPError(Exception):
    """Raised inside a handler; the server answers with :attr:`response`."""

    def __init__(
        self, status: int, kind: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.response = error_response(status, kind, message, **extra)
        self.response.headers.update(headers or {})


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body; 413 beyond ``limit`` bytes, 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, "payload_too_large", f"body of {declared} bytes exceeds {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, "payload_too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # maybe NaN/Infinity; the standard library says what is wrong otherwise
    try:
        return json.loads(body, parse_constant=_json_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise HTTPError(400, "invalid_json", f"body is not valid JSON: {err}") from None


def _json_constant(name: str) -> float:
    # Keep NaN/Infinity/-Infinity as floats so the contract judges them.
    return float(name.replace("Infinity", "inf"))


#: A route handler: a request in, a response out.
Handler = Callable[[Request], Awaitable[Response]]


def json_errors(handler: Handler, count: Callable[[Request, int], None]) -> Handler:
    """``handler`` answering every :class:`HTTPError` it raises as its JSON body, counted by status."""

    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except HTTPError as err:
            count(request, err.response.status_code)
            return err.response

    return answer
