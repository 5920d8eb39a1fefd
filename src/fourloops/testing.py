"""Helpers for testing a fourloops project: a real HTTP server in a thread, a free port.

>>> import fourloops as fl                                   # doctest: +SKIP
>>> from fourloops.testing import ThreadedServer              # doctest: +SKIP
>>> with fl.Project.load("myproject") as project, ThreadedServer(project.app()) as server:  # doctest: +SKIP
...     httpx.post(f"{server.url}/v1/models/delay/predict", json={"inputs": {...}})

:class:`ThreadedServer` runs uvicorn on a loopback port in a daemon thread of
the calling process, so a test (or the demo) talks HTTP to a real server while
it can still reach into the objects behind it.
"""

from __future__ import annotations

import socket
import threading
import time

from starlette.applications import Starlette

__all__ = ["ThreadedServer", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ThreadedServer:
    """An app served by uvicorn on a free loopback port, in a daemon thread of this process.

    For the demo and for tests that need a real HTTP server next to objects
    they can reach into. ``with ThreadedServer(app) as server:`` returns once
    the server accepts connections (``server.url``); leaving the block shuts it
    down gracefully (in-flight requests and background work finish).
    """

    def __init__(self, app: Starlette, *, start_timeout: float = 30.0) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fourloops-server", daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            self.server.should_exit = True
            raise RuntimeError(f"the server on port {self.port} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
