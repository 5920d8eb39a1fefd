"""The four estimators of a target policy's value, from sums over the rounds.

The **value** of a target policy π is the mean reward it would collect on the
logged rounds' contexts and positions: ``V = E_i[ sum_a π(a | i, k_i) r(i, a, k_i) ]``.
With ``n`` rounds, importance weights ``w_i = π(a_i | i, k_i) / p_i`` (target
probability over logged propensity of the logged action ``a_i`` at its position
``k_i``) and a reward model ``q(a, k)``:

* **DM** (direct method): ``1/n sum_i sum_a π(a | i, k_i) q(a, k_i)``;
* **IPS**: ``1/n sum_i w_i r_i``;
* **SNIPS** (self-normalised IPS): ``sum_i w_i r_i / sum_i w_i`` (``None`` when every weight is 0);
* **DR** (doubly robust): ``DM + 1/n sum_i w_i (r_i - q(a_i, k_i))``.

The reward model is **tabular**: ``q(a, k)`` is the mean logged reward of
action ``a`` at position ``k``; a cell the logs never contain falls back to the
mean reward at position ``k``, then to the mean reward of all rounds. It uses
no context, so DM is unbiased only when the reward does not depend on the
context beyond the action and position (or the target policy does not either);
IPS and SNIPS assume only that the logged propensities are right and that the
logger gave every (action, position) the target policy takes a positive
probability (common support; see ``unsupported_mass`` in the diagnostics).
SNIPS trades a small bias for less variance; DR is unbiased when either the
propensities or the reward model are right. With this tabular model, DR equals
DM whenever every cell the target policy takes was logged and the logged
propensity is constant within each cell (as under uniform logging): the
correction term then sums to zero cell by cell.

Every estimator is a function of a handful of sums (:class:`Sums`), so the
point estimate and all bootstrap replicates (the same sums under resampling
counts) are one vectorised computation.

>>> import numpy as np
>>> from fourloops.evaluation.ope.align import Rounds
>>> rounds = Rounds(reward=np.array([1.0, 0.0, 1.0]), propensity=np.full(3, 0.5),
...                 target=np.array([1.0, 0.0, 1.0]), cell=np.array([0, 1, 0]), unit=np.arange(3),
...                 units=3, actions=("a", "b"), positions=(0,), table=np.array([1.0, 0.0]))
>>> {name: round(float(v[0]), 4) for name, v in estimate(Sums.of(rounds)).items()}
{'dm': 1.0, 'ips': 1.3333, 'snips': 1.0, 'dr': 1.0}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from fourloops.evaluation.ope.align import Rounds

__all__ = ["ESTIMATORS", "Sums", "estimate", "reward_model", "unit_matrix"]

FloatArray = NDArray[np.float64]
#: The estimators, in report order.
ESTIMATORS = ("dm", "ips", "snips", "dr")


def unit_matrix(rounds: Rounds) -> sparse.csr_matrix:
    """Per bootstrap unit, its sums: count, reward and weight per cell, policy mass per cell, and Σ w·r.

    Columns ``[0, C)`` count rounds per cell, ``[C, 2C)`` sum rewards, ``[2C, 3C)`` sum weights, then
    (per-round policies only) ``[3C, 4C)`` the policy's mass; the last column is Σ w·r.
    """
    c, n = rounds.cells, rounds.rounds
    w = rounds.weight
    rows = [rounds.unit] * 3
    cols = [rounds.cell, rounds.cell + c, rounds.cell + 2 * c]
    vals = [np.ones(n), rounds.reward, w]
    width = 3 * c + 1
    if rounds.mass is not None:
        row, cell, prob = rounds.mass
        rows.append(rounds.unit[row])
        cols.append(cell + 3 * c)
        vals.append(prob)
        width = 4 * c + 1
    rows.append(rounds.unit)
    cols.append(np.full(n, width - 1, dtype=np.int64))
    vals.append(w * rounds.reward)
    matrix = sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(rounds.units, width)
    )
    return matrix.tocsr()


@dataclass(frozen=True)
class Sums:
    """The sums every estimator needs, for ``b`` samples at once (one row per sample).

    ``count``, ``reward``, ``weight`` and ``mass`` are ``(b, cells)``: rounds, summed rewards,
    summed importance weights, and the target policy's summed probability of each cell over the
    rounds at that cell's position; ``weighted_reward`` is ``(b,)``: Σ w·r.
    """

    count: FloatArray
    reward: FloatArray
    weight: FloatArray
    mass: FloatArray
    weighted_reward: FloatArray
    positions: int

    @classmethod
    def from_totals(cls, totals: FloatArray, rounds: Rounds) -> Sums:
        """Sums from rows of :func:`unit_matrix` totals (``(b, width)``, one row per sample)."""
        c, k = rounds.cells, len(rounds.positions)
        count, reward, weight = totals[:, :c], totals[:, c : 2 * c], totals[:, 2 * c : 3 * c]
        if rounds.table is not None:
            per_position = count.reshape(len(count), -1, k).sum(axis=1)
            mass = per_position[:, rounds.cell_position] * rounds.table
        else:
            mass = totals[:, 3 * c : 4 * c]
        return cls(count, reward, weight, mass, totals[:, -1], k)

    @classmethod
    def of(cls, rounds: Rounds) -> Sums:
        """The sums of the rounds themselves (``b = 1``)."""
        totals = np.asarray(unit_matrix(rounds).sum(axis=0), dtype=np.float64)
        return cls.from_totals(totals, rounds)

    @property
    def n(self) -> FloatArray:
        """Rounds per sample."""
        total: FloatArray = self.count.sum(axis=1)
        return total


def reward_model(sums: Sums) -> FloatArray:
    """The tabular reward model ``q`` per sample and cell, with the position and global fallbacks."""
    b, k = len(sums.count), sums.positions
    n = sums.n
    overall = np.divide(sums.reward.sum(axis=1), n, out=np.zeros(b), where=n > 0)
    pos_count = sums.count.reshape(b, -1, k).sum(axis=1)
    pos_reward = sums.reward.reshape(b, -1, k).sum(axis=1)
    pos_mean = np.where(pos_count > 0, pos_reward / np.where(pos_count > 0, pos_count, 1.0), overall[:, None])
    fallback = np.tile(pos_mean, sums.count.shape[1] // k)
    q: FloatArray = np.where(
        sums.count > 0, sums.reward / np.where(sums.count > 0, sums.count, 1.0), fallback
    )
    return q


def estimate(sums: Sums) -> dict[str, FloatArray]:
    """DM, IPS, SNIPS and DR per sample (NaN where undefined: SNIPS when every weight is 0)."""
    n = np.where(sums.n > 0, sums.n, np.nan)
    q = reward_model(sums)
    total_weight = sums.weight.sum(axis=1)
    dm = (q * sums.mass).sum(axis=1) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        snips = np.where(total_weight > 0, sums.weighted_reward / total_weight, np.nan)
    return {
        "dm": dm,
        "ips": sums.weighted_reward / n,
        "snips": snips,
        "dr": dm + (sums.weighted_reward - (q * sums.weight).sum(axis=1)) / n,
    }
