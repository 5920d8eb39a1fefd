"""What servers counted per period, summed per window on every metadata backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops.storage.metadata import MetadataStore
from fourloops.storage.serving_periods import ServingPeriod, ServingPeriods

T0 = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def periods(metadata_url: str) -> Iterator[ServingPeriods]:
    store = MetadataStore(metadata_url)
    yield ServingPeriods(store)
    store.close()


def _period(
    end_minutes: int, *, model: str = "m", process: str = "h:1", served: int = 10, **kw: object
) -> ServingPeriod:
    end = T0 + timedelta(minutes=end_minutes)
    return ServingPeriod(
        model, process, end - timedelta(seconds=5), end, served,
        kw.get("rejections", {}), float(kw.get("cpu", 0.01)),  # type: ignore[arg-type]
    )  # fmt: skip


def test_periods_are_summed_by_the_window_their_end_falls_in(periods: ServingPeriods) -> None:
    periods.record(
        [
            _period(10, rejections={"age": {"min": 2, "type": 1}}, cpu=0.5),
            _period(20, process="h:2", rejections={"age": {"min": 1}, "plan": {"allowed": 4}}, cpu=0.25),
            _period(24 * 60, rejections={"age": {"min": 9}}),  # the next day: the next window
            _period(30, model="other", rejections={"age": {"min": 100}}),
        ]
    )
    day = timedelta(days=1)
    first, second, empty = periods.windows("m", [(T0, T0 + day), (T0 + day, T0 + 2 * day), (T0 - day, T0)])
    assert (first.periods, first.predictions, first.rejected) == (2, 20, 8)
    assert first.rejections == {"age": {"min": 3, "type": 1}, "plan": {"allowed": 4}}
    assert first.by_rule() == {"min": 3, "type": 1, "allowed": 4}
    assert first.rejection_rate == pytest.approx(8 / 28)
    assert first.cpu_ms_per_1000 == pytest.approx(0.75 * 1e6 / 20)
    assert (second.periods, second.rejected) == (1, 9)
    assert (empty.periods, empty.rejection_rate, empty.cpu_ms_per_1000) == (0, None, None)


def test_a_request_breaking_two_rules_is_one_rejected_request(periods: ServingPeriods) -> None:
    two = ServingPeriod(
        "m",
        "h:1",
        T0,
        T0 + timedelta(seconds=5),
        0,
        {"age": {"min": 1}, "plan": {"allowed": 1}},
        0.0,
        rejected=1,
    )
    periods.record([two])
    total = periods.totals("m", since=T0, until=T0 + timedelta(hours=1))
    assert total.rejected == 1 and total.rejection_rate == 1.0 and total.cpu_ms_per_1000 is None


@settings(max_examples=30, deadline=None)
@given(
    ends=st.lists(st.integers(0, 3 * 24 * 60 - 1), min_size=0, max_size=30),
    cut=st.integers(1, 3 * 24 * 60 - 1),
)
def test_summing_two_windows_equals_summing_their_union(ends: list[int], cut: int) -> None:
    store = MetadataStore("sqlite://")
    periods = ServingPeriods(store)
    periods.record([_period(e, served=e % 7, rejections={"x": {"min": e % 3}}, cpu=e / 1000) for e in ends])
    split = T0 + timedelta(minutes=cut)
    end = T0 + timedelta(days=3)
    a, b = periods.windows("m", [(T0, split), (split, end)])
    whole = periods.totals("m", since=T0, until=end)
    assert a.predictions + b.predictions == whole.predictions == sum(e % 7 for e in ends)
    assert a.rejected + b.rejected == whole.rejected == sum(e % 3 for e in ends)
    assert a.cpu_seconds + b.cpu_seconds == pytest.approx(whole.cpu_seconds)
    store.close()


def test_old_periods_roll_up_to_one_row_per_model_and_hour(periods: ServingPeriods) -> None:
    # Two processes, two models, a minute row each for 3 hours; the first two hours are old.
    rows = [
        _period(m, model=model, process=p, served=m % 5 + 1, rejections={"age": {"min": m % 2}}, cpu=m / 1e4)
        for m in range(1, 3 * 60 + 1)
        for model in ("m", "n")
        for p in ("h:1", "h:2")
    ]
    periods.record(rows)
    hours = [(T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1)) for h in range(4)]
    before = {model: periods.windows(model, hours) for model in ("m", "n")}
    rolled = periods.roll_up(before=T0 + timedelta(hours=2))
    # Rows ending in [0h, 2h): 119 minutes (the 2:00 row ends in the third hour), per model and process.
    assert rolled.rows_read == 119 * 4 and rolled.rows_written == 4
    for model in ("m", "n"):
        after = periods.windows(model, hours)
        for a, b in zip(before[model], after, strict=True):
            assert (a.predictions, a.rejected, a.rejections) == (b.predictions, b.rejected, b.rejections)
            assert a.cpu_seconds == pytest.approx(b.cpu_seconds)
        assert [w.periods for w in after] == [1, 1, 120, 2]  # two processes; 3:00 ends the last
    # Idempotent: a second roll-up finds nothing left to merge.
    again = periods.roll_up(before=T0 + timedelta(hours=2))
    assert again.rows_read == again.rows_written == 0
    # A row that arrives late for an hour already rolled up joins its hour's row; the next hours
    # roll up in their turn (a lone row too: each server row is read once).
    periods.record([_period(90, served=7, rejections={"plan": {"allowed": 2}})])
    later = periods.roll_up(before=T0 + timedelta(hours=4))
    assert later.rows_read == 1 + (60 + 1) * 4 and later.rows_written == 1 + 2 * 2  # (m, 1h); 2h, 3h of each
    final = periods.windows("m", hours)
    assert [w.periods for w in final] == [1, 1, 1, 1]
    assert final[1].predictions == before["m"][1].predictions + 7
    assert final[1].rejections == {**before["m"][1].rejections, "plan": {"allowed": 2}}
    for a, b in zip(before["m"][2:], final[2:], strict=True):
        assert (a.predictions, a.rejected, a.rejections) == (b.predictions, b.rejected, b.rejections)


@settings(max_examples=25, deadline=None)
@given(
    ends=st.lists(st.integers(0, 2 * 24 * 60 - 1), min_size=0, max_size=40),
    cut=st.integers(0, 2 * 24 * 60),
    hours=st.integers(1, 24),
)
def test_a_roll_up_keeps_every_hour_aligned_window_total(ends: list[int], cut: int, hours: int) -> None:
    store = MetadataStore("sqlite://")
    periods = ServingPeriods(store)
    periods.record(
        [_period(e, process=f"h:{e % 3}", served=e % 7, rejections={"x": {"min": e % 3}}) for e in ends]
    )
    edges = [T0 + timedelta(hours=h) for h in range(0, 2 * 24 + 1, hours)]
    bounds = list(zip(edges, edges[1:], strict=False))
    before = periods.windows("m", bounds)
    periods.roll_up(before=T0 + timedelta(minutes=cut))
    after = periods.windows("m", bounds)
    assert [(w.predictions, w.rejected, w.rejections) for w in before] == [
        (w.predictions, w.rejected, w.rejections) for w in after
    ]
    store.close()
