from __future__ import annotations

import pytest
from scipy import stats

import fourloops as fl
from fourloops.adaptation.gates import GateContext, evaluate_gates
from fourloops.definitions.gates import parse_size
from fourloops.errors import DefinitionError


def ctx(**kw: object) -> GateContext:
    base: dict[str, object] = {
        "task": "binary",
        "primary": "roc_auc",
        "metrics": {"roc_auc": 0.70, "log_loss": 0.50, "ece": 0.02},
        "baseline": {"roc_auc": 0.50, "log_loss": 0.55},
    }
    base.update(kw)
    return GateContext(**base)  # type: ignore[arg-type]


def verdict(gate: fl.gates.Gate, c: GateContext) -> tuple[bool, dict]:  # type: ignore[type-arg]
    [v] = evaluate_gates([gate], c)
    return v.passed, v.numbers


def test_no_regression_uses_the_pessimistic_end_of_the_interval() -> None:
    champion = {"roc_auc": 0.705, "log_loss": 0.49}
    # Point estimate is only 0.005 worse but the interval reaches -0.02: blocked at max_drop 0.01.
    c = ctx(champion=champion, champion_version=3, diff_ci={"roc_auc": (-0.005, -0.02, 0.01)})
    passed, numbers = verdict(fl.gates.NoRegression(max_drop=0.01), c)
    assert not passed and numbers["ci_low"] == -0.02 and numbers["champion_version"] == 3
    assert verdict(fl.gates.NoRegression(max_drop=0.03), c)[0]
    # For a loss (lower is better) the pessimistic end is the upper bound of (candidate - champion).
    c = ctx(champion=champion, diff_ci={"log_loss": (0.01, 0.0, 0.02)})
    assert not verdict(fl.gates.NoRegression("log_loss", max_drop=0.015), c)[0]
    assert verdict(fl.gates.NoRegression("log_loss", max_drop=0.025), c)[0]
    # Relative bound: 5% of the champion's 0.49.
    assert verdict(fl.gates.NoRegression("log_loss", max_drop=0.05, relative=True), c)[0]


def test_no_champion_passes_regression_gates() -> None:
    assert verdict(fl.gates.NoRegression(), ctx())[0]
    assert verdict(fl.gates.MaxSegmentDrop(), ctx())[0]


def test_baseline_guardrail_calibration_latency_size_leakage() -> None:
    c = ctx(
        ece=0.03,
        latency_p99_ms=2.5,
        artifact_size=5_000_000,
        leakage=[{"feature": "leak", "metric": "auc", "score": 0.99, "rows": 100}],
    )
    assert verdict(fl.gates.BeatsBaseline(min_lift=0.1), c)[0]
    assert not verdict(fl.gates.BeatsBaseline(min_lift=0.3), c)[0]
    assert verdict(fl.gates.BeatsBaseline("log_loss", min_lift=0.04), c)[0]
    assert not verdict(fl.gates.Guardrail("log_loss", max=0.45), c)[0]
    assert verdict(fl.gates.Guardrail("roc_auc", min=0.6, max=0.9), c)[0]
    assert verdict(fl.gates.MaxCalibrationError(0.05), c)[0]
    assert not verdict(fl.gates.MaxCalibrationError(0.01), c)[0]
    assert verdict(fl.gates.LatencyBudget(p99_ms=3), c)[0]
    assert not verdict(fl.gates.LatencyBudget(p99_ms=2), c)[0]
    assert verdict(fl.gates.MaxArtifactSize("5MB"), c)[0]
    assert not verdict(fl.gates.MaxArtifactSize("4.9MB"), c)[0]
    passed, numbers = verdict(fl.gates.NoLeakage(), c)
    assert not passed and numbers["flagged"][0]["feature"] == "leak"


def test_segment_drop_names_the_worst_segment_and_skips_small_ones() -> None:
    c = ctx(
        champion={"roc_auc": 0.7},
        segments={
            ("origin", "EWR"): {"n": 1000, "roc_auc": 0.60},
            ("origin", "JFK"): {"n": 1000, "roc_auc": 0.72},
            ("origin", "LGA"): {"n": 10, "roc_auc": 0.10},
        },
        champion_segments={
            ("origin", "EWR"): {"n": 1000, "roc_auc": 0.66},
            ("origin", "JFK"): {"n": 1000, "roc_auc": 0.70},
            ("origin", "LGA"): {"n": 10, "roc_auc": 0.90},
        },
    )
    passed, numbers = verdict(fl.gates.MaxSegmentDrop(max_drop=0.05, min_size=100), c)
    assert not passed
    assert numbers["worst_segment"] == "origin=EWR" and numbers["segments_too_small"] == 1
    assert abs(numbers["worst_change"] + 0.06) < 1e-12
    assert verdict(fl.gates.MaxSegmentDrop(max_drop=0.07, min_size=100), c)[0]


def test_gate_definitions_validate() -> None:
    assert parse_size("50MB") == 50_000_000 and parse_size("1KiB") == 1024 and parse_size(10) == 10
    with pytest.raises(DefinitionError):
        parse_size("lots")
    with pytest.raises(DefinitionError):
        fl.gates.Guardrail("log_loss")
    with pytest.raises(DefinitionError):
        fl.gates.NoRegression(max_drop=-1)
    assert fl.gates.NoRegression(max_drop=0.01).to_dict()["gate"] == "no_regression"


def test_max_segment_drop_fails_a_segment_only_when_its_loss_is_shown() -> None:
    """With standard errors, the optimistic end of each change's interval (Bonferroni over the judged
    segments) must be a loss beyond max_drop; without them, the point estimate decides."""
    points = {("origin", o): {"n": 1000, "roc_auc": 0.70} for o in ("EWR", "JFK", "LGA")}
    candidate = {**points, ("origin", "EWR"): {"n": 1000, "roc_auc": 0.62}}  # 0.08 below the champion
    noisy = {key: {"roc_auc": 0.04} for key in points}
    c = ctx(champion={"roc_auc": 0.7}, segments=candidate, champion_segments=points, segment_diff_se=noisy)
    passed, numbers = verdict(fl.gates.MaxSegmentDrop(max_drop=0.03, min_size=100), c)
    z = stats.norm.ppf(1 - 0.05 / 3)  # one-sided 5 % shared by three segments
    assert passed and numbers["worst_segment"] == "origin=EWR"
    assert abs(numbers["worst_bound"] - (-0.08 + z * 0.04)) < 1e-9 and numbers["segments_judged"] == 3
    sure = {key: {"roc_auc": 0.01} for key in points}
    c = ctx(champion={"roc_auc": 0.7}, segments=candidate, champion_segments=points, segment_diff_se=sure)
    passed, numbers = verdict(fl.gates.MaxSegmentDrop(max_drop=0.03, min_size=100), c)
    assert not passed and numbers["worst_segment"] == "origin=EWR"
    assert not verdict(fl.gates.MaxSegmentDrop(max_drop=0.03, min_size=100, confidence=None), c)[0]
    with pytest.raises(DefinitionError, match="confidence in"):
        fl.gates.MaxSegmentDrop(confidence=1.5)
