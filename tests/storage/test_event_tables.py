"""The event log compacted to typed Parquet: exactly once per request id, typed by the contract, incremental.

Every backend is checked against an oracle built from its own raw ``scan()``
(JSON parsed in Python here, never in the code under test): the compacted
view must hold the first event of every request id with the same values.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fourloops as fl
from fourloops.engines import DuckDBEngine
from fourloops.engines.duckdb_events import register_chunks, register_events
from fourloops.errors import StoreError
from fourloops.storage.events import EventStore, Label, PredictionEvent, open_event_store
from fourloops.storage.events.columnar import EventSchema, EventTables
from fourloops.storage.events.local import LocalEventStore

T0 = datetime(2024, 5, 1, 22, tzinfo=UTC)
FIELDS = {
    "age": fl.Int(),
    "plan": fl.Category(["basic", "gold"]),
    "tenure": fl.Float(nullable=True),
    "vip": fl.Bool(),
    "signup": fl.Timestamp(nullable=True),
    "email": fl.String(sensitive=True),
}
SCHEMAS = {
    "churn": EventSchema.from_contract("churn", FIELDS, views=["usage"]),
    "tier": EventSchema.from_contract("tier", {"age": fl.Int()}, multiclass=True),
}
ENGINE = DuckDBEngine(threads=1)


def _event(
    i: int, *, model: str = "churn", rid: str | None = None, output: Any = None, minutes: int = 0
) -> PredictionEvent:
    features: dict[str, Any] = {"age": 30 + i}
    if model == "churn":
        features.update(
            plan=["basic", "gold"][i % 2],
            tenure=None if i % 3 == 0 else i / 4,
            vip=i % 2 == 0,
            signup=(T0 - timedelta(days=i)).isoformat(),
            email="hmac-sha256:" + "ab" * 16,
        )
    return PredictionEvent(
        request_id=rid or f"{model}-{i}",
        unit_id=None if i % 2 else f"u{i}",
        at=T0 + timedelta(minutes=minutes or 37 * i),
        model=model,
        version=1 + i % 2,
        route="champion" if i % 4 else "canary",
        features=features,
        output=(output if output is not None else ([0.2, 0.8] if model == "tier" else i / 10)),
        propensity=0.9,
        latency_ms=1.5,
        fallback=i % 5 == 4,
        extra={"features_status": {"usage": "ok" if i % 2 else "expired"}}
        | ({"fallback": "constant", "fallback_reason": "timeout", "routed_version": 2} if i % 5 == 4 else {}),
    )


def _compacted(store: EventStore, tables: EventTables, model: str = "churn") -> pl.DataFrame:
    store.compact(tables, SCHEMAS)
    table = ENGINE.query_events(
        tables, f"SELECT * FROM events WHERE model = '{model}' ORDER BY \"at\", request_id"
    )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _oracle(store: EventStore, model: str = "churn") -> dict[str, dict[str, Any]]:
    """The first event per request id, from the raw log (JSON parsed here, in Python)."""
    first: dict[str, dict[str, Any]] = {}
    for e in sorted(store.scan(model=model).to_pylist(), key=lambda e: e["at"]):
        first.setdefault(e["request_id"], e)
    return first


@pytest.fixture
def store(event_store_url: str) -> Any:
    s = open_event_store(event_store_url)
    yield s
    s.close()


def test_compaction_types_every_column_and_matches_the_raw_log(store: EventStore, tmp_path: Path) -> None:
    store.append([_event(i) for i in range(12)] + [_event(i, model="tier") for i in range(3)])
    store.add_labels([Label("churn-1", 1, T0 + timedelta(days=2)), Label("churn-2", "yes", T0)])
    tables = EventTables(tmp_path / "tables")
    frame = _compacted(store, tables)
    schema = dict(frame.schema)
    assert schema["age"] == pl.Int64 and schema["tenure"] == pl.Float64 and schema["vip"] == pl.Boolean
    assert schema["plan"] == pl.String and schema["email"] == pl.String
    assert schema["signup"] == pl.Datetime("us", "UTC") and schema["at"] == pl.Datetime("us", "UTC")
    assert schema["prediction"] == pl.Float64 and schema["status__usage"] == pl.String
    oracle = _oracle(store)
    assert frame.height == len(oracle) == 12
    for row in frame.iter_rows(named=True):
        raw = oracle[row["request_id"]]
        features, extra = json.loads(raw["features"]), json.loads(raw["extra"])
        assert row["age"] == features["age"] and row["tenure"] == features["tenure"]
        assert row["vip"] == features["vip"] and row["plan"] == features["plan"]
        assert row["signup"] == datetime.fromisoformat(features["signup"])
        assert row["prediction"] == pytest.approx(json.loads(raw["output"]))
        assert (row["version"], row["route"], row["fallback"]) == (
            raw["version"],
            raw["route"],
            raw["fallback"],
        )
        assert row["status__usage"] == extra["features_status"]["usage"]
        assert row["fallback_reason"] == extra.get("fallback_reason")
        assert row["routed_version"] == extra.get("routed_version")
        assert row["day"] == raw["at"].date() and row["unparsed"] is None
    labelled = {r["request_id"]: r for r in frame.iter_rows(named=True) if r["label"] is not None}
    assert labelled["churn-1"]["label_number"] == 1.0 and labelled["churn-1"]["label_text"] is None
    assert labelled["churn-2"]["label_text"] == "yes" and labelled["churn-2"]["label_number"] is None
    tier = _compacted(store, tables, "tier")
    assert tier["probabilities"].to_list() == [[0.2, 0.8]] * 3 and tier["prediction"].to_list() == [1.0] * 3
    days = {p.parent.name for p in tables.event_files("churn")}
    assert days == {"day=2024-05-01", "day=2024-05-02"}  # 22:00 on the 1st to 04:47 on the 2nd, by UTC day


def test_the_first_event_per_request_id_wins_across_compactions(store: EventStore, tmp_path: Path) -> None:
    tables = EventTables(tmp_path / "tables")
    store.append([_event(1, rid="dup", output=0.1), _event(2)])
    store.append([_event(1, rid="dup", output=0.9, minutes=500)])  # a retry, later
    first = _compacted(store, tables)
    assert first.filter(pl.col("request_id") == "dup")["prediction"].to_list() == [0.1]
    store.append([_event(1, rid="dup", output=0.7, minutes=900), _event(3)])  # after the first compaction
    second = _compacted(store, tables)
    assert sorted(second["request_id"].to_list()) == ["churn-2", "churn-3", "dup"]
    assert second.filter(pl.col("request_id") == "dup")["prediction"].to_list() == [0.1]
    report = store.compact(tables, SCHEMAS)  # nothing new: nothing written
    assert (report.events_written, report.files) == (0, 0)


def test_a_label_arriving_after_its_event_was_compacted_joins_it(store: EventStore, tmp_path: Path) -> None:
    tables = EventTables(tmp_path / "tables")
    store.append([_event(1)])
    assert _compacted(store, tables)["label"].to_list() == [None]
    store.add_labels([Label("churn-1", 0, T0 + timedelta(days=9))])
    store.add_labels([Label("churn-1", 1, T0 + timedelta(days=10))])  # a duplicate: the first wins
    frame = _compacted(store, tables)
    assert frame["label_number"].to_list() == [0.0]
    assert frame["label_at"].to_list() == [T0 + timedelta(days=9)]


def test_labels_are_filed_under_the_model_and_day_of_their_prediction(
    store: EventStore, tmp_path: Path
) -> None:
    """A model's reads open its own labels and the unplaced ones, never another model's."""
    tables = EventTables(tmp_path / "tables")
    store.append([_event(1), _event(2, model="tier")])
    store.add_labels(
        [Label("churn-1", 1, T0 + timedelta(days=1)), Label("tier-2", 2, T0 + timedelta(days=1))]
    )
    store.add_labels([Label("early", 0, T0)])  # before its prediction: no model known yet
    store.compact(tables, SCHEMAS)

    def held(files: list[Path]) -> set[str]:
        return set(pl.read_parquet(files, hive_partitioning=False)["request_id"]) if files else set()

    assert held(tables.label_files("churn")) == {"churn-1", "early"}
    assert held(tables.label_files("tier")) == {"tier-2", "early"}
    assert held(tables.label_files()) == {"churn-1", "tier-2", "early"}
    day = f"day={T0.date().isoformat()}"
    assert {f.parent.relative_to(tables.root).as_posix() for f in tables.label_files()} == {
        "labels",
        f"labels/model=churn/{day}",
        f"labels/model=tier/{day}",
    }

    store.append([_event(3, rid="early")])  # the prediction the early label was for
    frame = _compacted(store, tables)
    assert dict(zip(frame["request_id"], frame["label_number"], strict=True)) == {
        "churn-1": 1.0,
        "early": 0.0,
    }
    one_model = ENGINE.query_events(
        tables, "SELECT request_id, label_number FROM events ORDER BY request_id", model="churn"
    ).to_pylist()
    assert one_model == [
        {"request_id": "churn-1", "label_number": 1.0},
        {"request_id": "early", "label_number": 0.0},
    ]
    [tier] = ENGINE.query_events(tables, "SELECT label_number FROM events", model="tier").to_pylist()
    assert tier == {"label_number": 2.0}


def _held_by_day(tables: EventTables, model: str | None = None) -> tuple[set[str], dict[str, set[str]]]:
    """The request ids of the label files of every day, and of each prediction day's files."""

    def ids(files: list[Path]) -> set[str]:
        return set(pl.read_parquet(files, hive_partitioning=False)["request_id"]) if files else set()

    every_day, by_day = tables.label_days(model)
    return ids(every_day), {day: ids(files) for day, files in by_day.items()}


DAY1, DAY2 = T0.date().isoformat(), (T0 + timedelta(days=1)).date().isoformat()


def _prediction_hours(tables: EventTables) -> dict[str, int | None]:
    """Each compacted label's ``prediction_hour``."""
    frame = pl.read_parquet(tables.label_files(), hive_partitioning=False, missing_columns="insert")
    return dict(zip(frame["request_id"], frame["prediction_hour"], strict=True))


def test_a_label_is_filed_under_the_day_of_its_prediction_not_its_own(
    store: EventStore, tmp_path: Path
) -> None:
    """Events on two UTC days (T0 is 22:00): each label goes to its prediction's day partition."""
    tables = EventTables(tmp_path / "tables")
    store.append([_event(1), _event(2, minutes=180), _event(3, model="tier", minutes=190)])
    late = T0 + timedelta(days=5)  # labels arrive days later: their own day is not the partition
    store.add_labels([Label(r, 1, late) for r in ("churn-1", "churn-2", "tier-3")])
    store.compact(tables, SCHEMAS)
    assert _held_by_day(tables, "churn") == (set(), {DAY1: {"churn-1"}, DAY2: {"churn-2"}})
    assert _held_by_day(tables, "tier") == (set(), {DAY2: {"tier-3"}})
    assert _held_by_day(tables) == (set(), {DAY1: {"churn-1"}, DAY2: {"churn-2", "tier-3"}})
    for f in tables.label_files():
        assert f.parent.parent.name in {"model=churn", "model=tier"}
    # and with the UTC hour of the prediction (22:37, then 01:00 and 01:10 the next day)
    assert _prediction_hours(tables) == {"churn-1": 22, "churn-2": 1, "tier-3": 1}


def test_a_label_before_its_prediction_is_placed_once_the_prediction_is_compacted(
    store: EventStore, tmp_path: Path
) -> None:
    """Before its prediction is compacted a label waits in the top folder (every day's); compacted
    after it, it is placed in its prediction's day; compacting again moves and repeats nothing."""
    tables = EventTables(tmp_path / "tables")
    store.add_labels([Label("waits", 1, T0), Label("placed", 0, T0)])  # no prediction logged yet
    store.append([_event(1, rid="placed", minutes=180)])  # placed's prediction, before any compaction
    store.compact(tables, SCHEMAS)
    assert _held_by_day(tables, "churn") == ({"waits"}, {DAY2: {"placed"}})

    store.append([_event(2, rid="waits")])  # its label was compacted before it: it stays unplaced
    store.add_labels([Label("churn-3", 1, T0), Label("placed", 1, T0)])  # the second "placed" repeats
    store.append([_event(3)])
    report = store.compact(tables, SCHEMAS)
    assert report.labels_written == 1
    assert _held_by_day(tables, "churn") == ({"waits"}, {DAY1: {"churn-3"}, DAY2: {"placed"}})
    again = store.compact(tables, SCHEMAS)
    assert (again.events_written, again.labels_written, again.files) == (0, 0, 0)
    assert _held_by_day(tables, "churn") == ({"waits"}, {DAY1: {"churn-3"}, DAY2: {"placed"}})
    # placed from this compaction's own events, with its prediction's hour; the unplaced with none
    assert _prediction_hours(tables) == {"waits": None, "placed": 1, "churn-3": 23}
    frame = _compacted(store, tables)
    assert dict(zip(frame["request_id"], frame["label_number"], strict=True)) == {
        "waits": 1.0,
        "churn-3": 1.0,
        "placed": 0.0,
    }


def test_label_files_of_the_older_layouts_join_every_day(tmp_path: Path) -> None:
    """Labels in the top folder (first layout) and in a model folder without days (second) are
    labels of any day: every day's reads include them."""
    from fourloops.storage.events.columnar import _typed_labels, raw_labels_frame

    tables = EventTables(tmp_path / "tables")
    store = open_event_store(f"local://{tmp_path / 'events'}")
    store.append([_event(1), _event(2, minutes=180), _event(3, minutes=200)])
    store.compact(tables, SCHEMAS)
    store.close()
    for folder, rid in (("labels", "churn-1"), ("labels/model=churn", "churn-2")):
        raw = raw_labels_frame(
            pl.DataFrame({"request_id": [rid], "value": ["1"], "at": [T0], "position": [0]})
        )
        (tables.root / folder).mkdir(parents=True, exist_ok=True)
        _typed_labels(raw).write_parquet(tables.root / folder / "part-00000099-legacy00.parquet")
    assert _held_by_day(tables, "churn") == ({"churn-1", "churn-2"}, {})
    assert _held_by_day(tables, "tier") == ({"churn-1"}, {})
    joined = ENGINE.query_events(
        tables, "SELECT request_id, label_number FROM events ORDER BY request_id", model="churn"
    ).to_pylist()
    assert joined == [
        {"request_id": "churn-1", "label_number": 1.0},
        {"request_id": "churn-2", "label_number": 1.0},
        {"request_id": "churn-3", "label_number": None},
    ]


def test_a_label_compacted_with_its_event_is_filed_under_its_model(tmp_path: Path) -> None:
    """A backend that cannot name a label's model leaves it to the events of the same batch."""
    from fourloops.storage.events.columnar import RAW_EVENT_COLUMNS, raw_events_frame, raw_labels_frame

    tables = EventTables(tmp_path / "tables")
    at = pl.Series([T0], dtype=pl.Datetime("us", "UTC"))
    events = pl.DataFrame({c: pl.Series([None], dtype=t) for c, t in RAW_EVENT_COLUMNS.items()}).with_columns(
        request_id=pl.lit("r1"), at=at, model=pl.lit("tier"), version=pl.lit(1, pl.Int64),
        route=pl.lit("champion"), features=pl.lit('{"age": 3}'), output=pl.lit("[0.2, 0.8]"),
        fallback=pl.lit(False), extra=pl.lit("{}"), position=pl.lit(0, pl.Int64),
    )  # fmt: skip
    labels = pl.DataFrame(
        {"request_id": ["r1", "r2"], "value": ["1", "0"], "at": [T0, T0], "position": [0, 1]}
    )
    with tables.locked() as manifest:
        tables.append(raw_events_frame(events), raw_labels_frame(labels), SCHEMAS, manifest)
    assert [f.parent.name for f in tables.label_files("tier")] == ["labels", f"day={T0.date()}"]
    assert tables.label_files("tier")[1].parent.parent.name == "model=tier"
    assert pl.read_parquet(tables.label_files("tier")[1])["request_id"].to_list() == ["r1"]


def test_values_that_no_longer_fit_their_type_are_kept_as_text(store: EventStore, tmp_path: Path) -> None:
    """A contract changed under old events: the value goes to ``unparsed``, nothing is dropped."""
    odd = _event(1)
    odd = PredictionEvent(**{**odd.__dict__, "features": {**odd.features, "age": "forty", "vip": 3}})
    store.append([odd, _event(2)])
    frame = _compacted(store, EventTables(tmp_path / "tables"))
    by_id = {r["request_id"]: r for r in frame.iter_rows(named=True)}
    assert by_id["churn-1"]["age"] is None
    assert json.loads(by_id["churn-1"]["unparsed"]) == {"age": "forty", "vip": "3"}
    assert by_id["churn-2"]["age"] == 32 and by_id["churn-2"]["unparsed"] is None


def test_a_model_without_a_schema_keeps_its_features_as_json(store: EventStore, tmp_path: Path) -> None:
    store.append([_event(1, model="gone")])
    tables = EventTables(tmp_path / "tables")
    store.compact(tables, SCHEMAS)
    [row] = ENGINE.query_events(tables, "SELECT features, prediction_json FROM events").to_pylist()
    assert json.loads(row["features"])["age"] == 31 and json.loads(row["prediction_json"]) == 0.1


def test_empty_tables_query_as_empty_relations(tmp_path: Path) -> None:
    tables = EventTables(tmp_path / "nothing")
    assert ENGINE.query_events(tables, "SELECT count(*) AS n FROM events").to_pylist() == [{"n": 0}]


def test_a_crash_between_writing_files_and_the_manifest_adds_nothing_twice(
    store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = EventTables(tmp_path / "tables")
    store.append([_event(i) for i in range(6)])

    def crash(manifest: Any) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(tables, "save_manifest", crash)
    with pytest.raises(StoreError):
        store.compact(tables, SCHEMAS)
    monkeypatch.undo()
    assert tables.event_files("churn")  # the files landed, the manifest did not move
    report = store.compact(tables, SCHEMAS)
    assert report.events_repeated == 6 and report.events_written == 0
    frame = _compacted(store, tables)
    assert frame.height == 6 and frame["request_id"].n_unique() == 6


def test_a_segment_being_written_is_compacted_up_to_its_last_whole_record(tmp_path: Path) -> None:
    store = open_event_store(tmp_path / "events")
    tables = EventTables(tmp_path / "tables")
    store.append([_event(1)])
    [segment] = sorted((tmp_path / "events").glob("events-*.log"))
    with open(segment, "ab") as f:
        f.write(b'0000abcd {"request_id": "torn')  # a record still being written
    assert store.compact(tables, SCHEMAS).events_written == 1
    with open(segment, "ab") as f:  # the rest of the record lands, damaged
        f.write(b'"}\n')
    restarted = open_event_store(tmp_path / "events")  # a new process: a new segment
    restarted.append([_event(2)])
    report = restarted.compact(tables, SCHEMAS)
    assert report.events_written == 1 and report.corrupt == 1  # the damaged one is counted, not kept
    assert sorted(_compacted(restarted, tables)["request_id"].to_list()) == ["churn-1", "churn-2"]
    store.close()
    restarted.close()


rounds = st.lists(
    st.tuples(
        st.lists(st.integers(0, 15), min_size=0, max_size=8),  # events appended (ids may repeat)
        st.booleans(),  # compact after them?
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds)
def test_any_interleaving_of_appends_and_compactions_gives_the_first_event_of_each_id(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[list[int], bool]]
) -> None:
    root = tmp_path_factory.mktemp("prop")
    store = open_event_store(root / "events")
    tables = EventTables(root / "tables")
    try:
        minute = 0
        for ids, compact in plan:
            group = []
            for i in ids:
                minute += 1
                group.append(_event(i, rid=f"r{i}", output=minute / 1000, minutes=minute))
            store.append(group)
            if compact:
                store.compact(tables, SCHEMAS)
        frame = _compacted(store, tables)
        oracle = _oracle(store)
        assert sorted(frame["request_id"].to_list()) == sorted(oracle)
        for row in frame.iter_rows(named=True):
            assert row["prediction"] == pytest.approx(json.loads(oracle[row["request_id"]]["output"]))
    finally:
        store.close()


def _compact_in_child(events: str, tables: str) -> None:
    store = open_event_store(events)
    store.compact(EventTables(tables), SCHEMAS)
    store.close()


@pytest.mark.slow
def test_two_compactors_at_once_write_each_event_once(tmp_path: Path) -> None:
    store = open_event_store(tmp_path / "events")
    store.append([_event(i) for i in range(200)])
    store.close()
    ctx = mp.get_context("spawn")
    children = [
        ctx.Process(target=_compact_in_child, args=(str(tmp_path / "events"), str(tmp_path / "tables")))
        for _ in range(3)
    ]
    for c in children:
        c.start()
    for c in children:
        c.join(120)
        assert c.exitcode == 0
    table = ENGINE.query_events(EventTables(tmp_path / "tables"), "SELECT request_id FROM events")
    assert table.num_rows == 200 and len(set(table.column("request_id").to_pylist())) == 200


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    since=st.one_of(st.none(), st.integers(-60, 3000)),
    length=st.one_of(st.none(), st.integers(0, 3000)),
)
def test_reading_a_time_range_keeps_every_event_in_it(
    tmp_path: Path, since: int | None, length: int | None
) -> None:
    """The partitions read for ``[since, until)`` hold every event of that range (brute force on the
    full log), whatever the range's edges and their time zone."""
    folder = tmp_path / f"range-{since}-{length}"
    s = open_event_store(str(folder / "log"))
    try:
        for i in range(60):  # every 47 minutes from 22:00 UTC: two days and more, across midnights
            s.append([_event(i, minutes=47 * i + 1)])
        tables = EventTables(folder / "tables")
        s.compact(tables, SCHEMAS)
    finally:
        s.close()
    zone = ZoneInfo("America/New_York")  # the edges need not be UTC
    lo = None if since is None else (T0 + timedelta(minutes=since)).astimezone(zone)
    hi = None if length is None else (lo or T0) + timedelta(minutes=length)
    everything = pl.from_arrow(ENGINE.query_events(tables, 'SELECT request_id, "at" FROM events'))
    assert isinstance(everything, pl.DataFrame)
    wanted = sorted(
        r["request_id"]
        for r in everything.to_dicts()
        if (lo is None or r["at"] >= lo) and (hi is None or r["at"] < hi)
    )
    conditions = [
        f"\"at\" {op} TIMESTAMPTZ '{t.isoformat()}'" for op, t in ((">=", lo), ("<", hi)) if t is not None
    ]
    query = "SELECT request_id FROM events" + (" WHERE " + " AND ".join(conditions) if conditions else "")
    got = ENGINE.query_events(tables, query, since=lo, until=hi).column("request_id").to_pylist()
    assert sorted(got) == wanted
    if lo is not None and hi is not None:  # and fewer partitions than the whole log where it can
        assert len(tables.event_files("churn", since=lo, until=hi)) <= (hi - lo).days + 4


def test_a_label_goes_where_compaction_puts_its_event_when_a_retry_crossed_the_hour(
    store: EventStore, tmp_path: Path
) -> None:
    """A request answered at 22:59:59 and retried at 23:00:01, the retry logged first (another
    process): compaction keeps the earlier event (first event wins by time), so the store cannot
    name the label's hour from the first event it saw. It names none; the local log's compaction
    files the label by the event it kept, PostgreSQL's leaves it to be read with every hour's
    events: either way a scan of the day an hour at a time joins it, once."""
    tables = EventTables(tmp_path / "tables")
    first = replace(_event(1), at=T0 + timedelta(minutes=59, seconds=59))
    retry = replace(first, at=T0 + timedelta(hours=1, seconds=1))
    store.append([retry])
    store.append([first])
    store.add_labels([Label(first.request_id, 1, T0 + timedelta(days=1))])
    store.compact(tables, SCHEMAS)
    expected = 22 if isinstance(store, LocalEventStore) else None
    assert _prediction_hours(tables) == {first.request_id: expected}
    con = ENGINE.connect()
    try:
        register_events(con, tables, model="churn")
        parts = register_chunks(con, tables, model="churn", chunk_events=0)  # every hour its own part
        rows = [r for p in parts for r in con.execute(f'SELECT "at", label FROM {p}').fetchall()]
    finally:
        con.close()
    assert rows == [(first.at, "1")]


def test_a_label_placed_by_a_retry_moves_to_the_event_compaction_keeps(
    store: EventStore, tmp_path: Path
) -> None:
    """The retry (23:00:01) is logged, its label arrives and is placed in hour 23, and only then is the
    original (22:59:59) logged: compaction keeps the original and files the label in its hour."""
    tables = EventTables(tmp_path / "tables")
    first = replace(_event(1), at=T0 + timedelta(minutes=59, seconds=59))
    retry = replace(first, at=T0 + timedelta(hours=1, seconds=1))
    store.append([retry])
    store.add_labels([Label(first.request_id, 1, T0 + timedelta(hours=1, seconds=5))])
    store.append([first])
    store.compact(tables, SCHEMAS)
    con = ENGINE.connect()
    try:
        register_events(con, tables, model="churn")
        parts = register_chunks(con, tables, model="churn", chunk_events=0)
        rows = [r for p in parts for r in con.execute(f'SELECT "at", label FROM {p}').fetchall()]
    finally:
        con.close()
    assert rows == [(first.at, "1")]
    # the local log's compaction finds the kept event; PostgreSQL's export sees both events and names none
    expected = 22 if isinstance(store, LocalEventStore) else None
    assert _prediction_hours(tables) == {first.request_id: expected}
