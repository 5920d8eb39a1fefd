"""The compacted event log as DuckDB relations: ``events`` (with labels joined) and ``labels``.

:func:`register_events` creates three views on a connection, reading the
typed Parquet files of :class:`~fourloops.storage.events.columnar.EventTables`
directly (out of core; only the columns and partitions a query touches are
read):

* ``events``: one row per request id, every typed column, ``model`` and
  ``day`` from the partition folders, and the label of the request
  (``label``, ``label_number``, ``label_text``, ``label_at``; null while none
  has arrived);
* ``events_without_labels`` (:data:`UNLABELLED`): the same rows without the
  label columns, so without the join: a query that reads no label reads it
  and does not build the join's hash table over every label (compaction
  writes a request's label once, so the join never adds or drops a row);
* ``labels``: every compacted label (with ``model``, those that can be the model's: its
  partition and the labels of no known prediction).

Files of different contract versions are read by column name; a column a
file lacks reads as null. Quote ``"at"`` in SQL (a keyword in DuckDB).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from fourloops.engines import duckdb_pit as sql
from fourloops.storage.events.columnar import BASE_COLUMNS, LABEL_COLUMNS, EventTables

__all__ = ["JOINED", "LABELLED", "UNLABELLED", "register_events"]

#: The view of every event with its label, and the view of the same rows without the label columns.
LABELLED = "events"
UNLABELLED = "events_without_labels"
#: The columns the join adds to ``events``.
JOINED = ("label", "label_number", "label_text", "label_at")

_LABEL_TYPES = {
    "request_id": "VARCHAR",
    "label": "VARCHAR",
    "label_number": "DOUBLE",
    "label_text": "VARCHAR",
    "label_at": "TIMESTAMPTZ",
}


def _duckdb_type(dtype: pl.DataType) -> str:
    """The DuckDB type of an event column's Polars type."""
    if dtype == pl.Datetime("us", "UTC"):
        return "TIMESTAMPTZ"
    return {
        pl.String(): "VARCHAR",
        pl.Int64(): "BIGINT",
        pl.Float64(): "DOUBLE",
        pl.Boolean(): "BOOLEAN",
        pl.Date(): "DATE",
    }.get(dtype, "VARCHAR")


def _listed(files: list[str]) -> str:
    return "[" + ", ".join(sql.literal(f) for f in files) + "]"


def register_events(
    con: duckdb.DuckDBPyConnection,
    tables: EventTables,
    *,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Create the ``events``, ``events_without_labels`` and ``labels`` views on ``con``; returns how
    many event files they read.

    With ``since`` / ``until``, ``events`` reads only the day partitions that can hold events timed
    in that range (it may hold a few outside it: filter on ``"at"``). With no compacted events yet,
    ``events`` is an empty relation with every base column, so queries still run.
    """
    labels = [str(f) for f in tables.label_files(model)]
    if labels:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW labels AS "
            f"SELECT * FROM read_parquet({_listed(labels)}, hive_partitioning = false)"
        )
    else:
        columns = ", ".join(f"CAST(NULL AS {_LABEL_TYPES[c]}) AS {c}" for c in LABEL_COLUMNS)
        con.execute(f"CREATE OR REPLACE TEMP VIEW labels AS SELECT {columns} WHERE false")
    files = [str(f) for f in tables.event_files(model, since=since, until=until)]
    if files:
        source = (
            f"read_parquet({_listed(files)}, hive_partitioning = true, union_by_name = true, "
            "hive_types = {'model': VARCHAR, 'day': DATE})"
        )
    else:
        base = {**BASE_COLUMNS, "model": pl.String(), "day": pl.Date(), "prediction": pl.Float64()}
        typed = ", ".join(f"CAST(NULL AS {_duckdb_type(t)}) AS {sql.quote(c)}" for c, t in base.items())
        source = f"(SELECT {typed} WHERE false)"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {UNLABELLED} AS SELECT * FROM {source}")
    joined = ", ".join(f"l.{c}" for c in JOINED)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {LABELLED} AS "
        f"SELECT e.*, {joined} FROM {UNLABELLED} e LEFT JOIN labels l USING (request_id)"
    )
    return len(files)
