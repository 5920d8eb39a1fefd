"""The server's tally of answers, contract rejections and CPU time between two takes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from fourloops.clock import ManualClock
from fourloops.inference.tally import ServingTally

T0 = datetime(2024, 6, 1, tzinfo=UTC)


class _Cpu:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def test_each_take_covers_the_time_since_the_last_and_shares_cpu_by_answers() -> None:
    clock, cpu = ManualClock(T0), _Cpu()
    tally = ServingTally(clock=clock, cpu=cpu, process="test:1")
    tally.served("a", 30)
    tally.served("b", 10)
    tally.rejected("b", {"instances[0].age": "min", "instances[3].age": "min", "instances[3]": "type"})
    clock.advance(timedelta(seconds=5))
    cpu.seconds = 2.0
    a, b = tally.take()
    assert (a.model, a.start, a.end, a.predictions, a.cpu_seconds) == (
        "a",
        T0,
        T0 + timedelta(seconds=5),
        30,
        1.5,
    )
    assert (b.model, b.predictions, b.requests_rejected, b.cpu_seconds) == ("b", 10, 1, 0.5)
    assert b.rejections == {"age": {"min": 2}, "(instance)": {"type": 1}}
    assert {a.process, b.process} == {"test:1"}

    clock.advance(timedelta(seconds=5))
    cpu.seconds = 3.0  # spent while nothing was answered: no prediction's cost
    assert tally.take() == []
    tally.rejected("a", {"plan": "allowed"})
    clock.advance(timedelta(seconds=5))
    cpu.seconds = 4.0
    [only] = tally.take()
    assert (only.start, only.predictions, only.requests_rejected, only.cpu_seconds) == (
        T0 + timedelta(seconds=10), 0, 1, 0.0
    )  # fmt: skip


def test_counts_from_many_threads_are_all_kept() -> None:
    tally = ServingTally(clock=ManualClock(T0))
    served: list[int] = []
    rejected: list[int] = []

    def work() -> None:
        for _ in range(2000):
            tally.served("m")
            tally.rejected("m", {"x": "min"})

    def take() -> None:
        for period in tally.take():
            served.append(period.predictions)
            rejected.append(period.requests_rejected)
            assert period.rejections.get("x", {}).get("min", 0) == period.requests_rejected

    def keep_taking() -> None:
        for _ in range(50):
            take()

    threads = [threading.Thread(target=work) for _ in range(4)] + [threading.Thread(target=keep_taking)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    take()
    assert sum(served) == sum(rejected) == 8000


@pytest.mark.parametrize("name", ["age", "instances[12].age"])
def test_a_violation_is_counted_by_its_field_whichever_instance_broke_it(name: str) -> None:
    tally = ServingTally(clock=ManualClock(T0))
    tally.rejected("m", {name: "max"})
    [period] = tally.take()
    assert period.rejections == {"age": {"max": 1}} and period.requests_rejected == 1


class _Periods:
    def __init__(self) -> None:
        self.stored: list[int] = []

    def record(self, rows: list[object]) -> None:
        self.stored.append(len(rows))


def test_the_refresher_stores_the_counts_once_a_minute_not_every_round() -> None:
    from fourloops.inference.metrics import ServerMetrics
    from fourloops.inference.refresher import STORE_EVERY_S, Refresher

    now = [0.0]
    periods = _Periods()
    tally = ServingTally(clock=ManualClock(T0))
    refresher = Refresher(
        {}, ServerMetrics({}, lambda _: 0), interval=5.0, tally=tally, periods=periods,  # type: ignore[arg-type]
        monotonic=lambda: now[0],
    )  # fmt: skip
    stores = 0
    for _ in range(36):  # three minutes of 5-second rounds
        now[0] += 5.0
        tally.served("m")
        if refresher.store_due():
            refresher.store_counts()
            stores += 1
    assert stores == int(36 * 5.0 // STORE_EVERY_S) == 3
    assert periods.stored == [1, 1, 1]
    tally.served("m")
    assert refresher.store_counts() == 1  # the shut-down stores what is left, due or not
