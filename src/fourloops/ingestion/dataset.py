"""Point-in-time-correct training sets.

The rule, for every entity row with keys ``k`` and time ``t`` and every
requested feature of a view:

1. Candidate rows are the view's validated rows with the same keys whose event
   time is ``<= t`` and, when the source has a created/ingested time, whose
   created time is also ``<= t`` (a value written after ``t`` was not
   knowable at ``t``, even if it describes an earlier moment).
2. Among candidates, the one with the latest event time wins; ties go to the
   latest created time, then to the row that comes last in the source.
3. If the winner's event time is older than ``t - ttl`` the value is *expired*;
   with no candidate it is *missing*. Both give null and both are counted.

Every entity row is kept, in order, duplicates included. All times are
compared as UTC instants; naive (zone-less) times are refused, never guessed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from fourloops.definitions import FeatureView
from fourloops.engines import Engine, ViewJoin
from fourloops.errors import SchemaError, SourceError
from fourloops.ingestion.features import resolve_features
from fourloops.ingestion.leakage import LeakageFinding, check_leakage
from fourloops.ingestion.offline_store import OfflineStore

__all__ = ["EntityFrame", "TrainingSet", "build_training_set", "to_arrow"]

#: The default name of the entity frame's time column.
DEFAULT_TIMESTAMP = "event_timestamp"

EntityFrame: TypeAlias = pa.Table | pd.DataFrame | pl.DataFrame | str | Path


@dataclass
class TrainingSet:
    """The result of a point-in-time join: the frame (or the file it went to) and its counts."""

    table: pa.Table | None
    path: str | None
    rows: int
    stats: dict[str, Any]
    features: list[str]
    leakage: list[LeakageFinding] = field(default_factory=list)

    def to_arrow(self) -> pa.Table:
        if self.table is not None:
            return self.table
        assert self.path is not None
        return pq.read_table(self.path)

    def to_pandas(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()

    def to_polars(self) -> pl.DataFrame:
        frame = pl.from_arrow(self.to_arrow())
        assert isinstance(frame, pl.DataFrame)
        return frame

    def __len__(self) -> int:
        return self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "path": self.path,
            "features": self.features,
            "stats": self.stats,
            "leakage": [f.to_dict() for f in self.leakage],
        }


def to_arrow(entities: EntityFrame) -> pa.Table | str:
    """Accept pandas, Polars, Arrow or a Parquet/CSV path; return Arrow (or a Parquet path)."""
    if isinstance(entities, pa.Table):
        return entities
    if isinstance(entities, pl.DataFrame):
        return entities.to_arrow()
    if isinstance(entities, pd.DataFrame):
        return pa.Table.from_pandas(entities, preserve_index=False)
    if isinstance(entities, str | Path):
        path = Path(entities)
        if not path.exists():
            raise SourceError(f"{path}: entity file not found")
        if path.suffix.lower() in (".parquet", ".pq"):
            return str(path)
        if path.suffix.lower() == ".csv":
            try:
                return pl.read_csv(path, try_parse_dates=True).to_arrow()
            except pl.exceptions.PolarsError as err:
                raise SourceError(f"{path}: cannot read as CSV: {err}") from err
        raise SourceError(f"{path}: entity files must be .parquet or .csv")
    raise SchemaError(
        f"entities must be a pandas/Polars DataFrame, an Arrow table or a file path, "
        f"got {type(entities).__name__}"
    )


def build_training_set(
    entities: EntityFrame,
    *,
    features: Sequence[str] | str,
    views: Mapping[str, FeatureView],
    offline: OfflineStore,
    engine: Engine,
    timestamp: str = DEFAULT_TIMESTAMP,
    out: str | Path | None = None,
    full_names: bool = False,
    label: str | None = None,
) -> TrainingSet:
    """Join the requested features onto ``entities`` as of each row's ``timestamp``.

    Feature columns are named after the field (``temp``), or ``view__field``
    with ``full_names=True``. With ``label``, the leakage guard scores every
    feature against that column of the result.
    """
    grouped = resolve_features(features, views)
    joins = []
    out_names: list[str] = []
    for view_name, fields in grouped.items():
        view = views[view_name]
        mapping = {f: (f"{view_name}__{f}" if full_names else f) for f in fields}
        for name in mapping.values():
            if name in out_names:
                raise SchemaError(
                    f"feature {name!r} is requested from two views; use full names (view__field)"
                )
            out_names.append(name)
        joins.append(dataclasses.replace(_prepared_view(view, offline, engine), features=mapping))
    source = to_arrow(entities)
    table, stats = engine.point_in_time_join(
        source, timestamp=timestamp, views=joins, out=None if out is None else str(out)
    )
    stats_dict = dataclasses.asdict(stats)
    rows = int(stats_dict.get("rows", table.num_rows if table is not None else 0))
    result = TrainingSet(table, None if out is None else str(out), rows, stats_dict, out_names)
    if label is not None:
        frame = result.to_polars()
        if label not in frame.columns:
            raise SchemaError(f"label column {label!r} is not in the entity frame")
        result.leakage = check_leakage(frame, label, out_names)
    return result


def _prepared_view(view: FeatureView, offline: OfflineStore, engine: Engine) -> ViewJoin:
    """The view's offline rows compacted for point-in-time joins, prepared once and cached.

    The prepared file is named after the content of the offline parts, so it is
    rebuilt exactly when the view's validated rows change.
    """
    parts = offline.parts(view)
    base = ViewJoin(
        name=view.name,
        data=parts if parts else _empty_view(view, list(view.features)),
        join_keys=list(view.entity.join_keys),
        timestamp=view.source.timestamp,
        created=view.source.created,
        ttl=view.ttl,
        features={f: f for f in view.features},
    )
    if not parts:
        return base
    key = hashlib.sha256("\n".join(Path(p).name for p in parts).encode()).hexdigest()[:16]
    target = offline.folder(view) / f"prepared-{key}.parquet"
    if target.exists():
        return dataclasses.replace(base, data=str(target), prepared=True)
    for stale in offline.folder(view).glob("prepared-*.parquet"):
        stale.unlink(missing_ok=True)
    return engine.prepare_view(base, str(target))


def _empty_view(view: FeatureView, fields: list[str]) -> pa.Table:
    # A view that has not ingested a single valid row still joins (every value missing).
    # Keys take their declared type (undeclared keys are assumed to be strings).
    cols = {
        k: pa.array(
            [], _ARROW_TYPES[view.contract.fields[k].kind] if k in view.contract.fields else pa.string()
        )
        for k in view.entity.join_keys
    }
    cols[view.source.timestamp] = pa.array([], pa.timestamp("us", tz="UTC"))
    if view.source.created:
        cols[view.source.created] = pa.array([], pa.timestamp("us", tz="UTC"))
    for f in fields:
        cols[f] = pa.array([], _ARROW_TYPES[view.features[f].kind])
    return pa.table(cols)


#: The Arrow type of each field type's validated (normalised) values.
_ARROW_TYPES = {
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "category": pa.string(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
