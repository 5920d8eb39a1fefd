"""Evaluating a candidate's gates: a verdict per gate, with every number that led to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

from fourloops.definitions import gates as g
from fourloops.evaluation import higher_is_better
from fourloops.registry.records import GateVerdict

__all__ = ["GateContext", "GateVerdict", "evaluate_gates"]


@dataclass
class GateContext:
    """The numbers gates are judged on (all from the test rows unless stated)."""

    task: str  # binary, multiclass or regression: which metrics exist and which way is better
    primary: str
    metrics: dict[str, Any]
    baseline: dict[str, Any]
    champion: dict[str, Any] | None = None  # champion's metrics on the same rows
    champion_version: int | None = None
    #: metric -> (candidate - champion point, CI low, CI high) from a paired bootstrap
    diff_ci: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    #: (column, value) -> {"n": int, metric: value} for candidate and champion
    segments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    champion_segments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: (column, value) -> {metric: standard error of (candidate - champion)}, paired bootstrap
    segment_diff_se: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    ece: float | None = None
    latency_p99_ms: float | None = None
    artifact_size: int | None = None
    leakage: list[dict[str, Any]] = field(default_factory=list)
    #: Decision models: the off-policy evidence (a ``policy_evaluation.PolicyEvidence``).
    policy: Any = None


def _better(ctx: GateContext, metric: str) -> int:
    """+1 when larger values of ``metric`` are better, -1 otherwise (the metric catalogue decides)."""
    if ctx.task == "policy":  # values of policies are rewards; the reward model's errors are not
        return -1 if metric.startswith("reward_") else 1
    return 1 if higher_is_better(ctx.task, metric) else -1


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _no_regression(gate: g.NoRegression, ctx: GateContext) -> GateVerdict:
    metric = gate.metric or ctx.primary
    if ctx.champion is None:
        return GateVerdict(gate.kind, True, f"no champion to compare {metric} with", {"metric": metric})
    point, low, high = ctx.diff_ci[metric]
    sign = _better(ctx, metric)
    # The pessimistic end of the interval, as "how much better the candidate is".
    worst = low if sign > 0 else -high
    bound = gate.max_drop * abs(ctx.champion[metric]) if gate.relative else gate.max_drop
    passed = worst >= -bound
    numbers = {
        "metric": metric,
        "candidate": ctx.metrics.get(metric),
        "champion": ctx.champion.get(metric),
        "diff": point,
        "ci_low": low,
        "ci_high": high,
        "confidence": gate.confidence,
        "allowed_drop": bound,
        "champion_version": ctx.champion_version,
    }
    message = (
        f"{metric} {_fmt(ctx.metrics.get(metric))} vs champion v{ctx.champion_version} "
        f"{_fmt(ctx.champion.get(metric))}: difference {point:+.4g} "
        f"(CI {low:+.4g} .. {high:+.4g}), allowed drop {bound:.4g}"
    )
    return GateVerdict(gate.kind, passed, message, numbers)


def _beats_baseline(gate: g.BeatsBaseline, ctx: GateContext) -> GateVerdict:
    metric = gate.metric or ctx.primary
    model, base = ctx.metrics.get(metric), ctx.baseline.get(metric)
    if model is None or base is None:
        return GateVerdict(gate.kind, False, f"{metric} is undefined on the test rows", {"metric": metric})
    lift = (model - base) * _better(ctx, metric)
    return GateVerdict(
        gate.kind,
        lift >= gate.min_lift,
        f"{metric} {_fmt(model)} vs do-nothing baseline {_fmt(base)}: "
        f"lift {lift:+.4g} (need {gate.min_lift:+.4g})",
        {
            "metric": metric,
            "model": model,
            "baseline": base,
            "lift": lift,
            "min_lift": gate.min_lift,
        },
    )


def _guardrail(gate: g.Guardrail, ctx: GateContext) -> GateVerdict:
    value = ctx.metrics.get(gate.metric)
    ok = (
        value is not None
        and (gate.min is None or value >= gate.min)
        and (gate.max is None or value <= gate.max)
    )
    return GateVerdict(
        gate.kind,
        ok,
        f"{gate.metric} {_fmt(value)} within [{_fmt(gate.min)}, {_fmt(gate.max)}]",
        {"metric": gate.metric, "value": value, "min": gate.min, "max": gate.max},
    )


def _segment_drop(gate: g.MaxSegmentDrop, ctx: GateContext) -> GateVerdict:
    metric = gate.metric or ctx.primary
    if ctx.champion is None:
        return GateVerdict(gate.kind, True, "no champion to compare segments with", {"metric": metric})
    changes: list[tuple[float, float | None, str]] = []  # (change, its standard error, segment)
    too_small = 0
    for key, seg in ctx.segments.items():
        champ = ctx.champion_segments.get(key)
        if champ is None or seg.get("n", 0) < gate.min_size:
            too_small += 1
            continue
        cand_value, champ_value = seg.get(metric), champ.get(metric)
        if cand_value is None or champ_value is None:
            continue
        change = (cand_value - champ_value) * _better(ctx, metric)
        changes.append((change, ctx.segment_diff_se.get(key, {}).get(metric), f"{key[0]}={key[1]}"))
    # The optimistic end of each change's one-sided interval, the level shared by the segments
    # judged; a segment without a standard error (none computed) is judged by its point estimate.
    z = 0.0
    if gate.confidence is not None and changes:
        z = float(stats.norm.ppf(1 - (1 - gate.confidence) / len(changes)))
    bounds = [(change + z * (se or 0.0), change, seg) for change, se, seg in changes]
    failing = [b for b in bounds if b[0] < -gate.max_drop]
    worst_change = min(changes, default=None)
    if failing:
        bound, change, segment = min(failing)
        message = (
            f"segment {segment}: {metric} change {change:+.4g}, at best {bound:+.4g} "
            f"(allowed -{gate.max_drop})"
        )
    elif worst_change is not None:
        change, segment = worst_change[0], worst_change[2]
        bound = next(b for b, c, s in bounds if s == segment)
        message = (
            f"worst segment {segment}: {metric} change {change:+.4g}, at best {bound:+.4g} "
            f"(allowed -{gate.max_drop})"
        )
    else:
        bound, change, segment = None, None, None
        message = f"no segment with at least {gate.min_size} rows to judge"
    return GateVerdict(
        gate.kind,
        not failing,
        message,
        {
            "metric": metric,
            "worst_change": change,
            "worst_segment": segment,
            "worst_bound": bound,
            "confidence": gate.confidence,
            "segments_judged": len(changes),
            "segments_too_small": too_small,
            "max_drop": gate.max_drop,
        },
    )


def _calibration(gate: g.MaxCalibrationError, ctx: GateContext) -> GateVerdict:
    ok = ctx.ece is not None and ctx.ece <= gate.max_ece
    return GateVerdict(
        gate.kind,
        ok,
        f"expected calibration error {_fmt(ctx.ece)} (max {gate.max_ece})",
        {"ece": ctx.ece, "max_ece": gate.max_ece},
    )


def _latency(gate: g.LatencyBudget, ctx: GateContext) -> GateVerdict:
    ok = ctx.latency_p99_ms is not None and ctx.latency_p99_ms <= gate.p99_ms
    return GateVerdict(
        gate.kind,
        ok,
        f"single-row p99 {_fmt(ctx.latency_p99_ms)} ms (budget {gate.p99_ms} ms)",
        {"p99_ms": ctx.latency_p99_ms, "budget_ms": gate.p99_ms, "sample": gate.sample},
    )


def _size(gate: g.MaxArtifactSize, ctx: GateContext) -> GateVerdict:
    ok = ctx.artifact_size is not None and ctx.artifact_size <= gate.size
    return GateVerdict(
        gate.kind,
        ok,
        f"artifact {ctx.artifact_size:,} bytes (max {gate.size:,})",
        {"bytes": ctx.artifact_size, "max_bytes": gate.size},
    )


def _leakage(gate: g.NoLeakage, ctx: GateContext) -> GateVerdict:
    flagged = [f for f in ctx.leakage if f["score"] > gate.threshold]
    message = (
        "; ".join(f"{f['feature']} {f['metric']} {f['score']:.3f}" for f in flagged)
        if flagged
        else f"no feature alone above {gate.threshold}"
    )
    return GateVerdict(gate.kind, not flagged, message, {"threshold": gate.threshold, "flagged": flagged})


def _off_policy_lift(gate: g.OffPolicyLift, ctx: GateContext) -> GateVerdict:
    evidence = ctx.policy
    if evidence is None:
        return GateVerdict(gate.kind, False, "no off-policy evidence (not a policy model?)", {})
    result = evidence.served if gate.policy == "served" else evidence.greedy
    estimate = result.estimates[gate.estimator]
    if evidence.champion is not None and evidence.champion.verdict.value == "ok":
        against, against_value = (
            f"champion v{evidence.champion_version}",
            evidence.champion.estimates[gate.estimator].value,
        )
    else:
        against, against_value = "the logging policy", evidence.logged_value
    numbers: dict[str, Any] = {
        "policy": gate.policy,
        "estimator": gate.estimator,
        "confidence": evidence.confidence,
        "estimate": estimate.value,
        "low": estimate.low,
        "high": estimate.high,
        "against": against,
        "against_value": against_value,
        "logged_value": evidence.logged_value,
        "champion_version": evidence.champion_version if against != "the logging policy" else None,
        "min_lift": gate.min_lift,
        "verdict": result.verdict.value,
        "reason": result.reason,
        "ess": result.diagnostics.ess,
        "rounds": result.rounds,
    }
    if result.verdict.value != "ok" or estimate.low is None or against_value is None:
        why = result.reason or "no interval"
        return GateVerdict(gate.kind, False, f"off-policy estimate inconclusive: {why}", numbers)
    lift = estimate.low - against_value
    numbers["lift_low"] = lift
    message = (
        f"{gate.policy} policy {gate.estimator.upper()} {_fmt(estimate.value)} "
        f"(interval {_fmt(estimate.low)} .. {_fmt(estimate.high)}) vs {against} {_fmt(against_value)}: "
        f"lower bound lift {lift:+.4g} (need {gate.min_lift:+.4g})"
    )
    return GateVerdict(gate.kind, lift >= gate.min_lift, message, numbers)


_JUDGES: dict[type, Any] = {
    g.NoRegression: _no_regression,
    g.BeatsBaseline: _beats_baseline,
    g.Guardrail: _guardrail,
    g.MaxSegmentDrop: _segment_drop,
    g.MaxCalibrationError: _calibration,
    g.LatencyBudget: _latency,
    g.MaxArtifactSize: _size,
    g.NoLeakage: _leakage,
    g.OffPolicyLift: _off_policy_lift,
}


def evaluate_gates(gates: Sequence[g.Gate], ctx: GateContext) -> list[GateVerdict]:
    """One verdict per gate, in declaration order."""
    verdicts = []
    for gate in gates:
        judge = _JUDGES.get(type(gate))
        if judge is None:
            verdicts.append(GateVerdict(gate.kind, False, f"unknown gate {type(gate).__name__}", {}))
        else:
            verdicts.append(judge(gate, ctx))
    return verdicts
