"""Ground truth: delayed labels from files, and the label-maturity rule.

Two loops need to know when a label is known. Training leaves out rows whose
label was not yet known at its cutoff; evaluation must not count a prediction
whose label cannot have arrived yet as a miss. Both use :func:`mature`, so
they cannot disagree. A label is known at ``cutoff`` when:

* the model's label declares ``available=COLUMN``: that column holds a time
  not after ``cutoff`` (a null means "not known yet");
* it declares ``delay=...``: the prediction time plus the delay is not after
  ``cutoff``;
* it declares neither: as soon as the row exists.

>>> import polars as pl, fourloops as fl
>>> from datetime import UTC, datetime
>>> rows = pl.DataFrame({"t": [datetime(2013, 1, d, tzinfo=UTC) for d in (1, 2, 3)]})
>>> rule = mature(fl.Label("y", delay="1d"), timestamp="t", cutoff=datetime(2013, 1, 3, tzinfo=UTC))
>>> rows.select(rule.alias("known"))["known"].to_list()
[True, True, False]

:func:`read_label_file` turns a CSV or Parquet file of ``request_id`` and a
label column into :class:`~fourloops.storage.events.Label` records; rows
without an id or a value are rejected and named by their row number, never
recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from fourloops.definitions import Label as LabelDefinition
from fourloops.definitions import Task
from fourloops.errors import SchemaError, SourceError
from fourloops.storage.events import Label

__all__ = ["LabelBatch", "label_problem", "mature", "read_label_file"]

#: How many rejected rows a message names before it says "...".
SHOWN_REJECTIONS = 5


def mature(label: LabelDefinition, *, timestamp: str, cutoff: datetime) -> pl.Expr:
    """True for rows whose label was known at ``cutoff`` (see the module docstring)."""
    if label.available is not None:
        return pl.col(label.available).is_not_null() & (pl.col(label.available) <= cutoff)
    if label.delay is not None:
        return pl.col(timestamp) + label.delay <= cutoff
    return pl.lit(True)


def label_problem(task: Task, value: object) -> str | None:
    """Why ``value`` cannot be a label of a ``task`` model (None: it can).

    Binary: 0, 1, true or false. Regression: a finite number. Multiclass: a
    class, as an integer or a string. Policy (a decision model): the reward of the
    chosen action, a finite number.

    >>> label_problem(Task.BINARY, "yes")
    "a binary model's label is 0, 1, true or false, got the string 'yes'"
    >>> label_problem(Task.REGRESSION, 12.5) is None
    True
    """
    if task is Task.BINARY:
        if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
            return None
        return f"a binary model's label is 0, 1, true or false, got {_described(value)}"
    if task is Task.REGRESSION or task is Task.POLICY:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return None
        if task is Task.POLICY:
            return f"a policy model's label is its action's reward, a finite number, got {_described(value)}"
        return f"a regression model's label is a finite number, got {_described(value)}"
    if isinstance(value, str) and value:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return None
    return f"a multiclass model's label is a class (an integer or a string), got {_described(value)}"


def _described(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


@dataclass
class LabelBatch:
    """Labels read from a file, and the rows refused (``"row 3: no request_id ..."``)."""

    labels: list[Label] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def rejected_summary(self) -> str:
        """The first rejections, for a one-line message."""
        shown = "; ".join(self.rejected[:SHOWN_REJECTIONS])
        return shown + ("; ..." if len(self.rejected) > SHOWN_REJECTIONS else "")


def read_label_file(
    path: str | Path, *, column: str = "label", id_column: str = "request_id", at: datetime
) -> LabelBatch:
    """The labels in a CSV or Parquet file, stamped as known at ``at``."""
    file = Path(path)
    if not file.exists():
        raise SourceError(f"{file}: not found")
    try:
        frame = pl.read_parquet(file) if file.suffix in (".parquet", ".pq") else pl.read_csv(file)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"{file}: cannot read: {exc}") from None
    for needed in (id_column, column):
        if needed not in frame.columns:
            raise SchemaError(f"{file}: no column {needed!r} (columns: {', '.join(frame.columns)})")
    batch = LabelBatch()
    for row, r in enumerate(frame.select(id_column, column).to_dicts(), start=1):
        request_id = "" if r[id_column] is None else str(r[id_column])
        try:  # Label refuses a missing or empty request id and a missing value
            batch.labels.append(Label(request_id=request_id, value=r[column], at=at))
        except SchemaError as err:
            batch.rejected.append(f"row {row}: {err}")
    return batch
