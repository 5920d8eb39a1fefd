from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from fourloops.ingestion.leakage import check_leakage


def frame(n: int = 2000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pl.DataFrame(
        {
            "y": y,
            "leak": y * 3.0 + rng.normal(0, 0.2, n),  # nearly the label itself
            "weak": y * 0.3 + rng.normal(0, 1, n),
            "noise": rng.normal(0, 1, n),
            "cat_leak": np.where(y == 1, "late", "on_time"),
        }
    )


def test_flags_only_the_leaky_features_with_sklearn_auc() -> None:
    df = frame()
    findings = {f.feature: f for f in check_leakage(df, "y", ["leak", "weak", "noise", "cat_leak"])}
    assert set(findings) == {"leak", "cat_leak"}
    expected = roc_auc_score(df["y"].to_numpy(), df["leak"].to_numpy())
    assert abs(findings["leak"].score - max(expected, 1 - expected)) < 1e-6
    assert findings["leak"].rows == 2000
    assert "'leak'" in findings["leak"].message


def test_negatively_related_feature_is_flagged_too() -> None:
    df = frame().with_columns((-pl.col("leak")).alias("neg"))
    assert [f.feature for f in check_leakage(df, "y", ["neg"])] == ["neg"]


def test_nulls_and_unlabelled_rows_are_ignored() -> None:
    df = frame().with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("leak")).alias("leak"),
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise(pl.col("y")).alias("y"),
    )
    [finding] = check_leakage(df, "y", ["leak"])
    kept = df.filter(pl.col("y").is_not_null() & pl.col("leak").is_not_null())
    assert finding.rows == kept.height
    auc = roc_auc_score(kept["y"].to_numpy(), kept["leak"].to_numpy())
    assert abs(finding.score - auc) < 1e-6


def test_numeric_label_uses_spearman() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    df = pl.DataFrame({"y": x**3 + rng.normal(0, 0.01, 500), "x": x, "z": rng.normal(size=500)})
    findings = check_leakage(df, "y", ["x", "z"])
    assert [f.feature for f in findings] == ["x"]
    rho = spearmanr(df["x"].to_numpy(), df["y"].to_numpy()).statistic
    assert abs(findings[0].score - abs(rho)) < 1e-9


def test_too_few_rows_are_not_judged() -> None:
    df = frame(n=20)
    assert check_leakage(df, "y", ["leak"]) == []
