"""Target policies: the probability the evaluated policy gives each action, at each position.

A policy file comes in one of two forms.

* **Per action** (context-free): one row per action, the action in the first
  column (or ``item_id``, ``action`` or ``route`` when present, or the column
  named), then one probability column per position, e.g.
  ``item_id,pos0,pos1,pos2``. Columns all named ``posN`` are ordered by ``N``;
  other names keep their file order. The i-th probability column is position
  index i; how logged positions map to it is decided when the policy meets the
  logs (:mod:`fourloops.evaluation.ope.align`). A single column
  (``action,probability``) is a policy for logs without positions.
* **Per round** (context-dependent): one row per round, action and position,
  ``round_id,action,position,probability``; an action a round does not list
  has probability 0 there. Positions are matched to the logs' positions as they
  are (no renumbering).

Every column of probabilities must be numbers in [0, 1], without nulls or NaN,
and the probabilities of one position (of one round, per round) must sum to 1
within :data:`SUM_TOLERANCE`; they are used as given, not renormalised.

>>> import polars as pl
>>> policy = read_policy(pl.DataFrame({"item_id": [0, 1], "pos0": [0.25, 0.75], "pos1": [0.5, 0.5]}))
>>> policy.actions, policy.columns, policy.table.tolist()
(('0', '1'), ('pos0', 'pos1'), [[0.25, 0.5], [0.75, 0.5]])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from fourloops.errors import SchemaError
from fourloops.evaluation.ope.logs import DEFAULT_ROUND, keys, read_frame, refuse_missing_ids

__all__ = ["SUM_TOLERANCE", "ActionPolicy", "RoundPolicy", "TargetPolicy", "read_policy"]

#: How far the probabilities of one position may sum from 1 (rounded files, e.g. to 5 decimals).
SUM_TOLERANCE = 1e-3
#: Columns that name the action in a per-action file, in order of preference (else the first column).
_ACTION_COLUMNS = ("item_id", "action", "route")
_LONG = ("action", "position", "probability")
_POS = re.compile(r"pos(?:ition)?_?(\d+)$")


@dataclass(frozen=True)
class ActionPolicy:
    """A context-free policy: ``table[a, k]`` is the probability of ``actions[a]`` at position index ``k``."""

    actions: tuple[str, ...]
    table: NDArray[np.float64]
    columns: tuple[str, ...]

    @property
    def positions(self) -> int:
        """The number of positions (probability columns)."""
        return int(self.table.shape[1])


@dataclass(frozen=True)
class RoundPolicy:
    """A per-round policy: ``frame`` has ``round`` (text), ``action`` (text), ``position`` (int) and
    ``probability``; ``actions`` are the distinct actions in order of first appearance."""

    frame: pl.DataFrame
    actions: tuple[str, ...]


#: Either form of target policy.
TargetPolicy = ActionPolicy | RoundPolicy


def _check_probabilities(values: NDArray[np.float64], column: str, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise SchemaError(f"{what}: column {column!r} is null or NaN at row {int(np.flatnonzero(bad)[0])}")
    bad = (values < 0) | (values > 1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaError(
            f"{what}: column {column!r} must hold probabilities in [0, 1]: row {row} has {values[row]}"
        )


def _probabilities(frame: pl.DataFrame, column: str, what: str) -> NDArray[np.float64]:
    series = frame[column]
    if not series.dtype.is_numeric():
        raise SchemaError(f"{what}: probability column {column!r} must hold numbers, not {series.dtype}")
    values = series.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64, copy=False)
    _check_probabilities(values, column, what)
    return values


def _action_column(frame: pl.DataFrame, action: str | None, what: str) -> str:
    if action is not None:
        if action not in frame.columns:
            raise SchemaError(
                f"{what}: no action column {action!r} (the columns are: {', '.join(frame.columns)})"
            )
        return action
    return next((c for c in _ACTION_COLUMNS if c in frame.columns), frame.columns[0])


def _read_per_action(frame: pl.DataFrame, action: str | None, what: str) -> ActionPolicy:
    name = _action_column(frame, action, what)
    columns = [c for c in frame.columns if c != name]
    if not columns:
        raise SchemaError(f"{what}: no probability column beside the action column {name!r}")
    numbered = [_POS.match(c.lower()) for c in columns]
    if all(numbered):
        columns = [c for _, c in sorted(zip([int(m[1]) for m in numbered if m], columns, strict=True))]
    labels = frame[name]
    refuse_missing_ids(labels, name, what)
    text = keys(labels)
    duplicated = text.is_duplicated()
    if duplicated.any():
        row = int(duplicated.arg_max() or 0)
        raise SchemaError(
            f"{what}: action {text[row]!r} has more than one row (row {row}); give one row per action"
        )
    table = np.column_stack([_probabilities(frame, c, what) for c in columns])
    sums = table.sum(axis=0)
    for column, total in zip(columns, sums, strict=True):
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise SchemaError(
                f"{what}: the probabilities of column {column!r} sum to {total:.6g}, not 1 "
                f"(the actions' probabilities at one position must sum to 1 within {SUM_TOLERANCE})"
            )
    return ActionPolicy(tuple(text.to_list()), table, tuple(columns))


def _read_per_round(frame: pl.DataFrame, round_id: str, what: str) -> RoundPolicy:
    for column in ("action", "position", round_id):
        refuse_missing_ids(frame[column], column, what)
    position = frame["position"]
    if not position.dtype.is_numeric() or bool(
        (position != position.round(0)).any() if position.dtype.is_float() else False
    ):
        raise SchemaError(f"{what}: column 'position' must hold whole numbers")
    probability = _probabilities(frame, "probability", what)
    long = pl.DataFrame(
        {
            "round": keys(frame[round_id]),
            "action": keys(frame["action"]),
            "position": position.cast(pl.Int64),
            "probability": probability,
        }
    )
    repeated = long.select("round", "action", "position").is_duplicated()
    if repeated.any():
        row = int(repeated.arg_max() or 0)
        r = long.row(row, named=True)
        raise SchemaError(
            f"{what}: round {r['round']!r}, action {r['action']!r}, position {r['position']} has more than "
            f"one row (row {row})"
        )
    sums = long.group_by("round", "position", maintain_order=True).agg(pl.col("probability").sum())
    off = sums.filter((pl.col("probability") - 1.0).abs() > SUM_TOLERANCE)
    if off.height:
        r = off.row(0, named=True)
        raise SchemaError(
            f"{what}: the probabilities of round {r['round']!r} at position {r['position']} sum to "
            f"{r['probability']:.6g}, not 1 (within {SUM_TOLERANCE})"
        )
    actions = tuple(long["action"].unique(maintain_order=True).to_list())
    return RoundPolicy(long, actions)


def read_policy(
    data: Any, *, action: str | None = None, round_id: str | None = None, what: str = "the policy"
) -> TargetPolicy:
    """Read and check a target policy (either form; see the module's docstring).

    Parameters
    ----------
    data:
        A Polars or pandas frame, an Arrow table, or a CSV/Parquet path.
    action:
        The action column of a per-action policy (default: ``item_id``, ``action`` or ``route``,
        whichever it has, else its first column).
    round_id:
        The round column of a per-round policy (default ``round_id``). A file with the columns
        ``action``, ``position`` and ``probability`` is per round and must have it.

    Raises
    ------
    SchemaError
        A column is missing, a probability is outside [0, 1] or missing, an action (or round,
        action and position) repeats, or a position's probabilities do not sum to 1.
    """
    frame = read_frame(data, what)
    if frame.height == 0:
        raise SchemaError(f"{what}: no rows")
    if all(c in frame.columns for c in _LONG):
        name = round_id or DEFAULT_ROUND
        if name not in frame.columns:
            raise SchemaError(
                f"{what}: has action, position and probability columns (per round) but no round id column "
                f"{name!r}"
            )
        return _read_per_round(frame, name, what)
    if round_id is not None:
        raise SchemaError(
            f"{what}: a per-round policy needs the columns {round_id}, action, position and probability "
            f"(the columns are: {', '.join(frame.columns)})"
        )
    return _read_per_action(frame, action, what)
