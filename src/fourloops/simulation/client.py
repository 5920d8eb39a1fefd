"""An in-process client of the server's ASGI app: the same code as ``fourloops serve``, without sockets.

The simulation sends its requests through the app that ``fourloops serve``
runs (validation, feature lookups, routing, fallbacks, the durable event log,
shadow scoring) by calling it directly as an ASGI application on an event loop
of its own. No HTTP parsing and no network: every request still goes through
each route's full code path, and background work (shadow scores) finishes
before the call returns. The app's lifespan runs (start-up, shut-down) like a
server's.

>>> from starlette.applications import Starlette
>>> from starlette.responses import JSONResponse
>>> from starlette.routing import Route
>>> async def echo(request): return JSONResponse(await request.json())
>>> with InProcessClient(Starlette(routes=[Route("/e", echo, methods=["POST"])])) as client:
...     client.post("/e", {"a": 1})
(200, {'a': 1})
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = ["InProcessClient"]

Message = MutableMapping[str, Any]
App = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class InProcessClient:
    """Call an ASGI app in this process: ``post(path, body) -> (status, json)`` (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._lifespan: asyncio.Task[None] | None = None
        self._shutdown = asyncio.Event()
        self._started = asyncio.Event()

    def __repr__(self) -> str:
        return f"InProcessClient({self.app!r})"

    def __enter__(self) -> InProcessClient:
        self.loop.run_until_complete(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _start(self) -> None:
        events: asyncio.Queue[Message] = asyncio.Queue()
        await events.put({"type": "lifespan.startup"})

        async def receive() -> Message:
            message = await events.get()
            if message["type"] == "lifespan.shutdown":
                return message
            return message

        async def send(message: Message) -> None:
            if message["type"] in ("lifespan.startup.complete", "lifespan.startup.failed"):
                if message["type"] == "lifespan.startup.failed":
                    raise RuntimeError(f"the app failed to start: {message.get('message')}")
                self._started.set()

        async def run() -> None:
            await self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

        self._events = events
        self._lifespan = asyncio.ensure_future(run())
        await self._started.wait()

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        """POST ``body`` as JSON; the status and the decoded JSON answer."""
        return self.loop.run_until_complete(self._request("POST", path, orjson.dumps(body)))

    def get(self, path: str) -> tuple[int, Any]:
        return self.loop.run_until_complete(self._request("GET", path, b""))

    async def _request(self, method: str, path: str, payload: bytes) -> tuple[int, Any]:
        scope: MutableMapping[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.Event().wait()  # no disconnect: the call ends when the app is done
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, send)
        body = b"".join(chunks)
        return status, (orjson.loads(body) if body else None)

    def close(self) -> None:
        """Shut the app down (its lifespan) and the loop."""
        if self._lifespan is not None and not self.loop.is_closed():
            self.loop.run_until_complete(self._events.put({"type": "lifespan.shutdown"}))
            self.loop.run_until_complete(asyncio.wait([self._lifespan], timeout=30))
            self._lifespan = None
        if not self.loop.is_closed():
            self.loop.close()
