from __future__ import annotations

import doctest
import math
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue

import pytest

from fourloops.errors import ConfigError, StoreError
from fourloops.inference.ratelimit import (
    Decision,
    LocalRateLimiter,
    ModelClientLimiter,
    RateLimiter,
    RateLimits,
    TokenBucket,
)
from fourloops.inference.ratelimit_redis import RedisRateLimiter


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


LimiterFactory = Callable[[float, int, FakeClock], RateLimiter]


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.services)])
def make_limiter(request: pytest.FixtureRequest) -> Iterator[LimiterFactory]:
    """Builds limiters on every backend the machine offers, all with a fake clock."""
    made: list[RateLimiter] = []

    def make(rate: float, burst: int, clock: FakeClock) -> RateLimiter:
        limiter: RateLimiter
        if request.param == "local":
            limiter = LocalRateLimiter(rate, burst, clock=clock)
        else:
            url = request.getfixturevalue("redis_url")
            namespace = request.getfixturevalue("redis_namespace")
            limiter = RedisRateLimiter(url, rate, burst, namespace=namespace, clock=clock)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()


# -- the bucket arithmetic, on every backend ------------------------------------------


def test_burst_then_denied_with_exact_retry_after(make_limiter: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = make_limiter(2.0, 3, clock)
    assert [limiter.acquire("k") for _ in range(3)] == [
        Decision(True, 2.0, 0.0),
        Decision(True, 1.0, 0.0),
        Decision(True, 0.0, 0.0),
    ]
    assert limiter.acquire("k") == Decision(False, 0.0, 0.5)
    clock.advance(0.25)
    assert limiter.acquire("k") == Decision(False, 0.5, 0.25)
    clock.advance(0.25)
    assert limiter.acquire("k") == Decision(True, 0.0, 0.0)


def test_refill_is_capped_at_burst(make_limiter: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = make_limiter(1.0, 2, clock)
    assert limiter.acquire("k", cost=2).allowed
    clock.advance(1000.0)
    assert limiter.acquire("k") == Decision(True, 1.0, 0.0)


def test_fractional_rate(make_limiter: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = make_limiter(0.25, 1, clock)  # one token every 4 s
    assert limiter.acquire("k").allowed
    assert limiter.acquire("k") == Decision(False, 0.0, 4.0)
    clock.advance(1.0)
    assert limiter.acquire("k") == Decision(False, 0.25, 3.0)
    clock.advance(2.5)
    assert limiter.acquire("k") == Decision(False, 0.875, 0.5)
    clock.advance(0.5)
    assert limiter.acquire("k") == Decision(True, 0.0, 0.0)


def test_denied_request_takes_nothing(make_limiter: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = make_limiter(1.0, 4, clock)
    assert limiter.acquire("k", cost=3) == Decision(True, 1.0, 0.0)
    assert limiter.acquire("k", cost=2) == Decision(False, 1.0, 1.0)
    assert limiter.acquire("k", cost=1) == Decision(True, 0.0, 0.0)


def test_retry_after_is_the_exact_wait(make_limiter: LimiterFactory) -> None:
    clock = FakeClock(0.0)  # so that the advance below is exact in floating point
    limiter = make_limiter(3.0, 5, clock)
    assert limiter.acquire("k", cost=5).allowed
    decision = limiter.acquire("k", cost=4)
    assert decision.retry_after == pytest.approx(4 / 3)
    clock.advance(decision.retry_after)
    assert limiter.acquire("k", cost=4).allowed


def test_cost_above_burst_is_never_allowed(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(1.0, 2, FakeClock())
    assert limiter.acquire("k", cost=3) == Decision(False, 2.0, math.inf)
    assert limiter.acquire("k", cost=2).allowed  # and it took nothing


def test_clock_stepping_back_refills_nothing(make_limiter: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = make_limiter(1.0, 2, clock)
    assert limiter.acquire("k", cost=2).allowed
    clock.advance(-5.0)
    assert limiter.acquire("k") == Decision(False, 0.0, 1.0)
    clock.advance(6.0)  # one second after the last take
    assert limiter.acquire("k") == Decision(True, 0.0, 0.0)


def test_keys_are_isolated(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(1.0, 1, FakeClock())
    assert limiter.acquire("alice").allowed
    assert not limiter.acquire("alice").allowed
    assert limiter.acquire("bob").allowed
    assert limiter.acquire('alice"').allowed  # no key is a prefix trick of another


def test_refund_restores_the_tokens(make_limiter: LimiterFactory) -> None:
    clock = FakeClock()
    limiter = make_limiter(1.0, 3, clock)
    assert limiter.acquire("k", cost=2).allowed
    limiter.refund("k", cost=2)
    assert limiter.acquire("k", cost=3) == Decision(True, 0.0, 0.0)
    clock.advance(2.0)
    limiter.refund("k", cost=2)  # capped: 2 refilled + 2 back is still only the burst
    assert limiter.acquire("k", cost=3) == Decision(True, 0.0, 0.0)
    limiter.refund("unknown")  # a full (forgotten) bucket stays full


def test_bad_cost_is_refused(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(1.0, 1, FakeClock())
    for cost in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="cost"):
            limiter.acquire("k", cost=cost)  # type: ignore[arg-type]


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(0.0, 1), (-1.0, 1), (math.inf, 1), (math.nan, 1), (1.0, 0), (1.0, 1.5), (1.0, True)],
)
def test_bucket_shape_is_validated(rate: float, burst: int) -> None:
    with pytest.raises(ConfigError):
        TokenBucket(rate, burst)


def test_protocol_is_followed() -> None:
    assert isinstance(LocalRateLimiter(1.0, 1), RateLimiter)
    assert "rate=1.0" in repr(LocalRateLimiter(1.0, 1))


# -- the local limiter ------------------------------------------------------------------


def test_local_limiter_forgets_idle_full_buckets() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(1.0, 2, clock=clock, max_keys=10)
    for i in range(10):
        limiter.acquire(f"idle-{i}")
    clock.advance(2.0)  # every idle bucket is full again
    limiter.acquire("busy", cost=2)
    limiter.acquire("new")  # 12 buckets > 10: sweep
    assert len(limiter) == 2
    assert limiter.acquire("busy") == Decision(False, 0.0, 1.0)  # busy kept its state


def test_local_limiter_memory_is_bounded_under_many_keys() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(100.0, 1, clock=clock, max_keys=100)
    for i in range(10_000):
        limiter.acquire(f"user-{i}")
        clock.advance(0.001)  # each bucket is full again after 10 ms
    assert len(limiter) <= 200


def test_local_limiter_sweep_keeps_active_buckets() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(1.0, 1, clock=clock, max_keys=4)
    for i in range(20):
        assert limiter.acquire(f"user-{i}").allowed
    assert len(limiter) == 20  # all still refilling, none may be forgotten
    assert not limiter.acquire("user-0").allowed


def test_threads_hammering_one_key_never_exceed_the_budget() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(1.0, 500, clock=clock)
    allowed = [0] * 8
    start = threading.Barrier(8)

    def hammer(slot: int) -> None:
        start.wait()
        for _ in range(1000):
            if limiter.acquire("hot").allowed:
                allowed[slot] += 1

    threads = [threading.Thread(target=hammer, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 500


def test_threads_with_a_moving_clock_get_burst_plus_refill() -> None:
    limiter = LocalRateLimiter(1000.0, 50)  # the real clock
    allowed = [0] * 4
    began = time.monotonic()

    def hammer(slot: int) -> None:
        for _ in range(3000):
            if limiter.acquire("hot").allowed:
                allowed[slot] += 1

    threads = [threading.Thread(target=hammer, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    assert sum(allowed) <= 50 + 1000.0 * elapsed


# -- the combined model + client limits -------------------------------------------------


def test_rate_limits_defaults_and_validation() -> None:
    assert RateLimits(model_rate=0.5).to_dict() == {
        "model_rate": 0.5,
        "model_burst": 1,
        "client_rate": None,
        "client_burst": None,
    }
    with pytest.raises(ConfigError, match="client_rate is not"):
        RateLimits(client_burst=3)
    with pytest.raises(ConfigError, match="rate"):
        RateLimits(model_rate=-1.0)
    assert RateLimits().build().acquire("m", "c") == Decision(True, math.inf, 0.0)


def test_both_limits_must_allow() -> None:
    clock = FakeClock()
    limiter = RateLimits(model_rate=1.0, model_burst=3, client_rate=1.0, client_burst=2).build(clock=clock)
    assert limiter.acquire("m", "alice") == Decision(True, 1.0, 0.0)  # min(client 1, model 2)
    assert limiter.acquire("m", "alice").allowed
    denied = limiter.acquire("m", "alice")
    assert denied == Decision(False, 0.0, 1.0, "client")
    assert limiter.acquire("m", "bob") == Decision(True, 0.0, 0.0)  # model had one left
    assert limiter.acquire("m", "carol") == Decision(False, 0.0, 1.0, "model")


def test_a_client_denial_does_not_consume_the_model_budget() -> None:
    clock = FakeClock()
    limiter = RateLimits(model_rate=1.0, model_burst=2, client_rate=1.0, client_burst=1).build(clock=clock)
    assert limiter.acquire("m", "noisy").allowed
    for _ in range(100):
        assert limiter.acquire("m", "noisy").limit == "client"
    assert limiter.acquire("m", "quiet").allowed  # the model's second token is still there


def test_a_model_denial_does_not_consume_the_client_budget() -> None:
    clock = FakeClock()
    limits = RateLimits(model_rate=1.0, model_burst=1, client_rate=1.0, client_burst=2)
    limiter = limits.build(clock=clock)
    assert limiter.acquire("m", "alice").allowed  # model now empty, alice has 1
    for _ in range(100):
        assert limiter.acquire("m", "alice").limit == "model"
    clock.advance(1.0)  # model refills one; alice has 1 + 1 = 2
    assert limiter.acquire("m", "alice", cost=1) == Decision(True, 0.0, 0.0)
    assert isinstance(limiter.client, LocalRateLimiter)
    assert limiter.client.acquire("m\x1falice") == Decision(True, 0.0, 0.0)  # alice kept both


def test_client_limits_are_per_model_and_optional() -> None:
    limiter = RateLimits(client_rate=1.0, client_burst=1).build(clock=FakeClock())
    assert limiter.acquire("m1", "alice").allowed
    assert limiter.acquire("m2", "alice").allowed
    assert not limiter.acquire("m1", "alice").allowed
    assert limiter.acquire("m1", None).allowed  # no client key: no client limit
    limiter.close()


def test_model_client_limiter_with_only_a_model_limit() -> None:
    limiter = ModelClientLimiter(LocalRateLimiter(1.0, 1, clock=FakeClock()), None)
    assert limiter.acquire("m", "alice").allowed
    assert limiter.acquire("m", "bob").limit == "model"


# -- Redis: one budget shared by several servers ----------------------------------------


@pytest.mark.services
def test_redis_uses_the_server_clock(redis_url: str, redis_namespace: str) -> None:
    limiter = RedisRateLimiter(redis_url, 0.001, 2, namespace=redis_namespace)  # no injected clock
    try:
        assert limiter.acquire("k").allowed
        assert limiter.acquire("k").allowed
        denied = limiter.acquire("k")
        assert not denied.allowed
        assert 999.0 < denied.retry_after <= 1000.0
    finally:
        limiter.close()


@pytest.mark.services
def test_redis_buckets_expire_once_full(redis_url: str, redis_namespace: str) -> None:
    import redis

    limiter = RedisRateLimiter(redis_url, 1.0, 3, namespace=redis_namespace)
    client = redis.Redis.from_url(redis_url)
    try:
        limiter.acquire("k")
        ttl_ms = client.pttl(limiter.key("k"))
        assert 3000 < ttl_ms <= 4000  # full after 3 s, plus slack
    finally:
        client.close()
        limiter.close()


@pytest.mark.services
def test_two_servers_share_one_budget(redis_url: str, redis_namespace: str) -> None:
    servers = [RedisRateLimiter(redis_url, 0.001, 100, namespace=redis_namespace) for _ in range(2)]
    allowed = [0, 0]
    start = threading.Barrier(4)

    def serve(slot: int) -> None:
        start.wait()
        for _ in range(150):
            if servers[slot % 2].acquire("model").allowed:
                allowed[slot % 2] += 1

    threads = [threading.Thread(target=serve, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in servers:
        server.close()
    assert sum(allowed) == 100


@pytest.mark.services
def test_two_servers_draw_from_the_same_bucket(redis_url: str, redis_namespace: str) -> None:
    clock = FakeClock()
    first, second = (
        RedisRateLimiter(redis_url, 1.0, 3, namespace=redis_namespace, clock=clock) for _ in "ab"
    )
    try:
        assert first.acquire("m") == Decision(True, 2.0, 0.0)
        assert second.acquire("m") == Decision(True, 1.0, 0.0)
        assert first.acquire("m") == Decision(True, 0.0, 0.0)
        assert second.acquire("m") == Decision(False, 0.0, 1.0)
        clock.advance(1.0)
        assert second.acquire("m") == Decision(True, 0.0, 0.0)
        assert not first.acquire("m").allowed
    finally:
        first.close()
        second.close()


def _server_process(url: str, namespace: str, attempts: int, out: Queue[int]) -> None:
    limiter = RedisRateLimiter(url, 0.001, 100, namespace=namespace)
    out.put(sum(limiter.acquire("model").allowed for _ in range(attempts)))
    limiter.close()


@pytest.mark.services
def test_server_processes_share_one_budget(redis_url: str, redis_namespace: str) -> None:
    context = multiprocessing.get_context("spawn")
    out: Queue[int] = context.Queue()
    processes = [
        context.Process(target=_server_process, args=(redis_url, redis_namespace, 100, out)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    counts = [out.get(timeout=20) for _ in processes]
    for process in processes:
        process.join(timeout=20)
    assert sum(counts) == 100


@pytest.mark.services
def test_redis_namespaces_are_isolated(redis_url: str, redis_namespace: str) -> None:
    clock = FakeClock()
    first = RedisRateLimiter(redis_url, 1.0, 1, namespace=redis_namespace, clock=clock)
    second = RedisRateLimiter(redis_url, 1.0, 1, namespace=redis_namespace + "-other", clock=clock)
    try:
        assert first.acquire("k").allowed
        assert not first.acquire("k").allowed
        assert second.acquire("k").allowed
    finally:
        first.close()
        second.close()


@pytest.mark.services
def test_rate_limits_over_redis(redis_url: str, redis_namespace: str) -> None:
    limits = RateLimits(model_rate=0.001, model_burst=2, client_rate=0.001, client_burst=1)
    servers = [limits.build(redis_url, namespace=redis_namespace) for _ in range(2)]
    try:
        assert servers[0].acquire("m", "alice").allowed
        assert servers[1].acquire("m", "alice").limit == "client"
        assert servers[1].acquire("m", "bob").allowed
        assert servers[0].acquire("m", "carol").limit == "model"
        assert "namespace" in repr(servers[0].model)
    finally:
        for server in servers:
            server.close()


def test_unreachable_redis_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot reach"):
        RedisRateLimiter("redis://127.0.0.1:1/0", 1.0, 1)


@pytest.mark.services
def test_redis_errors_become_store_errors(redis_url: str, redis_namespace: str) -> None:
    import redis

    limiter = RedisRateLimiter(redis_url, 1.0, 1, namespace=redis_namespace)
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(limiter.key("k"), "not a bucket")  # the script's HMGET now fails with WRONGTYPE
        with pytest.raises(StoreError, match="failed for 'k'") as caught:
            limiter.acquire("k")
        assert isinstance(caught.value.__cause__, redis.RedisError)
        with pytest.raises(StoreError, match="refund failed"):
            limiter.refund("k")
    finally:
        client.close()
        limiter.close()


def test_doctests() -> None:
    import fourloops.inference.ratelimit as module

    assert doctest.testmod(module).failed == 0
