"""One timed point-in-time join, run in its own process by ``benchmarks/pit_join.py``.

Not meant to be run by hand, but it can be::

    python benchmarks/_pit_child.py METHOD FEATURES.parquet ENTITIES.parquet OUT.parquet \\
        WORKDIR [--created-filter]

METHOD is one of ``fourloops``, ``duckdb-asof`` (run them with the project venv)
or ``feast-file``, ``feast-duckdb`` (run them with ``benchmarks/.venv-feast``).
Only the chosen method's library is imported, so the same file works in both
virtual environments.

Every method does the same work inside the timed section: read the entity rows
from Parquet, join the ten features as of each row's ``event_timestamp``, and
write a Parquet file holding at least ``entity_row_id`` and ``f0`` .. ``f9``.
Set-up that is not part of a join (imports, ``feast apply``, fourloops' ingestion-time
view preparation) is timed apart and reported in the "setup" column.
``--created-filter`` turns on Feast's ``filter_by_created_timestamp`` option.
The last line printed on stdout is a JSON object with the measurements.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path

# Shared with pit_join.py (kept here too so the child imports nothing from the parent).
FEATURES = [f"f{i}" for i in range(10)]
TTL = timedelta(days=7)


def prepare_fourloops(features: str, workdir: str) -> object:
    """Ingestion-time work: compact the view for joins, as fourloops' offline store does.

    fourloops prepares a feature view once per version of its validated rows
    (``DuckDBEngine.prepare_view``) and every training set reads the prepared
    file, as Feast reads its offline store. It is timed and reported as set-up.
    """
    from fourloops.engines import DuckDBEngine, ViewJoin

    engine = DuckDBEngine(temp_directory=str(Path(workdir) / "duckdb-tmp"))
    view = ViewJoin(
        name="fv",
        data=features,
        join_keys=["entity_id"],
        timestamp="event_timestamp",
        created="created",
        ttl=TTL,
        features={f: f for f in FEATURES},
    )
    return engine, engine.prepare_view(view, str(Path(workdir) / "fv-prepared.parquet"))


def run_fourloops(prepared: object, entities: str, out: str) -> int:
    engine, view = prepared  # type: ignore[misc]
    _, stats = engine.point_in_time_join(entities, timestamp="event_timestamp", views=[view], out=out)
    return stats.rows


def run_duckdb_asof(features: str, entities: str, out: str, workdir: str) -> int:
    """The floor: one bare ASOF LEFT JOIN (no ttl, no created time), ordered like the input."""
    import duckdb

    con = duckdb.connect(config={"temp_directory": str(Path(workdir) / "duckdb-tmp")})
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(f"f.{f}" for f in FEATURES)
    con.execute(
        f"""
        COPY (
            SELECT e.entity_row_id, e.entity_id, e.event_timestamp, {cols}
            FROM read_parquet('{entities}') e
            ASOF LEFT JOIN read_parquet('{features}') f
              ON e.entity_id = f.entity_id AND e.event_timestamp >= f.event_timestamp
            ORDER BY e.entity_row_id
        ) TO '{out}' (FORMAT parquet)
        """
    )
    return int(con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0])


FEAST_REPO = """
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
source = FileSource(
    path={path!r},
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
fv = FeatureView(
    name="fv",
    entities=[entity],
    ttl=__import__("datetime").timedelta(seconds={ttl_seconds}),
    schema=[Field(name="entity_id", dtype=Int64)]
    + [Field(name=f"f{{i}}", dtype=Float64) for i in range(10)],
    source=source,
)
"""

FEAST_YAML = """project: pit_bench
registry: {repo}/registry.db
provider: local
online_store:
  type: sqlite
  path: {repo}/online.db
offline_store:
  type: {store}
entity_key_serialization_version: 3
"""


def feast_store(store: str, features: str, workdir: str):  # noqa: ANN201 - feast type
    """A throw-away Feast repository over ``features`` with the given offline store."""
    from feast import FeatureStore

    repo = Path(workdir) / f"feast-repo-{store}"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(FEAST_YAML.format(repo=repo, store=store))
    (repo / "definitions.py").write_text(
        FEAST_REPO.format(path=features, ttl_seconds=int(TTL.total_seconds()))
    )
    sys.path.insert(0, str(repo))
    import definitions  # type: ignore[import-not-found]

    fs = FeatureStore(repo_path=str(repo))
    fs.apply([definitions.entity, definitions.fv])
    return fs


def run_feast(fs, entities: str, out: str, created_filter: bool) -> int:  # noqa: ANN001
    """``get_historical_features(...).to_df()`` on the entity rows, written to Parquet.

    ``entity_row_id`` is renamed ``request_id`` on the way in and back on the way
    out: Feast's ibis-based stores (duckdb) use a column of that name internally
    and drop the caller's. ``created_filter`` sets Feast's documented
    ``filter_by_created_timestamp`` option (a value is not visible before its
    created time), which asks Feast for the same rule fourloops applies.
    """
    import pandas as pd

    entity_df = pd.read_parquet(entities).rename(columns={"entity_row_id": "request_id"})
    kwargs = {"filter_by_created_timestamp": True} if created_filter else {}
    job = fs.get_historical_features(entity_df=entity_df, features=[f"fv:{f}" for f in FEATURES], **kwargs)
    df = job.to_df().rename(columns={"request_id": "entity_row_id"})
    df[["entity_row_id", "entity_id", "event_timestamp", *FEATURES]].to_parquet(out, index=False)
    return len(df)


def main() -> None:
    method, features, entities, out, workdir = sys.argv[1:6]
    created_filter = "--created-filter" in sys.argv[6:]
    Path(workdir).mkdir(parents=True, exist_ok=True)
    setup_started = time.perf_counter()
    fs = None
    prepared = None
    if method.startswith("feast-"):
        fs = feast_store(method.removeprefix("feast-"), features, workdir)
    elif method == "fourloops":
        prepared = prepare_fourloops(features, workdir)
    else:
        import duckdb  # noqa: F401
    setup = time.perf_counter() - setup_started

    wall0, cpu0 = time.perf_counter(), time.process_time()
    if method == "fourloops":
        rows = run_fourloops(prepared, entities, out)
    elif method == "duckdb-asof":
        rows = run_duckdb_asof(features, entities, out, workdir)
    elif method in ("feast-file", "feast-duckdb"):
        rows = run_feast(fs, entities, out, created_filter)
    else:
        raise SystemExit(f"unknown method {method!r}")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(
        json.dumps(
            {
                "seconds": wall,
                "cpu": cpu,
                "setup": setup,
                "rows_out": rows,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM) and of any child it waited for.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` is not used: on Linux it survives
    ``execve`` and so starts at the parent's resident size at ``fork`` time.
    """
    import resource

    hwm_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                hwm_kb = int(line.split()[1])
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(hwm_kb, children_kb) / 1024


if __name__ == "__main__":
    main()
