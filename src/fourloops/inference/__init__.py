"""The inference loop: request -> features -> model -> prediction, safely.

The server (``fourloops serve``) is built from these modules:

* :mod:`~fourloops.inference.app` -- the ASGI app: the request path over HTTP,
  back-pressure, health, metrics; :mod:`~fourloops.inference.admin` and
  :mod:`~fourloops.inference.openapi` add the admin routes and the description;
  :mod:`~fourloops.inference.http` parses and answers JSON;
* :mod:`~fourloops.inference.service` -- one model's request path: validate,
  read features, route, call, fall back, log;
* :mod:`~fourloops.inference.state` -- what the registry says to serve, loaded;
* :mod:`~fourloops.inference.calls` -- the protected model call (deadline,
  circuit breaker, :mod:`~fourloops.inference.cache`);
* :mod:`~fourloops.inference.batching` -- adaptive micro-batching;
* :mod:`~fourloops.inference.eventlog` -- handing events to the event store;
* :mod:`~fourloops.inference.metrics` -- the Prometheus metrics.

Protection and routing primitives, each small and with an injectable clock:

* :mod:`~fourloops.inference.ratelimit` -- token-bucket rate limits per model
  and per client key, in-process or shared over Redis;
* :mod:`~fourloops.inference.circuit` -- a circuit breaker that stops calling
  a failing model and probes it later;
* :mod:`~fourloops.inference.routing` -- champion / canary / A-B / shadow
  routing by a stable hash of the unit id, with propensities.
"""

from __future__ import annotations

from fourloops.inference.circuit import CircuitBreaker, CircuitState
from fourloops.inference.ratelimit import (
    Decision,
    LocalRateLimiter,
    ModelClientLimiter,
    RateLimiter,
    RateLimits,
    TokenBucket,
)
from fourloops.inference.ratelimit_redis import RedisRateLimiter
from fourloops.inference.routing import Route, RoutingTable, unit_position

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "Decision",
    "LocalRateLimiter",
    "ModelClientLimiter",
    "RateLimiter",
    "RateLimits",
    "RedisRateLimiter",
    "Route",
    "RoutingTable",
    "TokenBucket",
    "unit_position",
]
