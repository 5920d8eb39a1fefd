"""The DuckDB engine agrees with the brute-force oracle on generated data."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fourloops.engines import DuckDBEngine, ViewJoin

from .pit_oracle import OracleView, pit_join

BASE = datetime(2024, 3, 10, 4, tzinfo=UTC)  # New York changes to DST at 07:00 UTC
STEP = timedelta(minutes=30)
FAR = timedelta(days=365 * 200)  # forces the HUGEINT packing
ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
TEMPLATES: dict[str, dict[str, Any]] = {
    "plain": {"join_keys": ["id"], "entity_keys": None, "created": False},
    "late": {"join_keys": ["id"], "entity_keys": None, "created": True},
    "pair": {"join_keys": ["a", "b"], "entity_keys": None, "created": None},
    "renamed": {"join_keys": ["driver"], "entity_keys": ["id"], "created": None},
}
KEY_VALUES = {"id": st.integers(0, 3), "driver": st.integers(0, 3), "a": st.integers(0, 1)}
KEY_VALUES["b"] = st.sampled_from(["x", "y"])
KEY_TYPES = {"id": pa.int64(), "driver": pa.int64(), "a": pa.int64(), "b": pa.string()}


def grid_time(low: int, high: int) -> st.SearchStrategy[datetime]:
    return st.integers(low, high).map(lambda k: BASE + k * STEP)


event_times = st.one_of(
    grid_time(0, 12),
    st.just(None),
    st.sampled_from([BASE - FAR, BASE + FAR]),
).filter(lambda _: True)
delays = st.sampled_from([0, 0, 1, 3, 20, -1]).map(lambda k: k * STEP)


@st.composite
def view_case(draw: st.DrawFn, name: str) -> tuple[OracleView, dict[str, Any]]:
    template = TEMPLATES[name]
    created = template["created"]
    if created is None:
        created = draw(st.booleans())
    n = draw(st.integers(0, 25))
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {}
        for key in template["join_keys"]:
            row[key] = draw(st.one_of(KEY_VALUES[key], st.just(None)) if n > 20 else KEY_VALUES[key])
        row["ts"] = draw(st.one_of(grid_time(0, 12), grid_time(0, 12), event_times))
        if created:
            if row["ts"] is None:
                row["created"] = draw(st.one_of(st.just(None), grid_time(0, 12)))
            else:
                row["created"] = row["ts"] + draw(delays)
        row["v"] = len(rows)
        row["s"] = draw(st.one_of(st.just(None), st.sampled_from(["p", "q"])))
        rows.append(row)
    ttl = draw(st.one_of(st.integers(0, 6).map(lambda k: k * STEP), st.just(timedelta(days=9999))))
    view = OracleView(
        name=name,
        rows=rows,
        join_keys=template["join_keys"],
        entity_keys=template["entity_keys"] or template["join_keys"],
        timestamp="ts",
        created="created" if created else None,
        ttl=ttl,
        features={"v": f"{name}_v", "s": f"{name}_s"},
    )
    form = {
        "storage": draw(st.sampled_from(["arrow", "parquet", "files", "glob"])),
        "ts_zone": draw(st.sampled_from(ZONES)),
        "created_zone": draw(st.sampled_from(ZONES)),
        "splits": draw(st.lists(st.integers(0, n), max_size=2)),
    }
    return view, form


def view_table(view: OracleView, form: dict[str, Any]) -> pa.Table:
    fields = [pa.field(k, KEY_TYPES[k]) for k in view.join_keys]
    fields.append(pa.field("ts", pa.timestamp("us", tz=form["ts_zone"])))
    if view.created:
        fields.append(pa.field("created", pa.timestamp("ms", tz=form["created_zone"])))
    fields += [pa.field("v", pa.int64()), pa.field("s", pa.string())]
    schema = pa.schema(fields)
    return pa.Table.from_pylist([{f.name: r[f.name] for f in fields} for r in view.rows], schema)


def view_data(view: OracleView, form: dict[str, Any], folder: Path) -> Any:
    table = view_table(view, form)
    if form["storage"] == "arrow":
        return table
    cuts = sorted({0, table.num_rows, *form["splits"]})
    if form["storage"] == "parquet":
        cuts = [0, table.num_rows]
    files = []
    for i, (start, stop) in enumerate(zip(cuts, cuts[1:] or [table.num_rows], strict=False)):
        path = folder / f"{view.name}-{i:02d}.parquet"
        pq.write_table(table.slice(start, stop - start), path)
        files.append(str(path))
    if not files:  # an empty view
        path = folder / f"{view.name}-00.parquet"
        pq.write_table(table, path)
        files.append(str(path))
    if form["storage"] == "glob":
        return str(folder / f"{view.name}-*.parquet")
    return files[0] if form["storage"] == "parquet" else files


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str, list[tuple[OracleView, Any]]]:
    names = draw(st.lists(st.sampled_from(sorted(TEMPLATES)), min_size=1, max_size=3, unique=True))
    views = [draw(view_case(name)) for name in names]
    n = draw(st.integers(0, 30))
    entities = []
    for i in range(n):
        entities.append(
            {
                "id": draw(st.one_of(st.integers(0, 4), st.just(None)) if i == 7 else st.integers(0, 4)),
                "a": draw(st.integers(0, 1)),
                "b": draw(st.sampled_from(["x", "y"])),
                "t": draw(st.one_of(grid_time(-2, 16), st.just(None)) if i == 5 else grid_time(-2, 16)),
                "label": i,
            }
        )
    if entities and draw(st.booleans()):
        entities += entities[: draw(st.integers(1, len(entities)))]  # duplicate rows
    zone = draw(st.sampled_from(ZONES))
    return entities, zone, views


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_engine_matches_oracle(case: tuple[list[dict[str, Any]], str, list[Any]]) -> None:
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
    with tempfile.TemporaryDirectory() as tmp:
        joins = [
            ViewJoin(
                name=view.name,
                data=view_data(view, form, Path(tmp)),
                join_keys=view.join_keys,
                timestamp=view.timestamp,
                ttl=view.ttl,
                features=view.features,
                created=view.created,
                entity_keys=view.entity_keys if view.entity_keys != view.join_keys else None,
            )
            for view, form in views
        ]
        table, stats = DuckDBEngine(threads=2).point_in_time_join(entity_table, timestamp="t", views=joins)
    expected, counts = pit_join(entities, "t", [view for view, _ in views])
    assert table is not None
    features = [name for view, _ in views for name in view.features.values()]
    assert table.column_names == [*schema.names, *features]
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    assert table.to_pylist() == expected
    assert stats.rows == len(entities)
    for view, _ in views:
        got = stats.views[view.name]
        assert [got.found, got.missing, got.expired] == counts[view.name]
