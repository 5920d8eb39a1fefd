"""MaxSegmentDrop judged on paired standard errors: two equally good models are rarely told apart in a
segment, a real loss in one segment is still caught, and the point-estimate rule it replaced is shown
to reject most equal candidates (simulated through ``evaluate_candidate``, as a training run judges).

Each history: 12 segments of 500 test rows, labels drawn from a true probability; the champion and the
candidate see it through independent noise of the same size (equally good). The gate's level is 5 %
shared by the segments, so with nothing to find it fails at most ~5 % of histories.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

import fourloops as fl
from fourloops.adaptation.evaluate import _segment_changes, evaluate_candidate
from fourloops.adaptation.gates import GateContext, evaluate_gates

SEGMENTS, ROWS, HISTORIES = 12, 500, 300


def _model(confidence: float | None) -> fl.Model:
    return fl.Model(
        "m",
        task="binary",
        entities=fl.FileSource("data/rows.parquet", timestamp="at"),
        request=fl.Contract({"shop": fl.String()}),
        label=fl.Label("y"),
        trainer=lambda X, y, params: None,
        segments=["shop"],
        gates=[fl.gates.MaxSegmentDrop(max_drop=0.03, min_size=200, confidence=confidence)],
    )


def _history(rng: np.random.Generator, hurt: float = 0.0) -> tuple[np.ndarray, ...]:
    n = SEGMENTS * ROWS
    shop = np.repeat([f"s{i:02d}" for i in range(SEGMENTS)], ROWS)
    signal = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-1.2 * signal))).astype(float)

    def score(noise: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(signal + rng.normal(scale=noise, size=n))))

    champion, candidate = score(1.0), score(1.0)
    if hurt:  # the candidate keeps only ``hurt`` of its signal in the first segment
        first = shop == "s00"
        candidate[first] = 1 / (1 + np.exp(-(hurt * signal[first] + rng.normal(size=first.sum()))))
    return y, champion, candidate, shop


def _fails(
    model: fl.Model, y: np.ndarray, champion: np.ndarray, candidate: np.ndarray, shop: np.ndarray
) -> bool:
    """The gate's verdict from the numbers a training run gives it: each segment's ROC-AUC for both
    models and the paired standard error of their difference (``_segment_changes``)."""
    test = pl.DataFrame({"shop": shop})
    points = {
        ("shop", s): {
            "n": int((shop == s).sum()),
            "roc_auc": roc_auc_score(y[shop == s], candidate[shop == s]),
        }
        for s in np.unique(shop)
    }
    champion_points = {
        k: {**v, "roc_auc": roc_auc_score(y[shop == k[1]], champion[shop == k[1]])} for k, v in points.items()
    }
    ctx = GateContext(
        task="binary",
        primary="roc_auc",
        metrics={},
        baseline={},
        champion={"roc_auc": roc_auc_score(y, champion)},
        segments=points,
        champion_segments=champion_points,
        segment_diff_se=_segment_changes(model, y, candidate, champion, test, points, seed=0),
    )
    [verdict] = evaluate_gates(model.gates, ctx)
    return not verdict.passed


def test_a_training_run_gives_the_gate_its_segments_standard_errors() -> None:
    y, champion, candidate, shop = _history(np.random.default_rng(3))
    _, ctx = evaluate_candidate(
        _model(0.95), y_train=y, y_test=y, candidate=candidate, champion=champion, champion_version=1,
        test=pl.DataFrame({"shop": shop}), seed=0,
    )  # fmt: skip
    assert set(ctx.segment_diff_se) == set(ctx.segments) and len(ctx.segments) == SEGMENTS
    assert all(0.01 < se["roc_auc"] < 0.1 for se in ctx.segment_diff_se.values())
    [verdict] = evaluate_gates(_model(0.95).gates, ctx)
    assert verdict.numbers["segments_judged"] == SEGMENTS and verdict.numbers["confidence"] == 0.95


@pytest.fixture(scope="module")
def histories() -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(7)
    return [_history(rng) for _ in range(HISTORIES)]


def test_two_equally_good_models_fail_the_gate_at_most_at_its_level(
    histories: list[tuple[np.ndarray, ...]],
) -> None:
    model = _model(0.95)
    failed = sum(_fails(model, *h) for h in histories)
    # Binomial: at a true rate of 5 %, 300 histories exceed 27 failures with probability < 0.1 %.
    assert failed <= stats.binom.ppf(0.999, HISTORIES, 0.05), failed


def test_the_point_estimate_rule_rejects_most_equal_candidates(
    histories: list[tuple[np.ndarray, ...]],
) -> None:
    model = _model(None)
    failed = sum(_fails(model, *h) for h in histories[:100])
    assert failed >= 50, failed  # why the gate judges intervals: on 500 rows a segment's AUC moves by ~0.03


def test_a_candidate_that_loses_one_segment_is_still_rejected() -> None:
    rng = np.random.default_rng(11)
    model = _model(0.95)
    failed = sum(_fails(model, *_history(rng, hurt=1e-9)) for _ in range(40))
    assert failed >= 36, failed  # ROC-AUC ~0.70 -> 0.5 in s00: caught in at least 90 % of histories
