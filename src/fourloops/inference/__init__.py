"""The inference loop: request -> features -> model -> prediction, safely.

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
    RedisRateLimiter,
    TokenBucket,
)
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
