"""Logged bandit data: each round's action, its position, the probability it had, and its reward.

Each row of the logs is one **round**: the logging policy chose ``action``
for one slot ``position`` (absent: every round at position 0), with
probability ``propensity``, and observed ``reward``. A round id column
(default ``round_id``, when present) names the context a per-round target
policy is given for; rows sharing a round id are also resampled together by
the bootstrap. Rows are counted from 0 in error messages.

Logs may also carry the logging policy's **action distribution** of each
round (a ``distribution`` column, as a decision model's event log has it:
JSON text or a struct mapping actions to probabilities, with the mass of the
actions it leaves out in ``distribution_rest``). Then every round's
distribution is checked (:mod:`fourloops.storage.events.decisions`): it must
sum to one, give the chosen action a positive probability and agree with the
logged propensity; logs with rows that break a rule are refused, with one
line naming the rows, the rules and how many rows break each.

>>> import polars as pl
>>> logs = read_logs(pl.DataFrame({"action": ["a", "b", "a"], "reward": [1, 0, 0], "propensity": 0.5}))
>>> logs.rounds, logs.actions, logs.action.tolist(), logs.position.tolist()
(3, ('a', 'b'), [0, 1, 0], [0, 0, 0])
>>> read_logs(pl.DataFrame({"action": ["a"], "reward": [1], "propensity": [0.0]}))
Traceback (most recent call last):
...
fourloops.errors.SchemaError: the logs: the propensity column 'propensity' must be in (0, 1]: row 0 has 0.0
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.typing import NDArray

from fourloops.errors import ConfigError, SchemaError, SourceError
from fourloops.storage.events.decisions import distribution_problem, rejection_message

__all__ = [
    "DEFAULT_DISTRIBUTION",
    "DEFAULT_ROUND",
    "LoggedBandit",
    "keys",
    "read_frame",
    "read_logs",
    "refuse_missing_ids",
]

#: The round id column read when the logs have one and none is named.
DEFAULT_ROUND = "round_id"
#: The action distribution column read when the logs have one and none is named (and its rest's).
DEFAULT_DISTRIBUTION = "distribution"
_REST_SUFFIX = "_rest"
#: The position column read when the logs have one and none is named.
_DEFAULT_POSITION = "position"
_CSV = (".csv", ".csv.gz", ".tsv", ".txt")
_PARQUET = (".parquet", ".pq")


def read_frame(data: Any, what: str) -> pl.DataFrame:
    """A Polars frame of ``data``: a Polars/pandas frame, an Arrow table, or a CSV/Parquet path."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, pa.Table):
        frame = pl.from_arrow(data)
        assert isinstance(frame, pl.DataFrame)
        return frame
    if isinstance(data, str | Path):
        return _read_path(Path(data), what)
    if type(data).__module__.split(".")[0] == "pandas":
        return pl.from_pandas(data)
    raise ConfigError(
        f"{what}: give a Polars or pandas frame, an Arrow table or a CSV/Parquet path, "
        f"got {type(data).__name__}"
    )


def _read_path(path: Path, what: str) -> pl.DataFrame:
    if not path.is_file():
        raise SourceError(f"{what}: file {str(path)!r} not found")
    name = path.name.lower()
    try:
        if name.endswith(_PARQUET):
            return pl.read_parquet(path)
        if name.endswith(_CSV):
            return pl.read_csv(path, infer_schema_length=None, separator="\t" if ".tsv" in name else ",")
    except (pl.exceptions.PolarsError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceError(f"{what}: cannot read {str(path)!r}: {first}") from err
    raise SourceError(f"{what}: {str(path)!r} is neither CSV (.csv, .csv.gz, .tsv) nor Parquet (.parquet)")


def keys(series: pl.Series) -> pl.Series:
    """Action labels as text; whole-number floats as integers first (``3.0`` in one file is ``3``)."""
    if series.dtype.is_float():
        values = series.drop_nulls().drop_nans()
        whole = values.is_finite() & (values == values.round(0)) & (values.abs() < 2.0**63)
        if values.len() == 0 or bool(whole.all()):
            series = series.fill_nan(None).cast(pl.Int64)
    return series.cast(pl.Utf8)


def refuse_missing_ids(series: pl.Series, column: str, what: str) -> None:
    """``SchemaError`` naming the first row whose id (an action, a round) is null, NaN or infinite."""
    bad = series.is_null()
    if series.dtype.is_float():
        bad = bad | ~series.is_finite()
    if bool(bad.any()):
        row = int(bad.arg_max() or 0)
        raise SchemaError(f"{what}: the {column!r} column is null, NaN or infinite at row {row}")


def _column(frame: pl.DataFrame, name: str, role: str, what: str) -> pl.Series:
    if name not in frame.columns:
        shown = ", ".join(frame.columns[:20]) + (", ..." if frame.width > 20 else "")
        raise SchemaError(f"{what}: no {role} column {name!r} (the columns are: {shown})")
    return frame[name]


def _first_bad(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _numbers(series: pl.Series, role: str, what: str) -> NDArray[np.float64]:
    if series.dtype == pl.Boolean:
        series = series.cast(pl.Float64)
    if not series.dtype.is_numeric():
        raise SchemaError(f"{what}: the {role} column {series.name!r} must hold numbers, not {series.dtype}")
    values = series.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64, copy=False)
    bad = ~np.isfinite(values)
    if bad.any():
        row = _first_bad(bad)
        raise SchemaError(
            f"{what}: the {role} column {series.name!r} is null, NaN or infinite at row {row} "
            f"({int(bad.sum())} rows in all); every round needs a {role}"
        )
    return values


def _codes(series: pl.Series) -> tuple[tuple[str, ...], NDArray[np.int64]]:
    """Distinct labels in order of first appearance, and each row's index into them."""
    labels = keys(series)
    distinct = labels.unique(maintain_order=True)
    index = {label: i for i, label in enumerate(distinct.to_list())}
    codes = labels.replace_strict(index, return_dtype=pl.Int64).to_numpy()
    return tuple(distinct.to_list()), codes.astype(np.int64, copy=False)


@dataclass(frozen=True)
class LoggedBandit:
    """Validated logs, one entry per round (row).

    ``actions`` are the distinct logged actions as text (in order of first
    appearance) and ``action`` each round's index into them; ``position`` is
    the position as logged; ``round_ids``/``round`` the distinct round ids and
    each round's index into them (``None`` without a round id column);
    ``columns`` the column names read, for messages.
    """

    actions: tuple[str, ...]
    action: NDArray[np.int64]
    position: NDArray[np.int64]
    reward: NDArray[np.float64]
    propensity: NDArray[np.float64]
    round_ids: tuple[str, ...] | None
    round: NDArray[np.int64] | None
    columns: dict[str, str | None]

    @property
    def rounds(self) -> int:
        """The number of rounds (rows)."""
        return int(self.reward.size)

    @property
    def has_positions(self) -> bool:
        """Whether the logs had a position column."""
        return self.columns.get("position") is not None


def read_logs(
    data: Any,
    *,
    action: str = "action",
    position: str | None = None,
    reward: str = "reward",
    propensity: str = "propensity",
    round_id: str | None = None,
    distribution: str | None = None,
    what: str = "the logs",
) -> LoggedBandit:
    """Read and check logged bandit data.

    Parameters
    ----------
    data:
        A Polars or pandas frame, an Arrow table, or a CSV/Parquet path.
    action, reward, propensity:
        The columns of the logged action, its reward (a number; no nulls, no NaN) and the
        probability the logging policy gave that action at that position (in ``(0, 1]``).
    position:
        The position (slot) column, whole numbers; default ``position`` if the logs have one,
        else every round is at position 0.
    round_id:
        The round id column; default ``round_id`` if the logs have one, else none.
    distribution:
        The logging policy's action distribution per round (JSON text or a struct of action ->
        probability; the mass of unlisted actions in ``<distribution>_rest``); default
        ``distribution`` if the logs have one. Every round's is checked (see the module docstring).

    Raises
    ------
    SchemaError
        A column is missing or holds the wrong values; the message names the column, the first
        offending row and the rule. Rows whose action distribution breaks its rules are named
        with the rule and counted. The logs must not be empty.
    """
    frame = read_frame(data, what)
    if frame.height == 0:
        raise SchemaError(f"{what}: no rows (nothing to evaluate)")
    action_col = _column(frame, action, "action", what)
    reward_values = _numbers(_column(frame, reward, "reward", what), "reward", what)
    prop_values = _numbers(_column(frame, propensity, "propensity", what), "propensity", what)
    bad = (prop_values <= 0) | (prop_values > 1)
    if bad.any():
        row = _first_bad(bad)
        raise SchemaError(
            f"{what}: the propensity column {propensity!r} must be in (0, 1]: "
            f"row {row} has {float(prop_values[row])!r}"
        )
    refuse_missing_ids(action_col, action, what)
    if position is None and _DEFAULT_POSITION in frame.columns:
        position = _DEFAULT_POSITION
    if position is None:
        positions = np.zeros(frame.height, dtype=np.int64)
    else:
        values = _numbers(_column(frame, position, "position", what), "position", what)
        fractional = values != np.round(values)
        if fractional.any():
            row = _first_bad(fractional)
            raise SchemaError(
                f"{what}: the position column {position!r} must hold whole numbers: "
                f"row {row} has {float(values[row])!r}"
            )
        positions = values.astype(np.int64)
    if round_id is None and DEFAULT_ROUND in frame.columns:
        round_id = DEFAULT_ROUND
    round_ids: tuple[str, ...] | None = None
    round_codes: NDArray[np.int64] | None = None
    if round_id is not None:
        round_col = _column(frame, round_id, "round id", what)
        if round_col.null_count():
            row = _first_bad(round_col.is_null().to_numpy())
            raise SchemaError(f"{what}: the round id column {round_id!r} is null at row {row}")
        round_ids, round_codes = _codes(round_col)
    if distribution is None and DEFAULT_DISTRIBUTION in frame.columns:
        distribution = DEFAULT_DISTRIBUTION
    if distribution is not None:
        _check_distributions(frame, distribution, action_col, prop_values, what)
    actions, action_codes = _codes(action_col)
    return LoggedBandit(
        actions,
        action_codes,
        positions,
        reward_values,
        prop_values,
        round_ids,
        round_codes,
        {
            "action": action,
            "position": position,
            "reward": reward,
            "propensity": propensity,
            "round": round_id,
            "distribution": distribution,
        },
    )


def _mappings(series: pl.Series, what: str) -> list[Any]:
    """Each row's distribution as a mapping (None where null or unreadable: that breaks a rule)."""
    if series.dtype == pl.String:
        out: list[Any] = []
        for text in series.to_list():
            try:
                out.append(None if text is None else json.loads(text))
            except ValueError:
                out.append(None)
        return out
    if isinstance(series.dtype, pl.Struct):
        return [
            None if d is None else {k: v for k, v in d.items() if v is not None} for d in series.to_list()
        ]
    raise SchemaError(
        f"{what}: the distribution column {series.name!r} must hold JSON objects or structs of action -> "
        f"probability, not {series.dtype}"
    )


def _check_distributions(
    frame: pl.DataFrame, column: str, actions: pl.Series, propensity: NDArray[np.float64], what: str
) -> None:
    """Refuse logs whose rows carry an action distribution that breaks a rule (all such rows named)."""
    mappings = _mappings(_column(frame, column, "distribution", what), what)
    rest_name = column + _REST_SUFFIX
    rests = frame[rest_name].to_list() if rest_name in frame.columns else [None] * frame.height
    chosen = keys(actions).to_list()
    problems = []
    for row, (mapping, rest, action) in enumerate(zip(mappings, rests, chosen, strict=True)):
        problem = distribution_problem(
            mapping if isinstance(mapping, dict) else {}, rest, str(action), float(propensity[row])
        )
        if problem is not None:
            problems.append((f"row {row}", *problem))
    if problems:
        raise SchemaError(rejection_message(what, problems, frame.height))
