"""Encoding rows for the online store, vectorised with Polars (the write side).

Kept apart from :mod:`fourloops.storage.online.base` so that a process that
only reads the online store (a prediction server) never imports Polars. See
the base module's docstring for the encoding itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from fourloops.errors import SchemaError
from fourloops.storage.online.base import DATE_TAG, TD_TAG, TIME_TAG, TS_TAG, encode_key

__all__ = ["MISSING_CREATED_US", "WRITE_CHUNK_ROWS", "EncodedRows", "encode_rows"]

#: Stored created time of a row written without one: lower than any real time.
MISSING_CREATED_US = -(2**62)
#: Rows encoded and sent to the backend per round.
WRITE_CHUNK_ROWS = 100_000

_EVENT, _CREATED = "__fl_event_us", "__fl_created_us"


@dataclass(frozen=True)
class EncodedRows:
    """Rows ready for a backend: the newest row of each distinct key, encoded."""

    keys: list[str]
    event_us: list[int]
    created_us: list[int]
    payloads: list[str]


def _frame(rows: pa.Table | pl.DataFrame) -> pl.DataFrame:
    if isinstance(rows, pl.DataFrame):
        return rows
    if isinstance(rows, pa.Table):
        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        return frame
    raise SchemaError(f"rows must be a pyarrow Table or polars DataFrame, got {type(rows)}")


def _time_us(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    if not isinstance(dtype, pl.Datetime):
        raise SchemaError(f"column {column!r} must be a timestamp, got {dtype}")
    if dtype.time_zone is None:
        raise SchemaError(f"column {column!r} must be timezone-aware, got a naive timestamp")
    return pl.col(column).dt.epoch("us")


def _value_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        tz = col.dt.convert_time_zone if dtype.time_zone else col.dt.replace_time_zone
        utc = tz("UTC")
        tagged = pl.struct(utc.dt.cast_time_unit("us").alias(TS_TAG))
    elif isinstance(dtype, pl.Date):
        tagged = pl.struct(col.alias(DATE_TAG))
    elif isinstance(dtype, pl.Duration):
        tagged = pl.struct(col.dt.total_microseconds().alias(TD_TAG))
    elif isinstance(dtype, pl.Time):
        tagged = pl.struct(col.dt.strftime("%H:%M:%S%.6f").alias(TIME_TAG))
    elif isinstance(dtype, pl.Categorical | pl.Enum):
        return col.cast(pl.String)
    elif isinstance(dtype, pl.Decimal):
        return col.cast(pl.Float64)
    elif isinstance(dtype, pl.Binary | pl.Object):
        raise SchemaError(f"feature {name!r} has unsupported type {dtype}")
    else:
        return col
    return pl.when(col.is_not_null()).then(tagged)


def encode_rows(
    rows: pa.Table | pl.DataFrame,
    *,
    keys: Sequence[str],
    timestamp: str,
    features: Sequence[str],
    created: str | None = None,
) -> tuple[Iterator[EncodedRows], int]:
    """Validate ``rows``, keep the newest row per key, encode it in chunks.

    Returns the chunks and the number of rows dropped because another row
    of the same call had a greater ``(event_time, created_time)``.
    """
    frame = _frame(rows)
    keys, features = list(keys), list(features)
    if not keys:
        raise SchemaError("at least one key column is needed")
    needed = [*keys, timestamp, *features, *([created] if created else [])]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.schema]
    if missing:
        raise SchemaError(f"rows lack column(s) {missing}; have {list(frame.columns)}")
    for column in [*keys, timestamp]:
        if frame[column].null_count():
            raise SchemaError(f"column {column!r} has nulls; keys and event times are required")
    key_exprs = []
    for column in keys:
        dtype = frame.schema[column]
        if isinstance(dtype, pl.Categorical | pl.Enum):
            key_exprs.append(pl.col(column).cast(pl.String))
        elif dtype.is_integer() or dtype == pl.String:
            key_exprs.append(pl.col(column))
        else:
            raise SchemaError(f"key column {column!r} must be str or int, got {dtype}")
    created_expr = (
        _time_us(frame, created).fill_null(MISSING_CREATED_US)
        if created
        else pl.lit(MISSING_CREATED_US, dtype=pl.Int64)
    )
    slim = frame.select(
        *key_exprs,
        _time_us(frame, timestamp).alias(_EVENT),
        created_expr.alias(_CREATED),
        *[_value_expr(f, frame.schema[f]).alias(f"\x00{f}") for f in features],
    )
    # stable sort: among equal (event, created) the last row of the input wins
    newest = slim.sort(_EVENT, _CREATED, maintain_order=True).unique(
        subset=keys, keep="last", maintain_order=False
    )
    dropped = slim.height - newest.height
    return _chunks(newest, keys, features), dropped


# json.dumps leaves a string as is, between quotes, unless it holds one of these
_JSON_ESCAPED = r'[\x00-\x1f"\\]'


def _encoded_key_expr(frame: pl.DataFrame, keys: list[str]) -> pl.Expr:
    """Vectorised :func:`encode_key`; null where a string needs escaping."""
    parts = []
    for column in keys:
        col = pl.col(column)
        if frame.schema[column] == pl.String:
            quoted = pl.concat_str(pl.lit('"'), col, pl.lit('"'))
            parts.append(pl.when(col.str.contains(_JSON_ESCAPED)).then(None).otherwise(quoted))
        else:
            parts.append(col.cast(pl.String))
    return pl.concat_str(pl.lit("["), pl.concat_str(parts, separator=","), pl.lit("]"))


def _chunks(frame: pl.DataFrame, keys: list[str], features: list[str]) -> Iterator[EncodedRows]:
    value_cols = [pl.col(f"\x00{f}").alias(f) for f in features]
    payload = pl.struct(value_cols).struct.json_encode() if features else pl.lit("{}")
    for start in range(0, frame.height, WRITE_CHUNK_ROWS):
        part = frame.slice(start, WRITE_CHUNK_ROWS)
        encoded = part.select(
            _encoded_key_expr(part, keys).alias("key"),
            payload.alias("payload"),
        )
        codes = encoded["key"].to_list()
        if encoded["key"].null_count():
            rows = part.select(keys).iter_rows()
            codes = [encode_key(row) if code is None else code for code, row in zip(codes, rows, strict=True)]
        yield EncodedRows(
            keys=codes,
            event_us=part[_EVENT].to_list(),
            created_us=part[_CREATED].to_list(),
            payloads=encoded["payload"].to_list(),
        )
