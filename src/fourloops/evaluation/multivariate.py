"""Multivariate drift: can a classifier tell the window's rows from the reference's?

Column-by-column tests miss a change in how features move *together* (each
marginal the same, their relation not). A domain classifier sees the joint
distribution: a gradient-boosted classifier (LightGBM, small and fast) learns,
on half of each sample, to tell reference rows from window rows, and scores
the other half. The held-out scores come from one model that never saw them,
so when both samples come from the same distribution they are exchangeable
between the groups and the held-out ROC-AUC has the Mann–Whitney null (mean
0.5, variance ``(n1 + n2 + 1) / (12 n1 n2)`` for the held-out group sizes).
Averaging k-fold AUCs instead is not valid under that null: measured here,
the folds' AUCs correlate at about 0.35, the average's variance is 1.6 times
the assumed one, and its false-alarm rate doubles. The window
drifted when the one-sided p-value is below alpha **and** the AUC reaches an
effect floor (0.55 by default: a classifier that is right 55 % of the time on
pairs). The features the classifier leaned on most (split gain) are named.

Rows that repeat one reading of a continuous column (requests of the same
hour share its weather) are one draw, not many: the split keeps such a
cluster on one side, and the null counts clusters, not rows.

Samples are drawn uniformly where the data lives (at most ``rows`` rows from
the reference, and from each window: every window's in one query where the
data has a row identity, see :mod:`fourloops.engines.duckdb_sample`); nothing
else is read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from scipy import stats as scipy_stats

from fourloops.evaluation.metrics_binary import roc_auc

__all__ = ["DomainClassifier", "MultivariateResult"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class MultivariateResult:
    """The domain classifier's verdict on one window."""

    statistic: float
    p_value: float
    drifted: bool
    top_features: tuple[str, ...]
    rows: tuple[int, int]
    threshold: float
    method: str = "domain_classifier"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "top_features": list(self.top_features),
            "rows": {"reference": self.rows[0], "window": self.rows[1]},
        }


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def _numbers(part: pa.ChunkedArray) -> FloatArray:
    """A column as floats: numbers as they are (integers beyond 2**53 rounded), booleans as 0 and 1,
    text that reads as a number as that number; anything else (other text, dates) NaN, as the
    monitor's own reading of a numeric column does (``TRY_CAST``)."""
    if _is_number(part.type) or pa.types.is_boolean(part.type):
        values = pc.cast(part, pa.float64(), safe=False)
    elif pa.types.is_string(part.type) or pa.types.is_large_string(part.type):
        values = pl.from_arrow(pc.cast(part, pa.string())).cast(pl.Float64, strict=False).to_arrow()
    else:
        return np.full(len(part), np.nan)
    return np.asarray(pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


def _matrix(
    tables: Sequence[pa.Table], columns: Sequence[str], numeric: Collection[str] = ()
) -> tuple[FloatArray, list[int]]:
    """Both samples stacked as one float matrix, and which of its columns are categories.

    A column of ``numeric`` (the profile's numeric columns), or of numbers in every table, is read
    as floats (:func:`_numbers`: a number that arrives as text is still that number). Any other
    column (text, booleans, dates) is a category: its values as text, coded by their rank among
    the distinct values of all the tables together, a missing value NaN. This is the matrix
    LightGBM's scikit-learn wrapper builds from a pandas frame of categories, made from Arrow
    directly: building the frame cost a third of a test.
    """
    values = np.empty((sum(t.num_rows for t in tables), len(columns)), dtype=np.float64)
    categorical = []
    for i, column in enumerate(columns):
        parts = [t.column(column) for t in tables]
        if column in numeric or all(_is_number(part.type) for part in parts):
            values[:, i] = np.concatenate([_numbers(part) for part in parts])
            continue
        text = pa.chunked_array([c for part in parts for c in pc.cast(part, pa.string()).chunks], pa.string())
        levels = pc.drop_null(pc.unique(text))
        codes = pc.index_in(text, pc.take(levels, pc.array_sort_indices(levels)), skip_nulls=True)
        values[:, i] = pc.cast(codes, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        categorical.append(i)
    return values, categorical


def _clusters(values: FloatArray, categorical: Sequence[int]) -> NDArray[np.int64]:
    """Which rows are repeats of one reading: an id per distinct value of the repeating continuous columns.

    A continuous column whose values repeat across rows (requests of one hour share that hour's
    weather) ties those rows together: a classifier could learn the reading on one half and meet it
    again on the other. Rows are grouped by the values of such columns (each row its own cluster
    when no column repeats), so the split keeps a cluster on one side. A column repeats when it has
    more than 20 distinct finite values but fewer than 90 % of its finite values are distinct.
    """
    repeating = []
    for i in range(values.shape[1]):
        if i in categorical:
            continue
        finite = values[:, i][np.isfinite(values[:, i])]
        distinct = np.unique(finite).size
        if finite.size and 20 < distinct < 0.9 * finite.size:
            repeating.append(i)
    if not repeating:
        return np.arange(values.shape[0])
    # one reading, one key: -0.0 as 0.0 and every NaN alike, then rows compared by their bytes
    readings = np.where(np.isnan(values[:, repeating]), np.nan, values[:, repeating] + 0.0)
    rows = np.ascontiguousarray(readings).view(np.dtype((np.void, 8 * len(repeating)))).ravel()
    return np.unique(rows, return_inverse=True)[1].astype(np.int64)


@dataclass(frozen=True)
class DomainClassifier:
    """Settings of the domain classifier (see the module docstring).

    >>> import numpy as np, pyarrow as pa
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(800, 2))
    >>> ref = pa.table({"a": x[:, 0], "b": x[:, 1]})
    >>> cur = pa.table({"a": x[:400, 0], "b": x[:400, 0]})  # b now follows a: same marginals, a new relation
    >>> result = DomainClassifier().test(ref, cur, ["a", "b"])
    >>> result.drifted, sorted(result.top_features)
    (True, ['a', 'b'])
    """

    rows: int = 1000
    alpha: float = 0.05
    floor: float = 0.55
    trees: int = 40
    seed: int = 0

    def lightgbm_params(self) -> dict[str, Any]:
        """The classifier's LightGBM settings (small and fast; one thread); ``trees`` is the rounds.

        63 bins a feature, not LightGBM's 255: the half a model learns from holds about ``rows``
        rows, too few to fill 255 bins (at least 3 rows each), and the fit costs a third less.
        """
        return {
            "objective": "binary",
            "num_leaves": 15,
            "max_bin": 63,
            "learning_rate": 0.1,
            "min_child_samples": 10,
            "seed": self.seed,
            "num_threads": 1,
            "verbose": -1,
            "num_iterations": self.trees,
        }

    def test(
        self, reference: pa.Table, window: pa.Table, columns: Sequence[str], numeric: Collection[str] = ()
    ) -> MultivariateResult | None:
        """The verdict, or ``None`` when either sample is too small to fit (fewer than 20 rows).

        ``numeric``: columns read as numbers whatever their type in either sample (the profile's
        numeric columns: one that arrives as text is compared as numbers, not as new categories).
        """
        import lightgbm

        n1, n2 = reference.num_rows, window.num_rows
        if n1 < 20 or n2 < 20 or not columns:
            return None
        values, categorical = _matrix([reference, window], columns, numeric)
        y = np.concatenate([np.zeros(n1), np.ones(n2)])
        rng = np.random.default_rng(self.seed)
        clusters = _clusters(values, categorical)
        held = np.zeros(n1 + n2, dtype=bool)
        for side in (0, 1):  # stratified halves, whole clusters on one side of the split
            ids = np.unique(clusters[y == side])
            chosen = rng.permutation(ids)[: max(1, ids.size // 2)]
            held |= (y == side) & np.isin(clusters, chosen)
        # LightGBM's own API on a float matrix: the model its scikit-learn wrapper fits on a frame
        params = self.lightgbm_params()
        train = lightgbm.Dataset(values[~held], y[~held], categorical_feature=categorical, params=params)
        model = lightgbm.train(params, train, keep_training_booster=True)
        scores = np.asarray(model.predict(values[held], num_threads=1))
        gain = np.asarray(model.feature_importance(importance_type="gain"), dtype=float)
        value = roc_auc(y[held], scores)
        auc = 0.5 if value is None else float(value)
        # Rows of one cluster are one draw, not many: the null's variance counts clusters.
        a = int(np.unique(clusters[held & (y == 0)]).size)
        b = int(np.unique(clusters[held & (y == 1)]).size)
        if a < 2 or b < 2 or np.all(held) or not np.any(held):
            return None
        sd = float(np.sqrt((a + b + 1) / (12.0 * a * b)))
        p_value = float(scipy_stats.norm.sf((auc - 0.5) / sd))
        order = np.argsort(-gain, kind="stable")
        top = tuple(columns[int(i)] for i in order[:5] if gain[i] > 0)
        drifted = p_value <= self.alpha and auc >= self.floor
        return MultivariateResult(auc, p_value, drifted, top, (n1, n2), self.floor)
