"""Rate limiting on the request path: the per-model and per-client budget, before any work is done.

:class:`RateLimitCheck` asks the limiter (in-process token buckets, or Redis
shared by every server) whether a request may go on; a refused one gets 429
with ``Retry-After``. When the limiter itself fails (Redis unreachable), the
request is let through (counted, logged at most every ten seconds) or refused
with 503, as ``server.rate_limit_on_error`` says.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from fourloops.errors import StoreError
from fourloops.inference.http import HTTPError
from fourloops.inference.metrics import ServerMetrics

__all__ = ["RateLimitCheck", "Throttled"]

#: Seconds between two log lines about a failing limiter.
LIMITER_LOG_EVERY_S = 10.0

log = logging.getLogger("fourloops.server")


class Throttled:
    """Log a recurring problem at most once per ``every`` seconds, with how often it happened."""

    def __init__(self, logger: logging.Logger, every: float) -> None:
        self.logger = logger
        self.every = every
        self._last = -math.inf
        self._suppressed = 0

    def warning(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self.logger.warning(message + suffix, *args)
        self._last, self._suppressed = now, 0


class RateLimitCheck:
    """``await check(request, model)``: returns when the request may go on, raises a 429 or 503 if not.

    ``limiter(model, client_key)`` returns a decision (``allowed``,
    ``retry_after``, ``limit``) or None to allow; ``blocks`` says it does I/O
    and must run off the event loop.
    """

    def __init__(
        self,
        limiter: Callable[[str, str], Any] | None,
        metrics: ServerMetrics,
        *,
        blocks: bool = False,
        on_error: str = "allow",
    ) -> None:
        self.limiter = limiter
        self.metrics = metrics
        self.blocks = blocks
        self.on_error = on_error
        self._errors = Throttled(log, every=LIMITER_LOG_EVERY_S)

    async def __call__(self, request: Request, model: str) -> None:
        limiter = self.limiter
        if limiter is None:
            return
        client = request.headers.get("x-client-key", "anonymous")
        try:
            if self.blocks:
                decision = await asyncio.to_thread(limiter, model, client)
            else:
                decision = limiter(model, client)
        except StoreError as err:
            self.metrics.rate_limit_errors.labels(model).inc()
            self._errors.warning("rate limiter failed (%s): %s", self.on_error, err)
            if self.on_error == "reject":
                raise HTTPError(503, "unavailable", f"the rate limiter is unavailable: {err}") from None
            return
        if decision is not None and not decision.allowed:
            self.metrics.rate_limited.labels(model, decision.limit or "model").inc()
            retry = decision.retry_after
            headers = {} if math.isinf(retry) else {"Retry-After": str(max(1, math.ceil(retry)))}
            raise HTTPError(
                429, "rate_limited", f"rate limit of {decision.limit or 'model'} exceeded", headers=headers
            )
