"""The batch-engine interface: point-in-time-correct joins of entities to feature views.

The point-in-time rule
----------------------
For each entity row with join keys ``k`` and time ``t`` and for each feature view,
the feature values come from the view row ``r`` with the same keys that maximises
the tuple ``(r.event_ts, r.created_ts, source order)`` among the rows *visible at*
``t``, which are the rows with

* ``r.event_ts <= t``, and
* ``r.created_ts <= t`` when the view has a created (ingestion-time) column.

*Source order* is the final tie-break: the row's position in the data (for a list
of Parquet files, the position of the file in the list, then the row within the
file; a glob expands to its files in sorted order). A later row wins, so results
are deterministic even when the data has duplicate timestamps.

If the chosen row's ``event_ts < t - ttl`` the values are **expired** and come
back null; a row exactly at ``t - ttl`` is still valid. If no row is visible the
values are **missing** (null). Rows whose event time (or created time, when the
view has one) is null are never visible; entity rows with a null time or a null
key find nothing.

All timestamps must be time-zone aware (any zone; they compare as instants, at
microsecond precision). A naive timestamp column raises
:class:`~fourloops.errors.SchemaError` naming the column: fourloops never guesses
a zone. Every entity row is kept, in input order, duplicates included; entity
columns are returned unchanged except that time-zone-aware timestamps come back
as ``timestamp[us, tz=UTC]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

import pyarrow as pa

from fourloops.errors import SchemaError

if TYPE_CHECKING:
    from datetime import datetime

    from fourloops.engines.summaries import Summaries, SummaryPlan
    from fourloops.storage.events.columnar import EventTables

__all__ = ["Engine", "JoinStats", "Stratum", "TableScan", "ViewJoin", "ViewStats"]

#: Data accepted for a view: a Parquet path or glob, a list of Parquet files, or an Arrow table.
ViewData: TypeAlias = str | Sequence[str] | pa.Table


@dataclass(frozen=True)
class ViewJoin:
    """One feature view taking part in a point-in-time join.

    Parameters
    ----------
    name:
        The feature view's name (used in statistics and error messages).
    data:
        A Parquet path or glob, a list of Parquet files, or an Arrow table.
    join_keys:
        Key columns in the view data.
    timestamp:
        Event-time column in the view data (time-zone aware).
    ttl:
        How long a value stays valid after its event time.
    features:
        View column -> output column name.
    created:
        Created (ingestion-time) column, if the view has one; a row is not
        visible before it was created.
    entity_keys:
        The entity columns matching ``join_keys`` position by position
        (default: the same names).
    prepared:
        ``data`` is the output of an engine's ``prepare_view`` for a view with
        the same ``join_keys``, ``timestamp``, ``created`` and a superset of
        ``features`` (the rows that can never win are already dropped; the
        ttl is still applied at join time).
    """

    name: str
    data: ViewData
    join_keys: list[str]
    timestamp: str
    ttl: timedelta
    features: dict[str, str]
    created: str | None = None
    entity_keys: list[str] | None = None
    prepared: bool = False

    def __post_init__(self) -> None:
        if not self.join_keys:
            raise SchemaError(f"view {self.name!r}: join_keys must not be empty")
        if self.entity_keys is not None and len(self.entity_keys) != len(self.join_keys):
            raise SchemaError(
                f"view {self.name!r}: entity_keys {self.entity_keys} do not match join_keys {self.join_keys}"
            )
        if not isinstance(self.ttl, timedelta) or self.ttl < timedelta(0):
            raise SchemaError(f"view {self.name!r}: ttl must be a non-negative timedelta")

    @property
    def entity_columns(self) -> list[str]:
        """The entity columns that carry this view's keys."""
        return list(self.entity_keys) if self.entity_keys is not None else list(self.join_keys)


@dataclass(frozen=True)
class ViewStats:
    """Outcome counts of one view over all entity rows.

    ``found + missing + expired`` equals the number of entity rows.
    """

    name: str
    found: int
    missing: int
    expired: int

    @property
    def coverage(self) -> float:
        """Share of entity rows that got a value (1.0 for an empty entity table)."""
        total = self.found + self.missing + self.expired
        return self.found / total if total else 1.0


@dataclass
class JoinStats:
    """Statistics of one point-in-time join: per-view counts, total rows, wall time."""

    rows: int
    seconds: float
    views: dict[str, ViewStats] = field(default_factory=dict)
    engine: str = ""


@dataclass(frozen=True)
class Stratum:
    """One window of a table to sample on its own: the SQL condition that selects its rows (``None``:
    every row) and how many rows it holds (as counted by the monitor's summaries; a wrong count makes
    the draw slower, never different)."""

    where: str | None
    rows: int


class TableScan(Protocol):
    """One table open for monitoring: its facts, reference fitting, summaries and samples.

    Opened with :meth:`Engine.open` (data) or :meth:`Engine.open_events` (the event log);
    the data stays where it lives and only summaries come back.
    """

    def schema(self) -> dict[str, str]:
        """Column name -> engine type name."""
        ...

    def rows(self, where: str | None = None) -> int:
        """How many rows (that match the SQL condition ``where``)."""
        ...

    def time_range(self, column: str) -> tuple[datetime | None, datetime | None]:
        """First and last value of a timestamp column."""
        ...

    def fit_edges(self, columns: Sequence[str], *, bins: int) -> dict[str, tuple[float, ...]]:
        """Interior bin edges of numeric columns at their quantiles (or distinct values when few)."""
        ...

    def top_categories(self, columns: Sequence[str], *, limit: int) -> dict[str, list[tuple[str, int]]]:
        """The most frequent values of columns with their counts."""
        ...

    def summarize(self, plan: SummaryPlan, *, where: str | None = None) -> Summaries:
        """The mergeable summaries that ``plan`` asks for, per window and segment."""
        ...

    def sample(
        self, columns: Sequence[str], rows: int, *, where: str | None = None, seed: int = 0
    ) -> pa.Table:
        """A uniform sample of at most ``rows`` rows."""
        ...

    def sample_windows(
        self,
        columns: Sequence[str],
        rows: int,
        windows: Sequence[Stratum],
        *,
        where: str | None = None,
        seed: int = 0,
    ) -> list[pa.Table]:
        """A uniform sample of at most ``rows`` rows of each window (windows do not overlap), in one
        pass over the data where the engine can; a window's rows never appear in another's sample."""
        ...

    def interrupt(self) -> None:
        """Stop the query running on this scan now (from another thread); it raises where it runs."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Engine(Protocol):
    """A batch engine able to build point-in-time-correct training frames."""

    name: str

    def point_in_time_join(
        self,
        entities: pa.Table | str,
        *,
        timestamp: str,
        views: Sequence[ViewJoin],
        out: str | None = None,
    ) -> tuple[pa.Table | None, JoinStats]:
        """Join ``views`` onto ``entities`` as of each row's ``timestamp`` column.

        ``entities`` is an Arrow table or a Parquet path. The result has the
        entity columns followed by one column per feature (named by each view's
        ``features`` mapping). With ``out`` the result is written to that
        Parquet file and ``None`` is returned in place of the table.
        """
        ...

    def prepare_view(self, view: ViewJoin, out_path: str) -> ViewJoin:
        """Write ``view`` compacted for joins to ``out_path``; return a prepared ViewJoin."""
        ...

    def query_events(
        self,
        tables: EventTables,
        query: str,
        *,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pa.Table:
        """Run SQL over the compacted event log (views ``events`` and ``labels``); the result as Arrow.

        With ``since`` / ``until`` only what can hold events of that range needs to be read."""
        ...

    def open(self, data: pa.Table | str | Sequence[str], *, positions: bool = True) -> TableScan:
        """Open a table or Parquet/CSV files for monitoring (``positions``: number rows in data order)."""
        ...

    def open_events(
        self,
        tables: EventTables,
        *,
        model: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> TableScan:
        """Open one model's compacted events (with labels joined) for monitoring; with ``since`` /
        ``until``, only what can hold events of that range needs to be read."""
        ...
