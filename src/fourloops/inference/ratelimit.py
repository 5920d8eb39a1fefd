"""Token-bucket rate limits, in-process or shared over Redis.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per
second; a request of ``cost`` tokens passes when that many are there and
takes them. A denied request takes nothing. :class:`Decision` says how many
tokens are left and, when denied, exactly how many seconds until enough will
be (the caller rounds that up to whole seconds for ``Retry-After``).

* :class:`LocalRateLimiter` keeps buckets in this process (the default).
* :class:`~fourloops.inference.ratelimit_redis.RedisRateLimiter` keeps them
  in Redis so that several servers share one budget (its own module).
* :class:`RateLimits` is the configuration (per model and per client key) and
  builds a :class:`ModelClientLimiter` that needs both limits to allow.

A bucket that has been idle long enough to be full is the same as no bucket,
so both backends forget it: memory is bounded by the keys active within the
last ``burst / rate`` seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fourloops.errors import ConfigError

__all__ = [
    "Decision",
    "LocalRateLimiter",
    "ModelClientLimiter",
    "RateLimiter",
    "RateLimits",
    "TokenBucket",
    "check_cost",
]

Clock = Callable[[], float]

#: Buckets kept by a local limiter before it sweeps out the full (idle) ones.
DEFAULT_MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one :meth:`RateLimiter.acquire`.

    ``remaining`` is the tokens left after this request (fractional while
    refilling); ``retry_after`` is 0.0 when allowed, else the seconds until the
    bucket holds ``cost`` tokens (``math.inf`` when ``cost`` exceeds the burst
    and never can). ``limit`` names the limit that denied, when a
    :class:`ModelClientLimiter` answered.
    """

    allowed: bool
    remaining: float
    retry_after: float
    limit: str | None = None


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """A bucket's shape: refills at ``rate`` tokens per second up to ``burst``.

    >>> bucket = TokenBucket(rate=2.0, burst=4)
    >>> bucket.take(tokens=1.0, elapsed=0.25, cost=1)
    (0.5, Decision(allowed=True, remaining=0.5, retry_after=0.0, limit=None))
    >>> bucket.take(tokens=0.5, elapsed=0.0, cost=2)
    (0.5, Decision(allowed=False, remaining=0.5, retry_after=0.75, limit=None))
    """

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (isinstance(self.rate, int | float) and math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"rate limit rate must be a positive number of tokens/s, got {self.rate!r}")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigError(f"rate limit burst must be a positive integer, got {self.burst!r}")

    @property
    def refill_time(self) -> float:
        """Seconds an empty bucket takes to fill: after that long idle it can be forgotten."""
        return self.burst / self.rate

    def take(self, tokens: float, elapsed: float, cost: int) -> tuple[float, Decision]:
        """Refill ``tokens`` over ``elapsed`` seconds, then try to take ``cost``.

        Returns the new token count and the decision. Negative ``elapsed``
        (a clock that stepped back) counts as zero.
        """
        tokens = min(float(self.burst), tokens + max(elapsed, 0.0) * self.rate)
        if tokens >= cost:
            tokens -= cost
            return tokens, Decision(True, tokens, 0.0)
        wait = math.inf if cost > self.burst else (cost - tokens) / self.rate
        return tokens, Decision(False, tokens, wait)


def check_cost(cost: int) -> None:
    """Refuse a cost that is not a positive integer (shared by every backend)."""
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise ValueError(f"cost must be a positive integer, got {cost!r}")


@runtime_checkable
class RateLimiter(Protocol):
    """What the server needs from a rate limiter, whatever keeps the buckets."""

    bucket: TokenBucket

    def acquire(self, key: str, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from ``key``'s bucket if it has them."""
        ...

    def refund(self, key: str, cost: int = 1) -> None:
        """Give back ``cost`` tokens taken by an allowed :meth:`acquire` (capped at the burst)."""
        ...

    def close(self) -> None:
        """Release connections; the limiter is not used afterwards."""
        ...


class LocalRateLimiter:
    """Token buckets per key in this process; thread-safe.

    ``clock`` returns seconds (monotonic); tests pass a fake one. When more
    than ``max_keys`` buckets exist, the full ones (idle for at least
    ``burst / rate`` seconds, hence equal to a fresh bucket) are dropped; the
    next sweep waits until the table doubles, so sweeping costs O(1) per call.

    >>> now = [0.0]
    >>> limiter = LocalRateLimiter(rate=1.0, burst=2, clock=lambda: now[0])
    >>> [limiter.acquire("alice").allowed for _ in range(3)]
    [True, True, False]
    >>> limiter.acquire("alice").retry_after
    1.0
    >>> now[0] = 1.0
    >>> limiter.acquire("alice")
    Decision(allowed=True, remaining=0.0, retry_after=0.0, limit=None)
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Clock = time.monotonic, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        self.bucket = TokenBucket(rate, burst)
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [tokens, time of the last refill]
        self._buckets: dict[str, list[float]] = {}
        self._sweep_at = max_keys

    def __repr__(self) -> str:
        return f"LocalRateLimiter(rate={self.rate!r}, burst={self.burst!r}, max_keys={self.max_keys!r})"

    def __len__(self) -> int:
        """The number of buckets held (full ones may linger until the next sweep)."""
        return len(self._buckets)

    def acquire(self, key: str, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from ``key``'s bucket if it has them; never blocks."""
        check_cost(cost)
        with self._lock:
            now = self._clock()
            state = self._buckets.get(key)
            if state is None:
                state = self._buckets[key] = [float(self.burst), now]
            tokens, decision = self.bucket.take(state[0], now - state[1], cost)
            state[0], state[1] = tokens, max(state[1], now)
            if len(self._buckets) > self._sweep_at:
                self._sweep(now)
            return decision

    def refund(self, key: str, cost: int = 1) -> None:
        """Give back ``cost`` tokens to ``key`` (capped at the burst).

        Adding before refilling and capping both times gives the same count
        as never having taken them, so no clock reading is needed.
        """
        check_cost(cost)
        with self._lock:
            state = self._buckets.get(key)
            if state is not None:
                state[0] = min(float(self.burst), state[0] + cost)

    def close(self) -> None:
        """Nothing to release; present for the :class:`RateLimiter` protocol."""

    def _sweep(self, now: float) -> None:
        full_after = self.bucket.refill_time
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens >= self.burst or now - last >= full_after:
                del self._buckets[key]
        self._sweep_at = max(self.max_keys, 2 * len(self._buckets))


@dataclass(frozen=True, slots=True)
class ModelClientLimiter:
    """Two limits that must both allow: one per model, one per (model, client key).

    The client limit is asked first. A client over its limit is denied
    without touching the model's budget, so one noisy client cannot drain it;
    when the model limit then denies, the client's tokens are refunded, so a
    denial by either limit consumes nothing from the other. (Between the
    client's take and its refund a concurrent request of the same client may
    see one token fewer; the refund makes the count right again.) Either
    limiter may be ``None`` (no such limit). An allowed decision's
    ``remaining`` is the smaller of the two limits' (``math.inf`` if none applies).
    """

    model: RateLimiter | None
    client: RateLimiter | None

    def acquire(self, model: str, client: str | None = None, cost: int = 1) -> Decision:
        """Decide one request for ``model`` from ``client`` (``None``: no client limit applies)."""
        remaining = math.inf
        client_key = None if client is None or self.client is None else f"{model}\x1f{client}"
        if client_key is not None and self.client is not None:
            decision = self.client.acquire(client_key, cost)
            if not decision.allowed:
                return Decision(False, decision.remaining, decision.retry_after, "client")
            remaining = decision.remaining
        if self.model is not None:
            decision = self.model.acquire(model, cost)
            if not decision.allowed:
                if client_key is not None and self.client is not None:
                    self.client.refund(client_key, cost)
                return Decision(False, decision.remaining, decision.retry_after, "model")
            remaining = min(remaining, decision.remaining)
        return Decision(True, remaining, 0.0)

    def close(self) -> None:
        """Close both limiters."""
        for limiter in (self.model, self.client):
            if limiter is not None:
                limiter.close()


def _default_burst(rate: float) -> int:
    return max(1, math.ceil(rate))


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Rate-limit configuration for a model: tokens/s per model and per client key.

    A rate of ``None`` means no such limit. Bursts default to one second's
    worth of tokens (at least one). :meth:`build` makes the limiter: in this
    process by default, in Redis when ``url`` is given so that several
    servers share the budgets.

    >>> limits = RateLimits(model_rate=100.0, client_rate=2.5)
    >>> limits.to_dict()
    {'model_rate': 100.0, 'model_burst': 100, 'client_rate': 2.5, 'client_burst': 3}
    >>> limiter = limits.build()
    >>> limiter.acquire("churn", client="key-1").allowed
    True
    """

    model_rate: float | None = None
    model_burst: int | None = None
    client_rate: float | None = None
    client_burst: int | None = None

    def __post_init__(self) -> None:
        for rate, burst, what in (
            (self.model_rate, self.model_burst, "model"),
            (self.client_rate, self.client_burst, "client"),
        ):
            if rate is None:
                if burst is not None:
                    raise ConfigError(f"{what}_burst is set but {what}_rate is not")
                continue
            TokenBucket(rate, _default_burst(rate) if burst is None else burst)  # validates
            if burst is None:
                object.__setattr__(self, f"{what}_burst", _default_burst(rate))

    def to_dict(self) -> dict[str, float | int | None]:
        """The configuration as JSON-ready values."""
        return {
            "model_rate": self.model_rate,
            "model_burst": self.model_burst,
            "client_rate": self.client_rate,
            "client_burst": self.client_burst,
        }

    def build(
        self, url: str | None = None, *, namespace: str = "default", clock: Clock | None = None
    ) -> ModelClientLimiter:
        """A limiter enforcing these limits; ``url`` (``redis://...``) shares them over Redis."""

        def make(rate: float | None, burst: int | None, scope: str) -> RateLimiter | None:
            if rate is None or burst is None:
                return None
            if url is None:
                return LocalRateLimiter(rate, burst, clock=clock or time.monotonic)
            from fourloops.inference.ratelimit_redis import RedisRateLimiter

            return RedisRateLimiter(url, rate, burst, namespace=f"{namespace}:{scope}", clock=clock)

        return ModelClientLimiter(
            make(self.model_rate, self.model_burst, "model"),
            make(self.client_rate, self.client_burst, "client"),
        )
