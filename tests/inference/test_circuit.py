from __future__ import annotations

import doctest
import threading

import pytest

from fourloops.inference.circuit import CircuitBreaker, CircuitState


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def opened(clock: FakeClock, **settings: int | float) -> CircuitBreaker:
    """A breaker with the given settings, just opened by consecutive failures."""
    breaker = CircuitBreaker(clock=clock, **settings)  # type: ignore[arg-type]
    for _ in range(breaker.failure_threshold):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    return breaker


def test_starts_closed_and_allows() -> None:
    breaker = CircuitBreaker(clock=FakeClock())
    assert breaker.state is CircuitState.CLOSED
    assert all(breaker.allow() for _ in range(100))
    assert (breaker.opened_total, breaker.rejected_total) == (0, 0)


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=FakeClock())
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failures == 2
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.opened_total == 1


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=FakeClock())
    for _ in range(10):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failures == 0


def test_open_rejects_and_counts() -> None:
    clock = FakeClock()
    breaker = opened(clock, failure_threshold=2, reset_timeout=10.0)
    clock.now += 9.999
    assert [breaker.allow() for _ in range(3)] == [False, False, False]
    assert breaker.rejected_total == 3
    assert breaker.state is CircuitState.OPEN


def test_half_opens_after_reset_timeout_and_admits_limited_probes() -> None:
    clock = FakeClock()
    breaker = opened(clock, failure_threshold=2, reset_timeout=10.0, half_open_max_calls=2)
    clock.now += 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    assert [breaker.allow() for _ in range(4)] == [True, True, False, False]
    assert breaker.rejected_total == 2


def test_probe_success_closes() -> None:
    clock = FakeClock()
    breaker = opened(clock, failure_threshold=1, reset_timeout=5.0)
    clock.now += 5.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert all(breaker.allow() for _ in range(10))
    breaker.record_failure()  # the count started again from zero: threshold 1 opens at once
    assert breaker.state is CircuitState.OPEN
    assert breaker.opened_total == 2


def test_probe_failure_reopens_and_restarts_the_timeout() -> None:
    clock = FakeClock()
    breaker = opened(clock, failure_threshold=2, reset_timeout=5.0)
    clock.now += 5.0
    assert breaker.allow()
    clock.now += 1.0
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.opened_total == 2
    clock.now += 4.999
    assert not breaker.allow()
    clock.now += 0.001
    assert breaker.allow()
    assert breaker.state is CircuitState.HALF_OPEN


def test_new_probes_after_lost_ones() -> None:
    clock = FakeClock()
    breaker = opened(clock, failure_threshold=1, reset_timeout=5.0)
    clock.now += 5.0
    assert breaker.allow()  # this probe never reports back
    clock.now += 4.0
    assert not breaker.allow()
    clock.now += 1.0
    assert not breaker.allow()  # exactly reset_timeout is not yet "more than"
    clock.now += 0.5
    assert breaker.allow()
    assert not breaker.allow()


def test_late_results_while_open_change_nothing() -> None:
    clock = FakeClock()
    breaker = opened(clock, failure_threshold=2, reset_timeout=5.0)
    clock.now += 3.0
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.opened_total == 1
    clock.now += 2.0  # the timeout counts from the opening, not from the late failure
    assert breaker.state is CircuitState.HALF_OPEN


def test_zero_reset_timeout_half_opens_at_once() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=0.0, clock=clock)
    breaker.record_failure()
    assert breaker.opened_total == 1
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()


def test_reset_closes() -> None:
    clock = FakeClock()
    breaker = opened(clock, failure_threshold=1)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allow()
    assert breaker.opened_total == 1


@pytest.mark.parametrize(
    "settings",
    [
        {"failure_threshold": 0},
        {"failure_threshold": 1.5},
        {"failure_threshold": True},
        {"reset_timeout": -1.0},
        {"reset_timeout": float("nan")},
        {"half_open_max_calls": 0},
    ],
)
def test_settings_are_validated(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**settings)  # type: ignore[arg-type]


def test_repr_and_state_values() -> None:
    assert repr(CircuitBreaker()) == (
        "CircuitBreaker(failure_threshold=5, reset_timeout=10.0, half_open_max_calls=1)"
    )
    assert [state.value for state in CircuitState] == ["closed", "open", "half_open"]


def test_concurrent_probes_never_exceed_the_limit() -> None:
    clock = FakeClock()
    breaker = opened(clock, failure_threshold=1, reset_timeout=1.0, half_open_max_calls=3)
    clock.now += 1.0
    admitted = [0] * 8
    start = threading.Barrier(8)

    def call(slot: int) -> None:
        start.wait()
        for _ in range(500):
            if breaker.allow():
                admitted[slot] += 1

    threads = [threading.Thread(target=call, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 3
    assert breaker.rejected_total == 8 * 500 - 3


def test_concurrent_failures_open_exactly_once() -> None:
    breaker = CircuitBreaker(failure_threshold=50, reset_timeout=60.0, clock=FakeClock())
    start = threading.Barrier(8)

    def fail() -> None:
        start.wait()
        for _ in range(100):
            breaker.record_failure()

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.state is CircuitState.OPEN
    assert breaker.opened_total == 1


def test_doctests() -> None:
    import fourloops.inference.circuit as module

    assert doctest.testmod(module).failed == 0
