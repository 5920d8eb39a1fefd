"""The compacted event log's views: ``events`` read in parts (a few days each, or a few hours of a busy
day, every part joined with its days' and hours' labels) holds exactly the rows of ``events`` read whole,
which are a brute-force join in Polars.

The event tables are written by hand here, in every layout a reader meets: labels by prediction day
with their prediction's hour, by prediction day without it (the third layout), by model without a day
(the second), in the top folder (the first layout, and labels of no known prediction); event files of
one day lacking a column others have (a contract that grew).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fourloops.engines import DuckDBEngine
from fourloops.engines.duckdb_events import register_chunks, register_events
from fourloops.storage.events.columnar import LABEL_COLUMNS, EventTables

T0 = datetime(2024, 3, 1, tzinfo=UTC)
ENGINE = DuckDBEngine(threads=1)
#: Where a label is filed: its prediction's day, its model's folder without a day, the top folder.
PLACES = ("day", "model", "top")


def _write(frame: pl.DataFrame, folder: Path, name: str, row_group_size: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / f"part-{name}.parquet", row_group_size=row_group_size)


def _fill(
    root: Path, events: list[dict[str, Any]], labels: list[dict[str, Any]], row_group_size: int | None = None
) -> EventTables:
    """Events (``model``, ``day`` index, ``request_id``, ``x``) in day partitions, one file per model and
    day (a model's odd days also get column ``y``; rows in time order, in row groups of
    ``row_group_size``); labels filed where each one's ``place`` says."""
    tables = EventTables(root)
    frame = pl.DataFrame(events, schema={"model": pl.String, "day": pl.Int64, "request_id": pl.String,
                                         "x": pl.Float64, "minute": pl.Int64})  # fmt: skip
    for n, ((model, day), part) in enumerate(frame.group_by(["model", "day"], maintain_order=True)):
        at = pl.lit(T0) + pl.duration(days=day, minutes=pl.col("minute"))
        part = part.select("request_id", at.dt.cast_time_unit("us").alias("at"), "x").sort("at")
        if day % 2:
            part = part.with_columns((pl.col("x") * 2).alias("y"))
        date = (T0 + timedelta(days=day)).date().isoformat()
        _write(part, root / "events" / f"model={model}" / f"day={date}", f"{n:08d}-e", row_group_size)
    for n, label in enumerate(labels):
        row = pl.DataFrame(
            {"request_id": [label["request_id"]], "label": [str(label["value"])],
             "label_number": [float(label["value"])], "label_text": [None], "label_at": [T0],
             "prediction_hour": [label.get("hour")]},
            schema=LABEL_COLUMNS,
        )  # fmt: skip
        if label.get("hour") is None:  # written before labels carried their prediction's hour
            row = row.drop("prediction_hour")
        folder = root / "labels"
        if label["place"] != "top":
            folder /= f"model={label['model']}"
        if label["place"] == "day":
            folder /= f"day={(T0 + timedelta(days=label['day'])).date().isoformat()}"
        _write(row, folder, f"{n:08d}-l")
    return tables


def _brute_force(events: list[dict[str, Any]], labels: list[dict[str, Any]], model: str | None) -> list[Any]:
    """Every event (of ``model``) with the label of its request id, if any: a plain left join."""
    ev = pl.DataFrame(events).filter(pl.lit(True) if model is None else pl.col("model") == model)
    lab = pl.DataFrame(labels, schema={"request_id": pl.String, "value": pl.Int64, "place": pl.String,
                                       "model": pl.String, "day": pl.Int64, "hour": pl.Int64})  # fmt: skip
    joined = ev.join(lab.select("request_id", "value"), on="request_id", how="left")
    y = pl.when(pl.col("day") % 2 == 1).then(pl.col("x") * 2)
    return (
        joined.select("request_id", "x", y.alias("y"), pl.col("value").cast(pl.Float64).alias("label_number"))
        .sort("request_id")
        .rows()
    )


_COLUMNS = ("request_id", "x", "y", "label_number")


def _rows(con: Any, relation: str) -> list[tuple[Any, ...]]:
    """The rows of ``relation`` as (request_id, x, y, label_number); ``y`` null where no file has it."""
    rows = con.sql(f"SELECT * FROM {relation} ORDER BY request_id").to_arrow_table().to_pylist()
    return [tuple(r.get(c) for c in _COLUMNS) for r in rows]


def _read(tables: EventTables, model: str | None, chunk_events: int) -> tuple[list[Any], list[Any], int]:
    """``events`` read whole, and read part after part; and how many parts."""
    con = ENGINE.connect()
    try:
        register_events(con, tables, model=model)
        whole = _rows(con, "events")
        parts = register_chunks(con, tables, model=model, chunk_events=chunk_events)
        in_parts = [row for part in parts for row in _rows(con, part)]
        return whole, sorted(in_parts), len(parts)
    finally:
        con.close()


@st.composite
def _logs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    n = draw(st.integers(1, 40))
    events = [
        {"model": draw(st.sampled_from("ab")), "day": draw(st.integers(0, 5)), "request_id": f"r{i:03d}",
         "x": float(i), "minute": draw(st.integers(0, 1439))}
        for i in range(n)
    ]  # fmt: skip
    labels = [
        {"request_id": e["request_id"], "value": draw(st.integers(0, 1)),
         "place": draw(st.sampled_from(PLACES)), "model": e["model"], "day": e["day"],
         "hour": e["minute"] // 60 if draw(st.booleans()) else None}
        for e in events
        if draw(st.booleans())
    ]  # fmt: skip
    orphans = draw(st.integers(0, 3))  # labels of no logged prediction: in the top folder
    labels += [
        {"request_id": f"o{i}", "value": 1, "place": "top", "model": None, "day": None, "hour": None}
        for i in range(orphans)
    ]
    return events, labels


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=_logs(), model=st.sampled_from(["a", "b", None]), chunk_events=st.integers(1, 30))
def test_the_parts_hold_exactly_the_rows_of_the_whole_join(
    tmp_path_factory: pytest.TempPathFactory,
    log: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    model: str | None,
    chunk_events: int,
) -> None:
    events, labels = log
    tables = _fill(tmp_path_factory.mktemp("tables"), events, labels)
    whole, in_parts, n_parts = _read(tables, model, chunk_events)
    assert whole == in_parts == _brute_force(events, labels, model)
    days = {e["day"] for e in events if model is None or e["model"] == model}
    assert (n_parts == 0) == (not days) and n_parts <= 24 * len(days)


def test_a_part_reads_only_its_days_files_and_the_labels_of_any_day(tmp_path: Path) -> None:
    """Three days of 4 events in parts of up to 8 events: days 1-2, then day 3."""
    events = [
        {"model": "a", "day": d, "request_id": f"r{d}{i}", "x": 1.0, "minute": i}
        for d in range(3)
        for i in range(4)
    ]
    labels = [
        {"request_id": e["request_id"], "value": 1, "place": "day", "model": "a", "day": e["day"]}
        for e in events
    ]
    labels[0]["place"] = "top"
    tables = _fill(tmp_path, events, labels)
    con = ENGINE.connect()
    try:
        register_events(con, tables, model="a")
        parts = register_chunks(con, tables, model="a", chunk_events=8)
        views = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
        read = [
            sorted({m.rsplit("/", 2)[-2] for m in re.findall(r"'([^']+\.parquet)'", views[part])})
            for part in parts
        ]
        read = [
            sorted(
                {
                    *files,
                    *(
                        m.rsplit("/", 2)[-2]
                        for m in re.findall(r"'([^']+\.parquet)'", views[f"labels_part_{k}"])
                    ),
                }
            )
            for k, files in enumerate(read)
        ]
        assert read == [
            ["day=2024-03-01", "day=2024-03-02", "labels"],  # events and labels of its days, the top folder
            ["day=2024-03-03", "labels"],
        ]
        counts = [con.execute(f"SELECT count(*), count(label) FROM {p}").fetchone() for p in parts]
        assert counts == [(8, 8), (4, 4)]
    finally:
        con.close()


def test_a_busy_day_is_read_a_few_hours_at_a_time_each_with_its_hours_labels(tmp_path: Path) -> None:
    """A day of 240 events, 10 an hour, in parts of up to 100 events: three parts of 8 hours, each of
    80 events joined with the labels of its own hours only (and the labels of no known hour, which
    every part reads: an older file of the day, the top folder)."""
    events = [
        {"model": "a", "day": 0, "request_id": f"r{i:03d}", "x": 1.0, "minute": 6 * i} for i in range(240)
    ]
    labels = [
        {"request_id": e["request_id"], "value": 1, "place": "day", "model": "a", "day": 0,
         "hour": e["minute"] // 60}
        for e in events
    ]  # fmt: skip
    labels[0]["hour"] = None  # a file of the day that predates the hour: read by every part
    labels[1]["place"], labels[1]["hour"] = "top", None  # a label of no known prediction
    tables = _fill(tmp_path, events, labels)
    con = ENGINE.connect()
    try:
        register_events(con, tables, model="a")
        parts = register_chunks(con, tables, model="a", chunk_events=100)
        counts = [con.execute(f"SELECT count(*), count(label) FROM {p}").fetchall()[0] for p in parts]
        assert counts == [(80, 80)] * 3
        for k in range(len(parts)):
            # the labels the part's join builds on: its 8 hours' 80 (the first part's less the two filed
            # without an hour), and the two every part reads
            built = con.execute(f"SELECT count(*) FROM labels_part_{k}").fetchall()
            assert built == [(80 - 2 * (k == 0) + 2,)]
        whole = _rows(con, "events")
        assert sorted(row for part in parts for row in _rows(con, part)) == whole
    finally:
        con.close()


def test_a_busy_day_is_cut_where_its_traffic_is_not_by_the_clock(tmp_path: Path) -> None:
    """A day of 300 events, 240 of them from 08:00 to 12:00, in parts of up to 100 events: the parts
    cut at 10:00 and 12:00 (136, 120 and 44 events, estimated from the row groups' first and last
    times), not at 08:00 and 16:00 (16, 255 and 29); and together they are the whole join."""
    minutes = (
        [60 * h + 30 * i for h in range(8) for i in range(2)]
        + [60 * h + i for h in range(8, 12) for i in range(60)]
        + [720 + 16 * i + 3 for i in range(44)]
    )
    events = [
        {"model": "a", "day": 0, "request_id": f"r{i:03d}", "x": 1.0, "minute": m}
        for i, m in enumerate(minutes)
    ]
    labels = [
        {"request_id": e["request_id"], "value": 1, "place": "day", "model": "a", "day": 0,
         "hour": e["minute"] // 60}
        for e in events
    ]  # fmt: skip
    tables = _fill(tmp_path, events, labels, row_group_size=20)
    con = ENGINE.connect()
    try:
        register_events(con, tables, model="a")
        parts = register_chunks(con, tables, model="a", chunk_events=100)
        counts = [con.execute(f"SELECT count(*), count(label) FROM {p}").fetchall()[0] for p in parts]
        assert counts == [(136, 136), (120, 120), (44, 44)]
        whole = _rows(con, "events")
        assert sorted(row for part in parts for row in _rows(con, part)) == whole
    finally:
        con.close()
