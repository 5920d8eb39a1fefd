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

:func:`register_chunks` creates the same rows as ``events`` in parts of about
a million events (``events_part_<i>``): a few quiet days, or a few hours of
a busy one. Each part joins its events with the labels of those prediction
days (and hours: a label file's ``prediction_hour``) and the labels that can
belong to any day or hour (the top folder, the older layouts'), so a scan
that reads the parts one after another holds one part's labels in its join's
hash table, not the whole log's (see
:meth:`~fourloops.storage.events.columnar.EventTables.label_days`).

Files of different contract versions are read by column name; a column a
file lacks reads as null. Quote ``"at"`` in SQL (a keyword in DuckDB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from fourloops.engines import duckdb_pit as sql
from fourloops.storage.events.columnar import BASE_COLUMNS, LABEL_COLUMNS, EventTables

__all__ = ["CHUNK_EVENTS", "JOINED", "LABELLED", "UNLABELLED", "register_chunks", "register_events"]

#: The view of every event with its label, and the view of the same rows without the label columns.
LABELLED = "events"
UNLABELLED = "events_without_labels"
#: The columns the join adds to ``events``.
JOINED = ("label", "label_number", "label_text", "label_at")

#: Events one part of :func:`register_chunks` holds at most, unless the hours of a busy day it is read
#: in hold more (a day is split into at most 24 ranges of whole hours): the join's hash table over a
#: part's labels is what a part's scan holds beyond the streamed batches, about 130 MB a million
#: labels (request id and value; measured on the monitor at 10M events, 80 % labelled: peak RSS
#: 594 MB with parts of 1M events, 699 MB with 2M, 1,210 MB with the whole log in one, in about the
#: same time).
CHUNK_EVENTS = 1_000_000
#: The name of part ``i``, and of the labels its join is built on.
_PART = "events_part_{}"
_PART_LABELS = "labels_part_{}"

_LABEL_TYPES = {
    "request_id": "VARCHAR",
    "label": "VARCHAR",
    "label_number": "DOUBLE",
    "label_text": "VARCHAR",
    "label_at": "TIMESTAMPTZ",
    "prediction_hour": "TINYINT",
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


def _listed(files: Sequence[str | Path]) -> str:
    return "[" + ", ".join(sql.literal(str(f)) for f in files) + "]"


def _no_labels() -> str:
    columns = ", ".join(f"CAST(NULL AS {_LABEL_TYPES[c]}) AS {c}" for c in LABEL_COLUMNS)
    return f"SELECT {columns} WHERE false"


def _read_events(files: Sequence[str | Path]) -> str:
    return (
        f"read_parquet({_listed(files)}, hive_partitioning = true, union_by_name = true, "
        "hive_types = {'model': VARCHAR, 'day': DATE})"
    )


def _read_labels(files: Sequence[str | Path]) -> str:
    if not files:
        return f"({_no_labels()})"
    # union_by_name: files written before ``prediction_hour`` existed read it as null
    return f"read_parquet({_listed(files)}, hive_partitioning = false, union_by_name = true)"


def _names(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """The columns of ``relation`` and their types."""
    return {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def _hours(n: int, chunk_events: int, per_hour: Sequence[float] | None = None) -> list[tuple[int, int]]:
    """The hour ranges ``[start, stop)`` a day of ``n`` events is read in: ``(0, 24)`` when it fits a
    part, else about ``n / chunk_events`` ranges of whole hours. With ``per_hour`` (the day's events
    in each UTC hour, estimated) the ranges hold about equal events, so a day whose traffic peaks
    in a few hours does not make one part several times the others; without, equal hours.

    >>> _hours(10, 100), _hours(300, 100)
    ([(0, 24)], [(0, 8), (8, 16), (16, 24)])
    >>> _hours(300, 100, [0.0] * 8 + [25.0] * 12 + [0.0] * 4)  # all of it from 08:00 to 20:00
    [(0, 12), (12, 16), (16, 24)]
    """
    slices = min(24, -(-n // chunk_events)) if chunk_events > 0 else 24
    if per_hour is None or slices == 1 or sum(per_hour) <= 0:
        return [(24 * k // slices, 24 * (k + 1) // slices) for k in range(slices)]
    total, held, cuts = float(sum(per_hour)), 0.0, [0]
    for hour, count in enumerate(per_hour[:23]):
        held += count
        # a cut after this hour when it reaches the next of the equal shares
        if held >= total * len(cuts) / slices and len(cuts) < slices:
            cuts.append(hour + 1)
    return list(zip(cuts, [*cuts[1:], 24], strict=True))


def _hour_counts(con: duckdb.DuckDBPyConnection, files: Sequence[Path], day: str) -> list[float] | None:
    """A day's events per UTC hour, estimated from its files' row-group statistics of ``"at"`` (each
    group's rows spread evenly over its first to last time; compaction writes them in time order,
    so a group spans a few hours at most); ``None`` when the statistics are missing."""
    midnight = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
    groups = con.execute(
        "SELECT row_group_num_rows, epoch(TRY_CAST(coalesce(stats_min_value, stats_min) AS TIMESTAMPTZ)), "
        "epoch(TRY_CAST(coalesce(stats_max_value, stats_max) AS TIMESTAMPTZ)) "
        f"FROM parquet_metadata({_listed(files)}) "
        "WHERE path_in_schema = 'at'"
    ).fetchall()
    counts = [0.0] * 24
    for rows, first, last in groups:
        if first is None or last is None:
            return None
        start = min(max((first - midnight) / 3600, 0.0), 24.0)
        stop = min(max((last - midnight) / 3600, start), 24.0)
        if stop - start < 1e-9:
            counts[min(int(start), 23)] += rows
            continue
        for hour in range(int(start), min(int(math.ceil(stop)), 24)):
            counts[hour] += rows * (min(stop, hour + 1) - max(start, hour)) / (stop - start)
    return counts


def _hour_filters(day: str, start: int, stop: int) -> tuple[str, str]:
    """The filters on a day's events and on its labels that keep hours ``[start, stop)``: the first
    range also keeps any earlier time and the last any later one (an event's day partition is its
    ``at``'s UTC day, so there is none), and a label of no known hour is kept by every range."""
    if (start, stop) == (0, 24):
        return "", ""
    midnight = datetime.fromisoformat(day).replace(tzinfo=UTC)
    at, hour = [], []
    if start > 0:
        at.append(f'"at" >= TIMESTAMPTZ {sql.literal((midnight + timedelta(hours=start)).isoformat())}')
        hour.append(f"prediction_hour >= {start}")
    if stop < 24:
        at.append(f'"at" < TIMESTAMPTZ {sql.literal((midnight + timedelta(hours=stop)).isoformat())}')
        hour.append(f"prediction_hour < {stop}")
    return " AND ".join(at), f"prediction_hour IS NULL OR ({' AND '.join(hour)})"


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
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW labels AS SELECT * FROM {_read_labels(tables.label_files(model))}"
    )
    files = tables.event_files(model, since=since, until=until)
    if files:
        source = _read_events(files)
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


def register_chunks(
    con: duckdb.DuckDBPyConnection,
    tables: EventTables,
    *,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> tuple[str, ...]:
    """Create views ``events_part_0``, ``events_part_1``, ... on ``con`` that, read one after another,
    hold the rows of ``events`` (:func:`register_events` first, with the same arguments), about
    ``chunk_events`` events each, in time order: whole day partitions, or, for a day of more events
    than that, ranges of its hours (:func:`_hours`; the events filtered on ``"at"``, which the
    Parquet reader prunes by row group). Every column of ``events`` with its type (a column a part's
    files lack reads as null). Returns their names (none without events); part ``i``'s join is
    built on view ``labels_part_<i>``.

    Each part joins its events with the labels that can be theirs: those of its prediction days and
    hours (a day's label files filtered on ``prediction_hour``) and those that can be any day's or
    hour's. A request's label is in exactly one place and carries its event's hour, so the parts'
    rows are exactly ``events``' rows: none added, none dropped, the same label on each.
    """
    files = tables.event_files(model, since=since, until=until)
    if not files:
        return ()
    every_day, by_day = tables.label_days(model)
    rows = dict(
        con.execute(f"SELECT file_name, num_rows FROM parquet_file_metadata({_listed(files)})").fetchall()
    )
    days: dict[str, list[Path]] = {}
    for f in files:
        days.setdefault(f.parent.name.removeprefix("day="), []).append(f)
    # a part: whole days, or one day's hours [start, stop)
    chunks: list[tuple[list[str], tuple[int, int]]] = []
    held = chunk_events
    for day in sorted(days):
        n = sum(int(rows[str(f)]) for f in days[day])
        if chunk_events <= 0 or n > chunk_events:  # a busy day: hour ranges cut where its traffic is
            hours = _hours(n, chunk_events, _hour_counts(con, days[day], day))
            chunks.extend(([day], h) for h in hours)
            held = chunk_events
            continue
        if held + n > chunk_events:
            chunks.append(([], (0, 24)))
            held = 0
        chunks[-1][0].append(day)
        held += n
    described = con.execute(f"DESCRIBE SELECT * FROM {UNLABELLED}").fetchall()
    full = {str(r[0]): str(r[1]) for r in described}
    joined = ", ".join(f"l.{c}" for c in JOINED)
    names = []
    for i, (chunk, (start, stop)) in enumerate(chunks):
        source = _read_events([f for day in chunk for f in days[day]])
        own = _names(con, source)
        columns = ", ".join(
            sql.quote(c)
            if own.get(c) == t
            else f"CAST({sql.quote(c) if c in own else 'NULL'} AS {t}) AS {sql.quote(c)}"
            for c, t in full.items()
        )
        at, hour = _hour_filters(chunk[0], start, stop)
        labels = _read_labels([*every_day, *(f for day in chunk for f in by_day.get(day, []))])
        if hour and "prediction_hour" not in _names(con, labels):
            hour = ""  # only files written before labels carried their hour: each can be any hour's
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {_PART_LABELS.format(i)} AS "
            f"SELECT * FROM {labels}{f' WHERE {hour}' if hour else ''}"
        )
        names.append(_PART.format(i))
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {names[-1]} AS SELECT e.*, {joined} "
            f"FROM (SELECT {columns} FROM {source}{f' WHERE {at}' if at else ''}) e "
            f"LEFT JOIN {_PART_LABELS.format(i)} l USING (request_id)"
        )
    return tuple(names)
