"""HTTP plumbing of the prediction server: JSON in and out, and errors that name the problem.

Bodies are parsed with orjson (several times faster than the standard
library on small bodies). JSON has no NaN or Infinity, but many clients send
them (Python's ``json.dumps`` does by default): such a body is parsed again
by the standard library with the constants kept as floats, so the model's
contract judges them (rule ``nan``/``infinite``) and the client learns which
field broke which rule, instead of a bare parse error.

A string holding the NUL character (``\\u0000``) is refused with a 400 naming
where it is, on every route: it is valid JSON, but PostgreSQL can store it
neither in text nor in ``jsonb``, so a request that one backend would log
would fail on another (a 503 for bad input). Refusing it here keeps every
backend answering the same.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "MAX_DEPTH",
    "HTTPError",
    "NUL_FREE",
    "Handler",
    "JSONResponse",
    "error_response",
    "json_errors",
    "parse_json",
    "read_json",
]

#: Deepest nesting of arrays and objects a body may have (orjson's own bound).
MAX_DEPTH = 1024
_CONSTANTS = (b"NaN", b"Infinity")
#: The only way valid JSON can spell a NUL character (a raw 0x00 byte in a string is invalid JSON).
_NUL_ESCAPE = b"u0000"
#: JSON Schema ``pattern`` of a string without NUL (every string a body may hold; see the module docstring).
NUL_FREE = "^[^\\u0000]*$"


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
    return parse_json(b"".join(chunks))


def parse_json(body: bytes) -> Any:
    """A JSON body, or a 400 naming what is wrong: syntax, depth, invalid UTF-8 or Unicode.

    orjson parses (and bounds nesting at :data:`MAX_DEPTH` levels, refuses
    invalid UTF-8 and lone UTF-16 surrogates). Only a body that may hold the
    constants ``NaN``/``Infinity`` is parsed again by the standard library, so
    the contract can name the field that holds one; what that parse returns
    must still be valid Unicode and no deeper.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        first = err
    else:
        return _without_nul(value, body)
    if not any(token in body for token in _CONSTANTS):
        raise HTTPError(
            400, "invalid_json", f"body is not valid JSON: {_describe(first, parsing=True)}"
        ) from None
    try:
        value = json.loads(body, parse_constant=_json_constant)
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)  # lone surrogates, depth: refused here
    except RecursionError:
        raise HTTPError(400, "invalid_json", f"body nests deeper than {MAX_DEPTH} levels") from None
    except orjson.JSONEncodeError as err:
        raise HTTPError(
            400, "invalid_json", f"body is not valid JSON: {_describe(err, parsing=False)}"
        ) from None
    except (ValueError, UnicodeDecodeError, TypeError) as err:
        raise HTTPError(
            400, "invalid_json", f"body is not valid JSON: {_describe(err, parsing=True)}"
        ) from None
    return _without_nul(value, body)


def _without_nul(value: Any, body: bytes) -> Any:
    """``value``, or a 400 naming a string (or key) in it that holds a NUL character."""
    if _NUL_ESCAPE not in body:  # the common case: no scan
        return value
    where = _nul_path(value)
    if where is not None:
        raise HTTPError(
            400,
            "invalid_request",
            f"{where} holds a NUL character (\\u0000), which fourloops does not accept in any string",
            field=where,
        )
    return value


#: Longest key shown in a path (keys are the client's and may be anything).
_KEY_CHARS = 40


def _nul_path(value: Any) -> str | None:
    """Where in ``value`` a string holds ``\\x00`` (``inputs.name``, ``labels[2].value``), or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:  # iterative: a body may nest up to MAX_DEPTH levels
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where or "body"
        elif isinstance(item, dict):
            for key, inner in item.items():
                step = key if key.isidentifier() else repr(key[:_KEY_CHARS])
                if "\x00" in key:
                    return f"a key of {where or 'body'} ({step})"
                stack.append((inner, f"{where}.{step}" if where else step))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))
    return None


def _describe(err: Exception, *, parsing: bool) -> str:
    text = str(err)
    if "depth limit" in text or "recursion limit" in text:
        return f"it nests deeper than {MAX_DEPTH} levels"
    if "surrogate" in text and not (parsing and "not valid UTF-8" in text):
        return f"a string holds a lone UTF-16 surrogate ({text})"
    if "not valid UTF-8" in text or isinstance(err, UnicodeDecodeError):
        return f"it is not valid UTF-8 ({text})"
    return text


def _json_constant(name: str) -> float:
    # Keep NaN/Infinity/-Infinity as floats so the contract judges them.
    return float(name.replace("Infinity", "inf"))


#: A route handler: a request in, a response out.
Handler = Callable[[Request], Awaitable[Response]]


def json_errors(handler: Handler) -> Handler:
    """``handler`` answering every :class:`HTTPError` it raises with the error's JSON body."""

    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except HTTPError as err:
            return err.response

    return answer
