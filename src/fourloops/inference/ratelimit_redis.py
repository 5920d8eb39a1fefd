"""Token buckets in Redis: one rate-limit budget shared by several servers.

One Lua script refills and takes atomically, timed by the Redis server's
clock so that the servers' clocks do not matter; a bucket expires once it
would be full again, so Redis holds only the keys active in the last
``burst / rate`` seconds. The bucket arithmetic is
:class:`~fourloops.inference.ratelimit.TokenBucket`'s, done in Lua.
"""

from __future__ import annotations

import json
import math

from fourloops.errors import StoreError
from fourloops.inference.ratelimit import Clock, Decision, TokenBucket, check_cost

__all__ = ["RedisRateLimiter"]

#: Seconds to wait on connecting to Redis and on every reply.
SOCKET_TIMEOUT_S = 5.0
#: Extra milliseconds a Redis bucket lives after it would be full again.
EXPIRY_SLACK_MS = 1_000

# KEYS[1]: the bucket, a hash {tokens, ts}. ARGV: rate, burst, cost, now ('' = Redis TIME),
# expiry in ms. Returns {allowed (0/1), tokens, retry_after}; numbers travel as
# %.17g strings because Redis truncates Lua numbers in replies to integers.
# A missing bucket is a full one; the expiry drops buckets once they are full again.
_ACQUIRE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[4])
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
if now > ts then ts = now end
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
elseif cost > burst then
  wait = -1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {allowed, string.format('%.17g', tokens), string.format('%.17g', wait)}
"""

# KEYS[1]: the bucket; ARGV: burst, cost. Adds the tokens back, capped at the burst.
_REFUND = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens == nil then return 0 end
local burst = tonumber(ARGV[1])
tokens = math.min(burst, tokens + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens))
return 1
"""


class RedisRateLimiter:
    """Token buckets in Redis, one budget shared by every server using the same key.

    Each bucket is a hash ``fl:"<namespace>":ratelimit:"<key>"``. The refill
    and take run in one Lua script, so concurrent servers never overspend,
    and time comes from Redis ``TIME`` so their clocks need not agree. A
    ``clock`` may be injected instead (tests); every instance sharing a
    bucket must then use the same one. Redis failures raise
    :class:`~fourloops.errors.StoreError`; failing open or closed is the
    caller's choice.
    """

    def __init__(
        self,
        url: str,
        rate: float,
        burst: int,
        *,
        namespace: str = "default",
        clock: Clock | None = None,
    ) -> None:
        import redis

        self.bucket = TokenBucket(rate, burst)
        self.url = url
        self.rate = rate
        self.burst = burst
        self.namespace = namespace
        self._clock = clock
        self._prefix = f"fl:{json.dumps(namespace)}:ratelimit:"
        self._expiry_ms = math.ceil(self.bucket.refill_time * 1000) + EXPIRY_SLACK_MS
        self._redis_error: type[Exception] = redis.RedisError
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S
            )
            self._client.ping()
        except (redis.RedisError, ValueError) as err:
            raise StoreError(f"cannot reach the Redis rate limiter {url!r}: {err}") from err
        self._acquire = self._client.register_script(_ACQUIRE)
        self._refund = self._client.register_script(_REFUND)

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter(url={self.url!r}, rate={self.rate!r}, burst={self.burst!r}, "
            f"namespace={self.namespace!r})"
        )

    def key(self, key: str) -> str:
        """The Redis key holding ``key``'s bucket."""
        return self._prefix + json.dumps(key)

    def acquire(self, key: str, cost: int = 1) -> Decision:
        """Take ``cost`` tokens from the shared bucket ``key`` if it has them."""
        check_cost(cost)
        now = "" if self._clock is None else repr(float(self._clock()))
        args: list[str | int] = [repr(float(self.rate)), self.burst, cost, now, self._expiry_ms]
        try:
            allowed, tokens, wait = self._acquire(keys=[self.key(key)], args=args)
        except self._redis_error as err:
            raise StoreError(f"rate limiter {self.url!r} failed for {key!r}: {err}") from err
        retry_after = float(wait)
        return Decision(bool(allowed), float(tokens), math.inf if retry_after < 0 else retry_after)

    def refund(self, key: str, cost: int = 1) -> None:
        """Give back ``cost`` tokens to the shared bucket ``key`` (capped at the burst)."""
        check_cost(cost)
        try:
            self._refund(keys=[self.key(key)], args=[self.burst, cost])
        except self._redis_error as err:
            raise StoreError(f"rate limiter {self.url!r} refund failed for {key!r}: {err}") from err

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
