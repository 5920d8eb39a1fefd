"""Prepared (compacted) views and the in-memory reordering agree with the oracle."""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from fourloops.engines import DuckDBEngine, ViewJoin
from fourloops.errors import SchemaError

from .pit_oracle import pit_join
from .test_pit_oracle import cases, view_data

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_prepared_views_match_oracle(case: tuple[list[dict[str, Any]], str, list[Any]]) -> None:
    entities, zone, views = case
    schema = pa.schema(
        [
            pa.field("id", pa.int64()),
            pa.field("a", pa.int32()),
            pa.field("b", pa.string()),
            pa.field("t", pa.timestamp("us", tz=zone)),
            pa.field("label", pa.int64()),
        ]
    )
    entity_table = pa.Table.from_pylist(entities, schema)
    engine = DuckDBEngine(threads=2)
    with tempfile.TemporaryDirectory() as tmp:
        joins = []
        for view, form in views:
            raw = ViewJoin(
                name=view.name,
                data=view_data(view, form, Path(tmp)),
                join_keys=view.join_keys,
                timestamp=view.timestamp,
                ttl=view.ttl,
                features=view.features,
                created=view.created,
                entity_keys=view.entity_keys if view.entity_keys != view.join_keys else None,
            )
            joins.append(engine.prepare_view(raw, Path(tmp) / "prepared" / f"{view.name}.parquet"))
        table, stats = engine.point_in_time_join(entity_table, timestamp="t", views=joins)
        entity_file = Path(tmp) / "entities.parquet"
        pq.write_table(entity_table, entity_file)
        out = Path(tmp) / "out.parquet"
        _, out_stats = engine.point_in_time_join(str(entity_file), timestamp="t", views=joins, out=str(out))
        written = pq.read_table(out)
    expected, counts = pit_join(entities, "t", [view for view, _ in views])
    assert table is not None
    assert table.to_pylist() == expected
    assert written.to_pylist() == expected
    assert stats.rows == out_stats.rows == len(entities)
    for view, _ in views:
        got = stats.views[view.name]
        assert [got.found, got.missing, got.expired] == counts[view.name]
        assert out_stats.views[view.name] == got


def _times(*hours: float) -> pa.Array:
    return pa.array([T0 + timedelta(hours=h) for h in hours], pa.timestamp("us", tz="UTC"))


def test_prepared_view_is_compacted_and_reusable(tmp_path: Path) -> None:
    # id 1: a tie at 0h (the later row wins) and a 1h row created at 5h, superseded
    # by a 2h row created at 3h before it ever became visible.
    view = pa.table(
        {
            "id": [1, 1, 1, 1, 2],
            "ts": _times(0, 0, 1, 2, 0),
            "made": _times(0, 0, 5, 3, 0),
            "x": [1, 2, 3, 4, 5],
            "y": [10, 20, 30, 40, 50],
        }
    )
    raw = ViewJoin("v", view, ["id"], "ts", timedelta(days=1), {"x": "x", "y": "y"}, "made")
    prepared = DuckDBEngine().prepare_view(raw, tmp_path / "v.parquet")
    assert prepared.prepared and prepared.data == str(tmp_path / "v.parquet")
    stored = pq.read_table(tmp_path / "v.parquet")
    assert stored.column("x").to_pylist() == [2, 4, 5]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    subset = dataclasses.replace(prepared, features={"y": "y_only"}, ttl=timedelta(hours=3))
    entities = pa.table({"id": [1, 1, 1, 2], "t": _times(1, 4, 6, 0.5)})
    table, stats = DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[subset])
    assert table is not None
    assert table.column_names == ["id", "t", "y_only"]
    assert table.column("y_only").to_pylist() == [20, 40, None, 50]
    assert (stats.views["v"].found, stats.views["v"].expired) == (3, 1)


def test_unprepared_data_is_refused_as_prepared() -> None:
    view = pa.table({"id": [1], "ts": _times(0), "x": [1]})
    fake = ViewJoin("v", view, ["id"], "ts", timedelta(days=1), {"x": "x"}, prepared=True)
    entities = pa.table({"id": [1], "t": _times(1)})
    with pytest.raises(SchemaError, match="prepare_view"):
        DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[fake])
    with pytest.raises(SchemaError, match="already prepared"):
        DuckDBEngine().prepare_view(fake, "unused.parquet")


def test_entity_columns_pass_through_and_features_follow_input_order() -> None:
    rng = np.random.default_rng(3)
    n = 50_000
    view = pa.table(
        {
            "id": np.repeat(np.arange(100), 5),
            "ts": _times(*np.tile(np.arange(5), 100).tolist()),
            "x": pa.array(np.where(rng.random(500) < 0.2, None, rng.random(500)).tolist()),
            "s": pa.array([f"s{i}" for i in range(500)]),
        }
    )
    entities = pa.table(
        {
            "id": rng.integers(0, 110, n),
            "t": pa.array(
                [T0 + timedelta(hours=float(h)) for h in rng.integers(-1, 8, n)],
                pa.timestamp("ms", tz="Asia/Kolkata"),
            ),
            "nano": pa.array(rng.integers(0, 10**15, n), pa.timestamp("ns", tz="UTC")),
            "tags": pa.array([["a"]] * n, pa.list_(pa.string())),
        }
    )
    vj = ViewJoin("v", view, ["id"], "ts", timedelta(hours=2), {"x": "x", "s": "s"})
    table, _ = DuckDBEngine(threads=2).point_in_time_join(entities, timestamp="t", views=[vj])
    assert table is not None
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("nano").type == pa.timestamp("us", tz="UTC")
    assert table.column("tags").equals(entities.column("tags"))
    assert table.column("id").equals(entities.column("id"))
    rows = view.to_pylist()
    for i in rng.integers(0, n, 300).tolist():
        key, t = entities.column("id")[i].as_py(), entities.column("t")[i].as_py()
        seen = [r for r in rows if r["id"] == key and r["ts"] <= t]
        best = seen[-1] if seen and seen[-1]["ts"] >= t - timedelta(hours=2) else None
        got = table.slice(i, 1).to_pylist()[0]
        assert (got["x"], got["s"]) == ((best["x"], best["s"]) if best else (None, None))
