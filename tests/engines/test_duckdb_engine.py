"""Unit tests of the DuckDB engine: errors, output, statistics, order, types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fourloops.engines as engines
from fourloops.engines import DuckDBEngine, Engine, JoinStats, ViewJoin
from fourloops.engines.duckdb_pit import Packing
from fourloops.errors import SchemaError, SourceError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
UTC_US = pa.timestamp("us", tz="UTC")


def times(*hours: float, unit: str = "us", tz: str | None = "UTC") -> pa.Array:
    return pa.array([T0 + timedelta(hours=h) for h in hours], pa.timestamp(unit, tz=tz))


@pytest.fixture
def view_table() -> pa.Table:
    return pa.table({"id": [1, 1, 2], "ts": times(0, 2, 0), "x": [10, 20, 30]})


def view_join(data: object, **kw: object) -> ViewJoin:
    args: dict[str, object] = {
        "name": "v",
        "data": data,
        "join_keys": ["id"],
        "timestamp": "ts",
        "ttl": timedelta(hours=3),
        "features": {"x": "v_x"},
    }
    args.update(kw)
    return ViewJoin(**args)  # type: ignore[arg-type]


def test_exports() -> None:
    assert engines.__all__ == ["DuckDBEngine", "Engine", "JoinStats", "ViewJoin", "ViewStats"]
    assert isinstance(DuckDBEngine(), Engine)
    assert "memory_limit='1GB'" in repr(DuckDBEngine(memory_limit="1GB"))


def test_found_missing_expired_counts(view_table: pa.Table) -> None:
    # at 1h: row at 0h; at 5h: row at 2h is exactly ttl old (valid); at 5h01: expired;
    # id 2 at -1h: before any data (missing); id 3: unknown (missing).
    entities = pa.table({"id": [1, 1, 1, 2, 3], "t": times(1, 5, 5 + 1 / 60, -1, 1)})
    table, stats = DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(view_table)])
    assert table is not None
    assert table.column("v_x").to_pylist() == [10, 20, None, None, None]
    got = stats.views["v"]
    assert (got.found, got.missing, got.expired) == (2, 2, 1)
    assert got.coverage == pytest.approx(0.4)
    assert stats.rows == 5 and stats.engine == "duckdb" and stats.seconds > 0


@pytest.mark.parametrize("where", ["entities", "view", "created"])
def test_naive_timestamps_are_refused(where: str, view_table: pa.Table) -> None:
    entities = pa.table({"id": [1], "t": times(1, tz=None if where == "entities" else "UTC")})
    if where == "view":
        view_table = view_table.set_column(1, "ts", times(0, 2, 0, unit="ns", tz=None))
    kw = {}
    if where == "created":
        view_table = view_table.append_column("made", times(0, 2, 0, unit="ms", tz=None))
        kw["created"] = "made"
    column = {"entities": "t", "view": "ts", "created": "made"}[where]
    with pytest.raises(SchemaError, match=f"'{column}'.*naive"):
        DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(view_table, **kw)])


def test_non_timestamp_time_column_is_refused(view_table: pa.Table) -> None:
    entities = pa.table({"id": [1], "t": ["2024-01-01"]})
    with pytest.raises(SchemaError, match="'t'.*timestamp with time zone"):
        DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(view_table)])


def test_missing_key_columns_are_named(view_table: pa.Table) -> None:
    entities = pa.table({"user": [1], "t": times(1)})
    with pytest.raises(SchemaError, match="'id'") as missing:
        DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(view_table)])
    assert "__fl_" not in str(missing.value) and "'user'" in str(missing.value)  # only the user's columns
    entities = pa.table({"id": [1], "t": times(1)})
    with pytest.raises(SchemaError, match="'nope'"):
        DuckDBEngine().point_in_time_join(
            entities, timestamp="t", views=[view_join(view_table, join_keys=["nope"])]
        )
    with pytest.raises(SchemaError, match="'when'"):
        DuckDBEngine().point_in_time_join(entities, timestamp="when", views=[])


def test_bad_definitions_are_refused(view_table: pa.Table) -> None:
    entities = pa.table({"id": [1], "t": times(1), "v_x": [0]})
    with pytest.raises(SchemaError, match="'v_x' clashes"):
        DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(view_table)])
    with pytest.raises(SchemaError, match="ttl"):
        view_join(view_table, ttl=timedelta(hours=-1))
    with pytest.raises(SchemaError, match="entity_keys"):
        view_join(view_table, entity_keys=["a", "b"])
    entities = pa.table({"id": ["1"], "t": times(1)})
    with pytest.raises(SchemaError, match="key 'id'"):
        DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(view_table)])


def test_unreadable_sources(tmp_path: Path, view_table: pa.Table) -> None:
    entities = pa.table({"id": [1], "t": times(1)})
    with pytest.raises(SourceError, match="no Parquet file matches"):
        DuckDBEngine().point_in_time_join(
            entities, timestamp="t", views=[view_join(str(tmp_path / "none-*.parquet"))]
        )
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match="view 'v'"):
        DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(str(broken))])
    with pytest.raises(SourceError, match="expected an Arrow table"):
        DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(42)])


def test_empty_entities(view_table: pa.Table) -> None:
    entities = pa.table({"id": pa.array([], pa.int64()), "t": pa.array([], UTC_US)})
    table, stats = DuckDBEngine().point_in_time_join(entities, timestamp="t", views=[view_join(view_table)])
    assert table is not None and table.num_rows == 0
    assert table.column_names == ["id", "t", "v_x"]
    assert stats.rows == 0 and stats.views["v"].coverage == 1.0


def test_input_order_and_duplicates_are_kept(view_table: pa.Table) -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    entities = pa.table(
        {
            "row": np.arange(n),
            "id": rng.integers(0, 3, n),
            "t": pa.array(
                (np.datetime64("2024-01-01T00:00") + rng.integers(-60, 300, n).astype("m8[m]"))
                .astype("M8[us]")
                .astype(np.int64),
                UTC_US,
            ),
        }
    )
    table, stats = DuckDBEngine(threads=2).point_in_time_join(
        entities, timestamp="t", views=[view_join(view_table)]
    )
    assert table is not None
    assert table.column("row").to_pylist() == list(range(n))
    assert table.select(["row", "id", "t"]).equals(entities)
    assert stats.rows == n


def test_types_are_preserved_and_times_are_utc_us() -> None:
    view = pa.table(
        {
            "id": pa.array([1], pa.int32()),
            "ts": times(0, unit="ns", tz="Europe/Paris"),
            "f32": pa.array([1.5], pa.float32()),
            "flag": [True],
            "name": ["a"],
            "seen": times(-5, unit="ns", tz="Asia/Tokyo"),
        }
    )
    entities = pa.table(
        {"id": pa.array([1, 2], pa.int64()), "t": times(1, 1, unit="s", tz="America/New_York")}
    )
    features = {"f32": "f32", "flag": "flag", "name": "name", "seen": "seen"}
    table, _ = DuckDBEngine().point_in_time_join(
        entities, timestamp="t", views=[view_join(view, features=features)]
    )
    assert table is not None
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("t", UTC_US),
            ("f32", pa.float32()),
            ("flag", pa.bool_()),
            ("name", pa.string()),
            ("seen", UTC_US),
        ]
    )
    assert table.column("seen").to_pylist() == [T0 - timedelta(hours=5), None]


def test_out_writes_parquet(tmp_path: Path, view_table: pa.Table) -> None:
    entity_file = tmp_path / "entities.parquet"
    entities = pa.table({"id": [2, 1, 1, 3, 1], "t": times(1, 5, 1, 0, 9)})
    pq.write_table(entities, entity_file)
    views = [
        view_join(view_table),
        view_join(view_table, name="w", ttl=timedelta(0), features={"x": "w_x"}),
    ]
    engine = DuckDBEngine(memory_limit="512MB", threads=1, temp_directory=str(tmp_path / "spill"))
    expected, expected_stats = engine.point_in_time_join(entities, timestamp="t", views=views)
    out = tmp_path / "nested" / "train.parquet"
    table, stats = engine.point_in_time_join(str(entity_file), timestamp="t", views=views, out=str(out))
    assert table is None
    written = pq.read_table(out)
    assert expected is not None
    assert written.to_pylist() == expected.to_pylist()
    assert [f.type for f in written.schema] == [f.type for f in expected.schema]
    assert stats.views == expected_stats.views and stats.rows == 5
    assert expected is not None
    assert expected.column("w_x").to_pylist() == [None, None, None, None, None]


def test_parquet_sources_follow_file_then_row_order(tmp_path: Path) -> None:
    # Same key and time in three files: the last row of the last file wins.
    for i in range(3):
        pq.write_table(
            pa.table({"id": [1, 1], "ts": times(0, 0), "x": [2 * i, 2 * i + 1]}),
            tmp_path / f"p{i}.parquet",
        )
    entities = pa.table({"id": [1], "t": times(1)})
    files = [str(tmp_path / f"p{i}.parquet") for i in (2, 0, 1)]
    engine = DuckDBEngine()
    for data, want in [(str(tmp_path / "p*.parquet"), 5), (files, 3), (files[:1], 5)]:
        table, _ = engine.point_in_time_join(entities, timestamp="t", views=[view_join(data)])
        assert table is not None and table.column("v_x").to_pylist() == [want]


def test_created_column_hides_late_rows() -> None:
    # The 2h row arrives at 10h; before that the 0h row is the best visible one.
    view = pa.table({"id": [1, 1], "ts": times(0, 2), "made": times(0, 10), "x": [1, 2]})
    entities = pa.table({"id": [1, 1], "t": times(5, 11)})
    table, _ = DuckDBEngine().point_in_time_join(
        entities, timestamp="t", views=[view_join(view, created="made", ttl=timedelta(days=1))]
    )
    assert table is not None and table.column("v_x").to_pylist() == [1, 2]


def test_packing_choice() -> None:
    assert not Packing.choose(2_000_000, 0, 30 * 86_400 * 10**6).huge
    assert Packing.choose(2_000_000, -(10**16), 10**16).huge
    assert Packing.choose(0, None, None) == Packing(lo=0, hi=0, bits=1, huge=False)
    assert isinstance(JoinStats(rows=0, seconds=0.0).views, dict)
