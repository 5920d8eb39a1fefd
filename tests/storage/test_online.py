"""Conformance suite for the online stores: every test runs on every backend."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, time, timedelta, timezone

import polars as pl
import pyarrow as pa
import pytest

from fourloops.errors import ConfigError, SchemaError, StoreError
from fourloops.storage.online import (
    OnlineStore,
    RedisOnlineStore,
    SQLiteOnlineStore,
    Status,
    WriteStats,
    open_online_store,
)
from fourloops.storage.online.sqlite import sqlite_path

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def frame(keys: list, times: list[datetime], values: list, created: list | None = None):
    data = {"origin": keys, "ts": times, "delay": values}
    if created is not None:
        data["created"] = created
    return pl.DataFrame(data, schema_overrides={"created": pl.Datetime("us", "UTC")})


def write(store: OnlineStore, rows: pl.DataFrame, view: str = "airport", features=("delay",)) -> WriteStats:
    created = "created" if "created" in rows.columns else None
    return store.write(view, rows, keys=["origin"], timestamp="ts", features=features, created=created)


def read_one(store: OnlineStore, key: tuple, *, now: datetime = T0, ttl=HOUR, **kw):
    [value] = store.read(kw.pop("view", "airport"), [key], ttl=ttl, now=now, **kw)
    return value


def test_round_trip(online_store: OnlineStore) -> None:
    stats = write(online_store, frame(["EWR", "JFK"], [T0, T0 - HOUR], [4.5, 1.0]))
    assert stats == WriteStats(written=2, skipped_older=0)
    now = T0 + timedelta(minutes=5)
    ewr, jfk = online_store.read("airport", [("EWR",), ("JFK",)], ttl=2 * HOUR, now=now)
    assert (ewr.key, ewr.status, ewr.values) == (("EWR",), Status.OK, {"delay": 4.5})
    assert ewr.event_time == T0 and ewr.event_time.tzinfo is not None
    assert ewr.age == timedelta(minutes=5)
    assert (jfk.values, jfk.age) == ({"delay": 1.0}, timedelta(minutes=65))


def test_missing_key(online_store: OnlineStore) -> None:
    write(online_store, frame(["EWR"], [T0], [1.0]))
    value = read_one(online_store, ("LGA",))
    assert (value.status, value.values, value.event_time, value.age) == (
        Status.MISSING,
        {},
        None,
        None,
    )
    assert read_one(online_store, ("EWR",), view="other").status is Status.MISSING


def test_read_preserves_order_and_duplicates(online_store: OnlineStore) -> None:
    write(online_store, frame(["a", "b"], [T0, T0], [1.0, 2.0]))
    got = online_store.read("airport", [("b",), ("x",), ("a",), ("b",)], ttl=HOUR, now=T0)
    assert [(v.key, v.values.get("delay")) for v in got] == [
        (("b",), 2.0),
        (("x",), None),
        (("a",), 1.0),
        (("b",), 2.0),
    ]
    assert online_store.read("airport", [], ttl=HOUR, now=T0) == []


def test_ttl_is_honoured(online_store: OnlineStore) -> None:
    write(online_store, frame(["EWR"], [T0], [4.5]))
    at_ttl = read_one(online_store, ("EWR",), now=T0 + HOUR)
    assert (at_ttl.status, at_ttl.values) == (Status.OK, {"delay": 4.5})
    past = read_one(online_store, ("EWR",), now=T0 + HOUR + timedelta(microseconds=1))
    assert (past.status, past.values) == (Status.EXPIRED, {})
    assert past.event_time == T0 and past.age == HOUR + timedelta(microseconds=1)
    # a shorter ttl expires the same row, a longer one keeps it fresh
    assert read_one(online_store, ("EWR",), now=T0 + HOUR, ttl=HOUR / 2).status is Status.EXPIRED
    assert read_one(online_store, ("EWR",), now=T0 + 5 * HOUR, ttl=6 * HOUR).status is Status.OK


def test_a_value_from_after_now_is_never_served(online_store: OnlineStore) -> None:
    write(online_store, frame(["EWR"], [T0], [4.5]))
    early = read_one(online_store, ("EWR",), now=T0 - timedelta(microseconds=1))
    assert (early.status, early.values, early.age) == (Status.MISSING, {}, None)
    assert read_one(online_store, ("EWR",), now=T0).status is Status.OK


def test_older_write_never_overwrites(online_store: OnlineStore) -> None:
    write(online_store, frame(["EWR", "JFK"], [T0, T0], [2.0, 3.0]))
    stats = write(online_store, frame(["EWR", "JFK"], [T0 - HOUR, T0 + HOUR], [-1.0, 30.0]))
    assert stats == WriteStats(written=1, skipped_older=1)
    now = T0 + HOUR
    assert read_one(online_store, ("EWR",), now=now).values == {"delay": 2.0}
    assert read_one(online_store, ("JFK",), now=now).values == {"delay": 30.0}
    # the same event time without a greater created time is not newer either
    assert write(online_store, frame(["EWR"], [T0], [9.0])) == WriteStats(0, 1)
    assert read_one(online_store, ("EWR",), now=now).values == {"delay": 2.0}


def test_created_time_breaks_ties(online_store: OnlineStore) -> None:
    write(online_store, frame(["EWR"], [T0], [1.0]))  # created missing = lowest
    assert write(online_store, frame(["EWR"], [T0], [2.0], created=[T0])).written == 1
    assert write(online_store, frame(["EWR"], [T0], [3.0], created=[T0 - HOUR])).written == 0
    assert write(online_store, frame(["EWR"], [T0], [4.0], created=[None])).written == 0
    assert write(online_store, frame(["EWR"], [T0], [5.0], created=[T0 + HOUR])).written == 1
    assert read_one(online_store, ("EWR",)).values == {"delay": 5.0}


def test_greatest_row_of_one_write_wins(online_store: OnlineStore) -> None:
    rows = frame(
        ["EWR", "EWR", "EWR", "JFK", "JFK"],
        [T0, T0 + HOUR, T0 - HOUR, T0, T0],
        [1.0, 2.0, 3.0, 4.0, 5.0],
        created=[T0, T0, T0, T0 + HOUR, T0],
    )
    assert write(online_store, rows) == WriteStats(written=2, skipped_older=3)
    now = T0 + HOUR
    assert read_one(online_store, ("EWR",), now=now).values == {"delay": 2.0}
    assert read_one(online_store, ("JFK",), now=now).values == {"delay": 4.0}


def test_feature_types_round_trip(online_store: OnlineStore) -> None:
    ny = timezone(timedelta(hours=-5))
    rows = pl.DataFrame(
        {
            "id": [1, 2],
            "ts": [T0, T0],
            "f": [0.1, math.nan],
            "whole": [1.0, None],
            "i": [2**62, -3],
            "b": [True, None],
            "s": ['é"\n\x01 ✈', None],
            "t": [datetime(2024, 1, 1, 7, 30, 0, 123456, tzinfo=ny), None],
            "naive": [datetime(2024, 1, 2, 3, 4), None],
            "d": [date(2024, 2, 29), None],
            "dur": [timedelta(minutes=90, microseconds=5), None],
            "clock": [time(23, 59, 58, 999_999), None],
            "cat": pl.Series(["x", "y"], dtype=pl.Categorical),
            "lst": [[1, 2], []],
        }
    )
    features = [c for c in rows.columns if c not in ("id", "ts")]
    online_store.write("types", rows, keys=["id"], timestamp="ts", features=features)
    first, second = online_store.read("types", [(1,), (2,)], ttl=HOUR, now=T0)
    assert first.values == {
        "f": 0.1,
        "whole": 1.0,
        "i": 2**62,
        "b": True,
        "s": 'é"\n\x01 ✈',
        "t": datetime(2024, 1, 1, 12, 30, 0, 123456, tzinfo=UTC),
        "naive": datetime(2024, 1, 2, 3, 4, tzinfo=UTC),
        "d": date(2024, 2, 29),
        "dur": timedelta(minutes=90, microseconds=5),
        "clock": time(23, 59, 58, 999_999),
        "cat": "x",
        "lst": [1, 2],
    }
    assert type(first.values["whole"]) is float and type(first.values["i"]) is int
    assert first.values["t"].utcoffset() == timedelta(0)
    assert second.values == {f: None for f in features} | {"i": -3, "cat": "y", "lst": []}


def test_key_types(online_store: OnlineStore) -> None:
    odd = ['a"b', "x\\y", "\n", "é✈", "\x1f", "\u2028", ""]
    rows = pl.DataFrame(
        {
            "carrier": ["AA", "AA", "1", *odd],
            "flight": [1, 2, 1, *range(len(odd))],
            "ts": [T0] * (3 + len(odd)),
            "x": range(3 + len(odd)),
        }
    )
    online_store.write("flight", rows, keys=["carrier", "flight"], timestamp="ts", features=["x"])
    asked = [
        ("AA", 2),
        ["AA", 1],
        ("1", 1),
        (1, 1),
        ("AA", "2"),
        *((s, i) for i, s in enumerate(odd)),
    ]
    got = online_store.read("flight", asked, ttl=HOUR, now=T0)
    assert [v.values.get("x") for v in got] == [1, 0, 2, None, None, *range(3, 3 + len(odd))]
    assert got[1].key == ("AA", 1)
    ints = pl.DataFrame({"n": [1, 10**15], "ts": [T0] * 2, "x": [5, 6]})
    online_store.write("ints", ints, keys=["n"], timestamp="ts", features=["x"])
    got = online_store.read("ints", [(10**15,), ("1",), (1,)], ttl=HOUR, now=T0)
    assert [v.status for v in got] == [Status.OK, Status.MISSING, Status.OK]


def test_feature_selection(online_store: OnlineStore) -> None:
    rows = pl.DataFrame({"origin": ["EWR"], "ts": [T0], "a": [1], "b": ["x"]})
    online_store.write("v", rows, keys=["origin"], timestamp="ts", features=["a", "b"])
    assert read_one(online_store, ("EWR",), view="v").values == {"a": 1, "b": "x"}
    picked = read_one(online_store, ("EWR",), view="v", features=["b", "never"])
    assert picked.values == {"b": "x", "never": None}


def test_a_newer_row_replaces_all_features(online_store: OnlineStore) -> None:
    rows = pl.DataFrame({"origin": ["EWR"], "ts": [T0], "a": [1], "b": [2]})
    online_store.write("v", rows, keys=["origin"], timestamp="ts", features=["a", "b"])
    newer = rows.with_columns(ts=pl.lit(T0 + HOUR), a=pl.lit(10))
    online_store.write("v", newer, keys=["origin"], timestamp="ts", features=["a"])
    assert read_one(online_store, ("EWR",), view="v", now=T0 + HOUR).values == {"a": 10}


def test_key_only_write(online_store: OnlineStore) -> None:
    assert write(online_store, frame(["EWR"], [T0], [1.0]).drop("delay"), features=[]).written
    assert read_one(online_store, ("EWR",)).values == {}


def test_arrow_input(online_store: OnlineStore) -> None:
    table = pa.table({"origin": ["EWR"], "ts": pa.array([T0], pa.timestamp("us", "UTC")), "delay": [7.5]})
    stats = online_store.write("airport", table, keys=["origin"], timestamp="ts", features=["delay"])
    assert stats.written == 1
    assert read_one(online_store, ("EWR",)).values == {"delay": 7.5}


def test_empty_write(online_store: OnlineStore) -> None:
    empty = frame([], [], []).cast({"origin": pl.String, "ts": pl.Datetime("us", "UTC")})
    assert write(online_store, empty) == WriteStats(0, 0)


def test_watermark(online_store: OnlineStore) -> None:
    assert online_store.watermark("airport") is None
    online_store.set_watermark("airport", T0)
    online_store.set_watermark("other", T0 + HOUR)
    assert online_store.watermark("airport") == T0
    online_store.set_watermark("airport", T0 - HOUR)  # a reset (e.g. backfill) is allowed
    assert online_store.watermark("airport") == T0 - HOUR
    assert online_store.watermark("other") == T0 + HOUR
    with pytest.raises(SchemaError, match="timezone-aware"):
        online_store.set_watermark("airport", datetime(2024, 1, 1))


def test_delete_view(online_store: OnlineStore) -> None:
    for view in ("air", "air:x", "air*"):
        write(online_store, frame(["EWR"], [T0], [1.0]), view=view)
        online_store.set_watermark(view, T0)
    online_store.delete_view("air")
    assert read_one(online_store, ("EWR",), view="air").status is Status.MISSING
    assert online_store.watermark("air") is None
    for view in ("air:x", "air*"):
        assert read_one(online_store, ("EWR",), view=view).status is Status.OK
        assert online_store.watermark(view) == T0
    online_store.delete_view("air*")
    assert read_one(online_store, ("EWR",), view="air:x").status is Status.OK


def test_namespaces_are_isolated(online_store: OnlineStore) -> None:
    write(online_store, frame(["EWR"], [T0], [1.0]))
    other = open_online_store(online_store.url, namespace=online_store.namespace + "-other")
    try:
        assert read_one(other, ("EWR",)).status is Status.MISSING
        write(other, frame(["EWR"], [T0 + HOUR], [2.0]))
        other.delete_view("airport")
    finally:
        other.close()
    assert read_one(online_store, ("EWR",)).values == {"delay": 1.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("delay"), r"lack column\(s\) \['delay'\]"),
        (lambda f: f.with_columns(pl.col("ts").dt.replace_time_zone(None)), "timezone-aware"),
        (lambda f: f.with_columns(ts=pl.lit("2024-01-01")), "must be a timestamp"),
        (lambda f: f.with_columns(origin=pl.lit(None, pl.String)), "has nulls"),
        (lambda f: f.with_columns(origin=pl.lit(1.5)), "must be str or int"),
    ],
)
def test_bad_rows_raise_schema_error(online_store: OnlineStore, change, message) -> None:
    with pytest.raises(SchemaError, match=message):
        write(online_store, change(frame(["EWR"], [T0], [1.0])))


def test_naive_now_is_refused(online_store: OnlineStore) -> None:
    with pytest.raises(SchemaError, match="now must be timezone-aware"):
        online_store.read("airport", [("EWR",)], ttl=HOUR, now=datetime(2024, 1, 1))
    with pytest.raises(SchemaError, match="sequence of values"):
        online_store.read("airport", ["EWR"], ttl=HOUR, now=T0)


def test_many_keys_in_chunks(online_store: OnlineStore) -> None:
    n = 12_345
    rows = pl.DataFrame({"k": range(n), "ts": [T0] * n, "x": range(n)})
    assert online_store.write("big", rows, keys=["k"], timestamp="ts", features=["x"]).written == n
    asked = range(0, n + 100, 7)
    got = online_store.read("big", [(i,) for i in asked], ttl=HOUR, now=T0)
    assert [v.values.get("x") for v in got] == [i if i < n else None for i in asked]


def _interleave(store: OnlineStore, newest: bool, rounds: int, n: int) -> None:
    """Write ``rounds`` batches: the old writer older windows, the new writer newer ones."""
    handle = open_online_store(store.url, namespace=store.namespace)
    try:
        for r in range(rounds):
            at = T0 + timedelta(minutes=r) if newest else T0 - timedelta(days=1, minutes=r)
            rows = frame([f"k{i}" for i in range(n)], [at] * n, [float(r)] * n)
            write(handle, rows, view="race")
    finally:
        handle.close()


def test_concurrent_writers_keep_the_newest(online_store: OnlineStore) -> None:
    rounds, n = 12, 300
    threads = [
        threading.Thread(target=_interleave, args=(online_store, newest, rounds, n))
        for newest in (False, True, False, True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = online_store.read("race", [(f"k{i}",) for i in range(n)], ttl=HOUR, now=T0 + HOUR)
    newest = T0 + timedelta(minutes=rounds - 1)
    assert {(v.status, v.event_time, v.values["delay"]) for v in got} == {
        (Status.OK, newest, float(rounds - 1))
    }


_PROCESS_WRITER = """
import sys
from datetime import datetime, timedelta, timezone
import polars as pl
from fourloops.storage.online import open_online_store

url, namespace, sign, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0 = datetime(2024, 3, 1, 12, tzinfo=timezone.utc)
store = open_online_store(url, namespace=namespace)
for r in range(rounds):
    at = t0 + sign * timedelta(minutes=r + 1)
    rows = pl.DataFrame({"origin": [f"k{i}" for i in range(500)], "ts": [at] * 500,
                         "delay": [float(sign * r)] * 500})
    store.write("race", rows, keys=["origin"], timestamp="ts", features=["delay"])
store.close()
"""


@pytest.mark.slow
def test_concurrent_processes_keep_the_newest(online_store: OnlineStore) -> None:
    # the old writers run longest, so they would win a last-writer-wins race
    args = [sys.executable, "-c", _PROCESS_WRITER, online_store.url, online_store.namespace]
    procs = [
        subprocess.Popen([*args, sign, rounds])
        for sign, rounds in [("1", "10"), ("-1", "30"), ("1", "10"), ("-1", "30")]
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    got = online_store.read("race", [(f"k{i}",) for i in range(500)], ttl=HOUR, now=T0 + HOUR)
    assert {(v.event_time, v.values["delay"]) for v in got} == {(T0 + timedelta(minutes=10), 9.0)}


# -- opening -----------------------------------------------------------------


def test_open_by_url(tmp_path) -> None:
    store = open_online_store("sqlite://:memory:")
    assert isinstance(store, SQLiteOnlineStore) and isinstance(store, OnlineStore)
    store.close()
    nested = tmp_path / "a" / "b" / "online.db"
    store = open_online_store(f"sqlite:///{nested}", namespace="p")
    assert nested.exists() and "namespace='p'" in repr(store)
    store.close()


def test_sqlite_paths() -> None:
    assert sqlite_path("sqlite:///rel/online.db") == "rel/online.db"
    assert sqlite_path("sqlite:////abs/online.db") == "/abs/online.db"
    assert sqlite_path("sqlite:///:memory:") == ":memory:"
    with pytest.raises(ConfigError, match="sqlite:///path"):
        sqlite_path("sqlite://host/x.db")


@pytest.mark.parametrize("url", ["postgres://x/y", "online.db", "memcached://h:1"])
def test_unknown_scheme_names_the_url(url: str) -> None:
    with pytest.raises(ConfigError, match=url):
        open_online_store(url)


def test_unreachable_redis_raises_store_error() -> None:
    with pytest.raises(StoreError, match="127.0.0.1:1") as info:
        RedisOnlineStore("redis://127.0.0.1:1/0")
    assert info.value.__cause__ is not None


def test_unwritable_sqlite_raises_store_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteOnlineStore(f"sqlite:///{blocker}/online.db")
