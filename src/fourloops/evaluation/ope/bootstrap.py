"""Percentile bootstrap intervals for the estimators, resampling rounds.

Each replicate draws as many bootstrap units as there are, uniformly with
replacement (a unit is a round, or all rounds sharing a round id), from a NumPy
``Generator`` seeded by ``seed``. A replicate is a row of resampling counts;
the estimators' sums for a block of replicates are one sparse product
(counts x per-unit sums), so there is no Python loop over rounds, only over
blocks of replicates (sized to keep memory bounded). The reward model of DM
and DR is refitted in every replicate (it is a function of the same sums), so
their intervals include its estimation error. Replicates where an estimator is
undefined (SNIPS with no positive weight drawn) are left out; with none left
its interval is ``None``.

>>> import numpy as np
>>> from fourloops.evaluation.ope.align import Rounds
>>> rng = np.random.default_rng(0)
>>> rounds = Rounds(reward=rng.binomial(1, 0.3, 500).astype(float), propensity=np.full(500, 0.5),
...                 target=np.full(500, 0.5), cell=rng.integers(0, 2, 500), unit=np.arange(500), units=500,
...                 actions=("a", "b"), positions=(0,), table=np.array([0.5, 0.5]))
>>> low, high = intervals(rounds, replicates=200, confidence=0.95, seed=0)["ips"]
>>> bool(low < 0.3 < high)
True
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fourloops.errors import ConfigError
from fourloops.evaluation.ope.align import Rounds
from fourloops.evaluation.ope.estimators import ESTIMATORS, Sums, estimate, unit_matrix

__all__ = ["DEFAULT_CONFIDENCE", "DEFAULT_REPLICATES", "intervals", "replicate_estimates"]

DEFAULT_REPLICATES = 1000
DEFAULT_CONFIDENCE = 0.95
#: Largest number of entries of a (replicates x units) or (replicates x sums) block held at once.
_BLOCK = 1 << 22


def replicate_estimates(rounds: Rounds, *, replicates: int, seed: int) -> dict[str, NDArray[np.float64]]:
    """Every estimator on ``replicates`` bootstrap resamples of the rounds (``(replicates,)`` each)."""
    matrix = unit_matrix(rounds)
    units, width = matrix.shape
    block = max(1, min(replicates, _BLOCK // max(units, width)))
    rng = np.random.default_rng(seed)
    parts: dict[str, list[NDArray[np.float64]]] = {name: [] for name in ESTIMATORS}
    done = 0
    while done < replicates:
        b = min(block, replicates - done)
        draws = rng.integers(0, units, size=(b, units))
        offsets = (np.arange(b, dtype=np.int64) * units)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=b * units).reshape(b, units)
        totals = np.asarray((matrix.T @ counts.T.astype(np.float64)).T, dtype=np.float64)
        for name, values in estimate(Sums.from_totals(totals, rounds)).items():
            parts[name].append(values)
        done += b
    return {name: np.concatenate(values) for name, values in parts.items()}


def intervals(
    rounds: Rounds,
    *,
    replicates: int = DEFAULT_REPLICATES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict[str, tuple[float, float] | None]:
    """Each estimator's percentile interval at ``confidence`` (``None`` where no replicate is defined)."""
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence!r}")
    if replicates < 1:
        raise ConfigError(f"replicates must be at least 1, got {replicates!r}")
    tail = (1 - confidence) / 2
    found: dict[str, tuple[float, float] | None] = {}
    for name, values in replicate_estimates(rounds, replicates=replicates, seed=seed).items():
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            found[name] = None
            continue
        low, high = np.quantile(finite, [tail, 1 - tail])
        found[name] = (float(low), float(high))
    return found
