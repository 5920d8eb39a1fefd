"""The logs and the target policy on one grid: each round's cell, importance weight and policy mass.

A **cell** is a pair (action, position index), numbered ``action * K + k``
with ``K`` positions. For each round ``i`` with logged action ``a_i`` at
position ``k_i``:

* ``target[i]`` is the target policy's probability of ``a_i`` at ``k_i`` (in
  round ``i``'s context, for a per-round policy), and the **importance
  weight** is ``w_i = target[i] / propensity[i]``;
* the target policy's whole distribution at ``k_i`` is the round's **mass**
  over cells, which the direct method averages the reward model under.

**Positions of a per-action policy.** Its probability columns are position
indices 0..K-1. Logs whose positions include 0 are read as 0-based (position
p is column p); logs without a 0 are read as 1-based (position p is column
p - 1, as the Open Bandit Dataset's 1..3 map to ``pos0..pos2``). Pass
``position_base`` to decide it yourself. A position outside the columns is an
error. Logs without a position column are all at index 0. A per-round policy
names its positions itself; they are matched to the logs' as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from fourloops.errors import ConfigError, SchemaError
from fourloops.evaluation.ope.logs import LoggedBandit
from fourloops.evaluation.ope.policy import ActionPolicy, RoundPolicy, TargetPolicy

__all__ = ["Rounds", "align"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Rounds:
    """Everything the estimators need, one entry per round (see the module's docstring).

    ``unit`` is each round's bootstrap unit (its round id, or itself) and ``units`` their number.
    The target policy's mass is ``table`` (a per-action policy: the probability of every cell, the
    same in every round) or ``mass`` (a per-round policy: ``(row, cell, probability)`` entries).
    """

    reward: FloatArray
    propensity: FloatArray
    target: FloatArray
    cell: IntArray
    unit: IntArray
    units: int
    actions: tuple[str, ...]
    positions: tuple[int, ...]
    table: FloatArray | None = None
    mass: tuple[IntArray, IntArray, FloatArray] | None = None
    notes: tuple[str, ...] = ()

    @property
    def rounds(self) -> int:
        """The number of rounds."""
        return int(self.reward.size)

    @property
    def weight(self) -> FloatArray:
        """Importance weights: target probability / logged propensity of the logged action at its position."""
        return self.target / self.propensity

    @property
    def cells(self) -> int:
        """The number of cells (actions x positions)."""
        return len(self.actions) * len(self.positions)

    @property
    def cell_position(self) -> IntArray:
        """Each cell's position index."""
        return np.arange(self.cells, dtype=np.int64) % len(self.positions)


def _policy_codes(logs: LoggedBandit, actions: tuple[str, ...], what: str) -> IntArray:
    index = {a: i for i, a in enumerate(actions)}
    mapped = np.array([index.get(a, -1) for a in logs.actions], dtype=np.int64)
    if (mapped < 0).any():
        absent = int(np.flatnonzero(mapped < 0)[0])
        row = int(np.flatnonzero(logs.action == absent)[0])
        shown = ", ".join(actions[:10]) + (", ..." if len(actions) > 10 else "")
        raise SchemaError(
            f"the logs' action {logs.actions[absent]!r} (first at row {row}) is not in {what} "
            f"(its actions: {shown}); give it a probability, 0 if the policy never takes it"
        )
    codes: IntArray = mapped[logs.action]
    return codes


def _units(logs: LoggedBandit) -> tuple[IntArray, int]:
    if logs.round is None or logs.round_ids is None:
        return np.arange(logs.rounds, dtype=np.int64), logs.rounds
    return logs.round, len(logs.round_ids)


def _per_action(logs: LoggedBandit, policy: ActionPolicy, base: int | None, what: str) -> Rounds:
    k = policy.positions
    notes: list[str] = []
    if not logs.has_positions:
        if k > 1:
            raise SchemaError(
                f"{what} has {k} position columns ({', '.join(policy.columns)}) but the logs have no "
                "position column; name it (--position)"
            )
        index = np.zeros(logs.rounds, dtype=np.int64)
        base = 0
    else:
        if base is None:
            base = 0 if bool((logs.position == 0).any()) else 1
            if k > 1 or base == 1:
                notes.append(
                    f"log positions read as {base}-based: position {base} is the policy column "
                    f"{policy.columns[0]!r}" + ("" if base == 0 else " (the logs have no position 0)")
                )
        elif base not in (0, 1):
            raise ConfigError(f"position_base must be 0 or 1, got {base!r}")
        index = logs.position - base
        outside = (index < 0) | (index >= k)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise SchemaError(
                f"the logs' position {int(logs.position[row])} at row {row} has no column in {what} "
                f"(positions read as {base}-based; the policy has {k}: {', '.join(policy.columns)})"
            )
    action = _policy_codes(logs, policy.actions, what)
    units, count = _units(logs)
    return Rounds(
        reward=logs.reward,
        propensity=logs.propensity,
        target=policy.table[action, index],
        cell=action * k + index,
        unit=units,
        units=count,
        actions=policy.actions,
        positions=tuple(range(base, base + k)),
        table=policy.table.ravel().copy(),
        notes=tuple(notes),
    )


def _per_round(logs: LoggedBandit, policy: RoundPolicy, what: str) -> Rounds:
    notes: list[str] = []
    if logs.round is None or logs.round_ids is None:
        rounds = pl.Series("round", [str(i) for i in range(logs.rounds)], dtype=pl.Utf8)
        notes.append("the logs have no round id column: round ids are row numbers (from 0)")
    else:
        rounds = pl.Series("round", logs.round_ids, dtype=pl.Utf8)[logs.round]
    positions = tuple(sorted(set(policy.frame["position"].to_list()) | set(logs.position.tolist())))
    k = len(positions)
    pos_index = {p: i for i, p in enumerate(positions)}
    action = _policy_codes(logs, policy.actions, what)
    action_index = {a: i for i, a in enumerate(policy.actions)}
    frame = policy.frame.with_columns(
        pl.col("action").replace_strict(action_index, return_dtype=pl.Int64).alias("code"),
        pl.col("position").replace_strict(pos_index, return_dtype=pl.Int64).alias("k"),
    )
    logged = pl.DataFrame(
        {
            "row": np.arange(logs.rounds, dtype=np.int64),
            "round": rounds,
            "position": logs.position,
            "code": action,
        }
    )
    covered = frame.select("round", "position").unique()
    missing = logged.join(covered, on=["round", "position"], how="anti").sort("row")
    if missing.height:
        r = missing.row(0, named=True)
        raise SchemaError(
            f"round {r['round']!r} at position {r['position']} (row {r['row']} of the logs) has no "
            f"probabilities in {what} ({missing.height} rows lack them)"
        )
    target = (
        logged.join(
            frame.select("round", "position", "code", "probability"),
            on=["round", "position", "code"],
            how="left",
        )
        .sort("row")["probability"]
        .fill_null(0.0)
        .to_numpy()
        .astype(np.float64)
    )
    entries = logged.select("row", "round", "position").join(
        frame.filter(pl.col("probability") > 0).select("round", "position", "code", "k", "probability"),
        on=["round", "position"],
    )
    units, count = _units(logs)
    index = np.array([pos_index[p] for p in logs.position.tolist()], dtype=np.int64)
    return Rounds(
        reward=logs.reward,
        propensity=logs.propensity,
        target=target,
        cell=action * k + index,
        unit=units,
        units=count,
        actions=policy.actions,
        positions=positions,
        mass=(
            entries["row"].to_numpy().astype(np.int64),
            (entries["code"] * k + entries["k"]).to_numpy().astype(np.int64),
            entries["probability"].to_numpy().astype(np.float64),
        ),
        notes=tuple(notes),
    )


def align(
    logs: LoggedBandit, policy: TargetPolicy, *, position_base: int | None = None, what: str = "the policy"
) -> Rounds:
    """Put ``logs`` and ``policy`` on one grid (see the module's docstring for the position rule).

    Raises
    ------
    SchemaError
        A logged action is absent from the policy, a logged position has no policy column, or
        (per round) a logged round and position has no probabilities in the policy.
    """
    if isinstance(policy, ActionPolicy):
        return _per_action(logs, policy, position_base, what)
    return _per_round(logs, policy, what)
