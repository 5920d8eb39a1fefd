"""Leakage guard: flag a feature that predicts the label suspiciously well on its own.

Point-in-time joins already keep a feature recorded after the prediction time
out of a training set. What they cannot see is a feature that *encodes* the
label (a "delay_minutes" column feeding a "delayed" label). This check scores
each feature alone against the label and names any whose single-feature ROC
AUC (binary labels; ``max(AUC, 1 - AUC)``) or absolute Spearman correlation
(numeric labels) exceeds a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["LEAKAGE_THRESHOLD", "LeakageFinding", "check_leakage", "leakage_scores"]

#: Single-feature AUC (or |Spearman rho|) above which a feature is flagged.
LEAKAGE_THRESHOLD = 0.95
#: Fewer labelled, non-null rows than this and a feature is not judged.
MIN_ROWS = 50


@dataclass(frozen=True)
class LeakageFinding:
    feature: str
    metric: str  # "auc" or "spearman"
    score: float
    rows: int

    @property
    def message(self) -> str:
        return (
            f"feature {self.feature!r} alone predicts the label with {self.metric} "
            f"{self.score:.3f} on {self.rows} rows: check it is known before the label"
        )

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "message": self.message}


def _score_column(x: pl.Series, y: pl.Series, binary: bool) -> tuple[str, float] | None:
    if x.dtype in (pl.String, pl.Categorical, pl.Enum, pl.Boolean):
        # Encode a category by its label mean: the best any model could do with it alone.
        frame = pl.DataFrame({"x": x.cast(pl.String), "y": y.cast(pl.Float64)})
        means = frame.group_by("x").agg(pl.col("y").mean().alias("m"))
        x = frame.join(means, on="x", how="left")["m"]
    elif not x.dtype.is_numeric():
        return None
    xv = x.cast(pl.Float64).to_numpy()
    yv = y.cast(pl.Float64).to_numpy()
    if np.unique(xv).size < 2 or np.unique(yv).size < 2:
        return None
    if binary:
        from sklearn.metrics import roc_auc_score  # imported lazily: slow to import

        auc = float(roc_auc_score(yv, xv))
        return "auc", max(auc, 1.0 - auc)
    rank_x = pl.Series(xv).rank("average").to_numpy()
    rank_y = pl.Series(yv).rank("average").to_numpy()
    rho = float(np.corrcoef(rank_x, rank_y)[0, 1])
    return "spearman", abs(rho)


def leakage_scores(frame: pl.DataFrame, label: str, features: Sequence[str]) -> list[LeakageFinding]:
    """The single-feature score of every feature against ``label`` (highest first).

    Features with fewer than ``MIN_ROWS`` labelled, non-null rows, or constant
    ones, are left out.
    """
    labelled = frame.filter(pl.col(label).is_not_null())
    y_all = labelled[label]
    binary = y_all.n_unique() == 2
    if binary and y_all.dtype == pl.Boolean:
        y_all = y_all.cast(pl.Int8)
    scores = []
    for name in features:
        mask = labelled[name].is_not_null()
        if labelled[name].dtype.is_float():
            mask = mask & labelled[name].is_not_nan()
        x = labelled[name].filter(mask)
        y = y_all.filter(mask)
        if x.len() < MIN_ROWS:
            continue
        scored = _score_column(x, y, binary)
        if scored is not None:
            scores.append(LeakageFinding(name, scored[0], scored[1], x.len()))
    return sorted(scores, key=lambda f: -f.score)


def check_leakage(
    frame: pl.DataFrame,
    label: str,
    features: Sequence[str],
    *,
    threshold: float = LEAKAGE_THRESHOLD,
) -> list[LeakageFinding]:
    """Features whose single-feature score against ``label`` exceeds ``threshold``.

    >>> import polars as pl
    >>> df = pl.DataFrame({"y": [0, 1] * 50, "leak": [0.1, 0.9] * 50, "ok": [1.0, 2.0, 2.0, 1.0] * 25})
    >>> [f.feature for f in check_leakage(df, "y", ["leak", "ok"])]
    ['leak']
    """
    return [f for f in leakage_scores(frame, label, features) if f.score > threshold]
