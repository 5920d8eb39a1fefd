"""Alerts someone can act on: rules over the windows, with evidence, a suspected cause and a playbook.

A rule looks at every window and says whether its condition holds (for a
column, a segment, or the model as a whole). An alert is raised once per
**episode**: when the condition has held for ``consecutive`` windows in a row
(hysteresis), and not again until it has stopped holding; windows that are
too small to judge, or not whole (``incomplete``), neither extend nor break an
episode and raise nothing. Each alert carries
the numbers behind it (``evidence``), what probably happened (``cause``) and
what to do next (``action``).

* ``input_drift``: a column drifted (significant and beyond the effect
  floor); a warning on an important feature, else information;
* ``prediction_drift``: the model's output drifted (warning);
* ``performance``: a realised metric's interval lies beyond the allowed drop
  (overall), or a segment's metric on its last 2, 4, 8, ... ``pool`` windows
  pooled is worse than its own value at training by more than the allowed drop
  (a one-sided test at ``segment_alpha`` shared over the window's segments and
  pools: see :mod:`fourloops.evaluation.pooling`; the evidence names the windows
  pooled), or the realised value falls outside the interval its estimate gave on
  the same rows (the inputs do not explain it: concept shift suspected); critical;
* ``estimated_performance``: the estimated metric's interval lies beyond the
  allowed drop, before labels (warning);
* ``unknown_categories``: values never seen in the reference above a share (warning);
* ``data_quality``: the null or default-value share rose by more than a bound (warning);
* ``multivariate_drift``: a classifier tells the window from the reference (information);
* ``budget``: latency, fallback rate or volume over the model's budget (warning);
* ``coverage``: a feature view found for fewer requests than in training (warning).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fourloops.errors import ConfigError
from fourloops.evaluation.metrics import higher_is_better
from fourloops.evaluation.monitor_result import MetricReport, WindowResult
from fourloops.evaluation.pooling import DEFAULT_POOL, PooledMetric, judge_window
from fourloops.evaluation.windows import WindowStatus

__all__ = ["Alert", "AlertKind", "AlertPolicy", "RuleContext", "Severity", "detect"]


class AlertKind(enum.StrEnum):
    INPUT_DRIFT = "input_drift"
    PREDICTION_DRIFT = "prediction_drift"
    MULTIVARIATE_DRIFT = "multivariate_drift"
    PERFORMANCE = "performance"
    ESTIMATED_PERFORMANCE = "estimated_performance"
    DATA_QUALITY = "data_quality"
    COVERAGE = "coverage"
    UNKNOWN_CATEGORIES = "unknown_categories"
    BUDGET = "budget"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Alert:
    """One alert: kind, severity, where (window, column, segment), evidence, cause and action."""

    kind: str
    severity: str
    window: int
    start: datetime | None
    end: datetime | None
    column: str | None
    segment: str | None
    evidence: dict[str, Any]
    cause: str
    action: str
    windows: tuple[int, ...] = ()

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """What identifies an episode: kind, column, segment."""
        return (self.kind, self.column, self.segment)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "window": self.window,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "column": self.column,
            "segment": self.segment,
            "evidence": self.evidence,
            "cause": self.cause,
            "action": self.action,
            "windows": list(self.windows),
        }

    def line(self) -> str:
        """A one-line human summary (for logs and terminals)."""
        where = ", ".join(x for x in (self.column and f"column {self.column}", self.segment) if x)
        scope = f" ({where})" if where else ""
        return f"[{self.severity}] {self.kind} in window {self.window}{scope}: {self.cause}"


@dataclass(frozen=True)
class AlertPolicy:
    """When rules fire.

    Parameters
    ----------
    consecutive:
        Windows in a row a condition must hold before it alerts (hysteresis).
    metric:
        The metric judged for performance alerts (default: the task's primary one).
    max_drop:
        Allowed drop of that metric, relative to the reference's value (0.05: five per cent).
    unknown_share:
        Share of values never seen in the reference that alerts.
    null_rise, default_rise:
        Rise of the null (default-value) share over the reference's, in points, that alerts.
    importance:
        Feature importance (any scale); drift on a feature with at least ``important_share`` of the
        total is a warning, on the others information. Without it, every feature counts as important.
    snoozed:
        ``(kind, column)`` pairs (column ``None``: every column) that do not alert.
    fallback_rate:
        Share of fallback answers that alerts when the model declares no budget for it.
    coverage_drop:
        Drop of a feature view's found share below its training coverage that alerts.
    min_labels:
        Fewest labelled rows a window needs for a performance alert (realised, or realised against
        its estimate: worse than the estimate's interval, by more than ``max_drop``); for a
        segment, the fewest its pooled windows need.
    pool:
        The most windows a segment's performance is judged on together: its last 2, 4, 8, ... up
        to ``pool`` mature windows, pooled (1: each window alone).
    segment_alpha:
        The chance, per window, that some segment alerts on performance when none is worse than
        ``max_drop`` allows (shared evenly over the segments judged and the pools).
    rejection_rate:
        Share of the requests reaching the model's contract that it may reject (422) before a
        ``data_quality`` alert names the field and rule most broken.
    """

    consecutive: int = 1
    metric: str | None = None
    max_drop: float = 0.05
    unknown_share: float = 0.01
    null_rise: float = 0.05
    default_rise: float = 0.05
    importance: Mapping[str, float] = field(default_factory=dict)
    important_share: float = 0.05
    snoozed: tuple[tuple[str, str | None], ...] = ()
    fallback_rate: float = 0.05
    coverage_drop: float = 0.05
    min_labels: int = 100
    pool: int = DEFAULT_POOL
    segment_alpha: float = 0.025
    rejection_rate: float = 0.01

    def __post_init__(self) -> None:
        if self.min_labels < 1:
            raise ConfigError(f"min_labels must be at least 1, got {self.min_labels}")
        if self.pool < 1:
            raise ConfigError(f"pool must be at least 1 window, got {self.pool}")
        if not 0 < self.segment_alpha < 1:
            raise ConfigError(f"segment_alpha must lie between 0 and 1, got {self.segment_alpha}")
        if self.consecutive < 1:
            raise ConfigError(f"consecutive must be at least 1, got {self.consecutive}")
        for name in (
            "max_drop",
            "unknown_share",
            "null_rise",
            "default_rise",
            "important_share",
            "fallback_rate",
            "coverage_drop",
            "rejection_rate",
        ):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{name} must be between 0 and 1, got {value}")

    def important(self, column: str) -> bool:
        total = sum(max(v, 0.0) for v in self.importance.values())
        if not total:
            return True
        return max(self.importance.get(column, 0.0), 0.0) / total >= self.important_share

    def is_snoozed(self, kind: str, column: str | None) -> bool:
        return any(k == kind and (c is None or c == column) for k, c in self.snoozed)


@dataclass(frozen=True)
class _Finding:
    """A condition that holds in one window."""

    kind: str
    severity: str
    column: str | None
    segment: str | None
    evidence: dict[str, Any]
    cause: str
    action: str
    rule: str = ""  # tells apart two conditions of one kind on the same column (a drop, a concept shift)


Rule = Callable[[WindowResult, AlertPolicy, "RuleContext"], Iterator[_Finding]]


@dataclass(frozen=True)
class RuleContext:
    """What the rules need besides the window: the task, the reference's health and metric values."""

    task: str | None
    primary: str | None
    reference_health: Mapping[str, Mapping[str, float]]
    reference_metrics: Mapping[str, float] = field(default_factory=dict)
    prediction: str | None = None
    budget: Mapping[str, float] = field(default_factory=dict)
    coverage: Mapping[str, float] = field(default_factory=dict)
    window_days: float | None = None


def _drift_rule(window: WindowResult, policy: AlertPolicy, ctx: RuleContext) -> Iterator[_Finding]:
    scopes = [(None, window.drift)] + [(s.key, s.drift) for s in window.segments.values()]
    overall = set(window.drifted())
    for segment, drift in scopes:
        for column, d in drift.items():
            if not d.drifted or (segment is not None and column in overall):
                continue  # a segment repeats what the whole window already says
            head = d.headline
            evidence = {
                "method": head.method,
                "statistic": head.statistic,
                "p_adjusted": d.p_adjusted,
                "effect": head.effect,
                "threshold": head.threshold,
                "rows": d.rows,
            }
            where = f" in segment {segment}" if segment else ""
            yield _Finding(
                AlertKind.INPUT_DRIFT.value,
                (Severity.WARNING if policy.important(column) else Severity.INFO).value,
                column,
                segment,
                evidence,
                f"the distribution of {column}{where} changed ({head.method} {head.statistic:.3g}, "
                f"effect {head.effect:.3g} >= {head.threshold:g}, adjusted p {d.p_adjusted:.2g})",
                f"inspect the pipeline of feature {column}: compare its recent values with the reference; "
                "if the change is real and lasting, retrain on data that includes it",
            )
    pred = window.prediction_drift
    if pred is not None and pred.drifted:
        d = pred
        causes = window.drifted()
        yield _Finding(
            AlertKind.PREDICTION_DRIFT.value,
            Severity.WARNING.value,
            ctx.prediction,
            None,
            {
                "method": d.headline.method,
                "statistic": d.headline.statistic,
                "p_adjusted": d.p_adjusted,
                "effect": d.headline.effect,
                "drifted_inputs": causes,
            },
            "the model's output distribution changed"
            + (f" with its inputs ({', '.join(causes[:5])})" if causes else " while no input drifted"),
            "check the drifted inputs first; if none drifted, compare the serving versions and routes "
            "of the window with the reference's",
        )


def _worse(task: str | None, metric: str, value: float, bound: float) -> bool:
    better_high = higher_is_better(task or "binary", metric) if task else True
    return value < bound if better_high else value > bound


def _drop_evidence(metric: str, report: MetricReport, bound: float) -> dict[str, Any]:
    """The numbers behind a performance alert: the value with its interval, the reference, the bound."""
    v = report.value
    return {
        "metric": metric,
        "value": v.value,
        "low": v.low,
        "high": v.high,
        "reference": report.reference,
        "bound": bound,
        "labelled": v.rows,
    }


def _bound(task: str | None, metric: str, reference: float, drop: float) -> float:
    better_high = higher_is_better(task or "binary", metric) if task else True
    return reference * (1 - drop) if better_high else reference * (1 + drop)


def _segment_drops(
    window: WindowResult, policy: AlertPolicy, ctx: RuleContext, metric: str
) -> Iterator[_Finding]:
    """A realised drop in one segment, on its last windows pooled (against its own value at training)."""
    segments = {s.key: s for s in window.segments.values() if metric in s.pooled}
    verdicts = judge_window(
        {key: s.pooled[metric] for key, s in segments.items()},
        better_high=higher_is_better(ctx.task or "binary", metric) if ctx.task else True,
        max_drop=policy.max_drop,
        segment_alpha=policy.segment_alpha,
        longest=policy.pool,
        min_rows=policy.min_labels,
    )
    for key, verdict in verdicts.items():
        segment, pool = segments[key], segments[key].pooled[metric]
        assert pool.reference is not None  # judged only with a reference
        p = verdict.pooled
        evidence = {
            "metric": metric,
            "value": p.value,
            "low": verdict.low,
            "high": verdict.high,
            "reference": pool.reference,
            "bound": verdict.bound,
            "labelled": p.rows,
            "se": p.se,
            "between_windows": p.between,
            "reference_se": pool.reference_se,
            "z": verdict.z,
            "p_value": verdict.p_value,
            "alpha": verdict.alpha,
            "pooled_windows": list(p.windows),
            "pooled_start": None if p.start is None else p.start.isoformat(),
            "pooled_end": None if p.end is None else p.end.isoformat(),
        }
        yield _Finding(
            AlertKind.PERFORMANCE.value,
            Severity.CRITICAL.value,
            None,
            segment.key,
            evidence,
            f"{metric} in segment {segment.key} fell to {p.value:.3g} over {_span(p)} ({p.rows:,} labels; "
            f"interval {verdict.low:.3g}–{verdict.high:.3g}) from {pool.reference:.3g} at training; "
            f"the allowed drop is {policy.max_drop:.0%}",
            f"look at segment {segment.key} first: if a release began it, roll back; if its labels moved "
            "(a concept shift there), retrain with recent data and check the segment's number in the gates",
        )


def _span(p: PooledMetric) -> str:
    """The windows of a pool, for people: their days when windows are by time."""
    if len(p.windows) == 1:
        count = "its last window"
    else:
        count = f"its last {len(p.windows)} windows"
    if p.start is None or p.end is None:
        return f"{count} ({', '.join(str(i) for i in p.windows)})"
    last = p.end - (p.end - p.start) / (p.windows[-1] - p.windows[0] + 1)
    days = p.start.date().isoformat()
    if last.date() != p.start.date():
        days += f" to {last.date().isoformat()}"
    return f"{count} ({days})"


def _performance_rule(window: WindowResult, policy: AlertPolicy, ctx: RuleContext) -> Iterator[_Finding]:
    metric = policy.metric or ctx.primary
    if metric is None:
        return
    report = window.metrics.get(metric)
    if report is not None and report.value.rows < policy.min_labels:
        report = None  # too few labels to judge a drop (the window's metrics still show them)
    if report is not None and report.maturity == "mature" and report.reference is not None:
        v = report.value
        bound = _bound(ctx.task, metric, report.reference, policy.max_drop)
        edge = v.high if higher_is_better(ctx.task or "binary", metric) else v.low
        if edge is not None and _worse(ctx.task, metric, edge, bound):
            yield _Finding(
                AlertKind.PERFORMANCE.value,
                Severity.CRITICAL.value,
                None,
                None,
                _drop_evidence(metric, report, bound),
                f"{metric} fell to {v.value:.3g} (interval {v.low:.3g}–{v.high:.3g}) "
                f"from {report.reference:.3g} "
                f"at training; the allowed drop is {policy.max_drop:.0%}",
                "roll back if the drop began with a release (fourloops rollback MODEL); otherwise retrain on "
                "data that includes the recent windows, and review the segments that fell most",
            )
    yield from _segment_drops(window, policy, ctx, metric)
    check = window.checks.get(metric)
    if (
        report is not None
        and check is not None
        and check["worse"]
        and abs(check["gap"]) >= policy.max_drop * abs(check["estimated"])
    ):
        yield _Finding(
            AlertKind.PERFORMANCE.value,
            Severity.CRITICAL.value,
            None,
            None,
            {"metric": metric, **check},
            f"realised {metric} {check['realised']:.3g} is outside the "
            f"{check['low']:.3g}–{check['high']:.3g} "
            "expected from the scores alone: concept shift suspected (P(y | x) changed)",
            "retrain on recent labelled data: the inputs do not explain the change, so the relation between "
            "inputs and outcomes moved; review which segments differ most",
            rule="concept",
        )
    estimated = window.estimated.get(metric)
    reference = ctx.reference_metrics.get(metric)
    if estimated is not None and estimated.value is not None and reference is not None:
        bound = _bound(ctx.task, metric, reference, policy.max_drop)
        edge = estimated.high if higher_is_better(ctx.task or "binary", metric) else estimated.low
        if edge is not None and _worse(ctx.task, metric, edge, bound):
            yield _Finding(
                AlertKind.ESTIMATED_PERFORMANCE.value,
                Severity.WARNING.value,
                None,
                None,
                {
                    "metric": metric,
                    "estimated": estimated.value,
                    "low": estimated.low,
                    "high": estimated.high,
                    "reference": reference,
                    "bound": bound,
                },
                f"estimated {metric} {estimated.value:.3g} (before labels) is below the allowed "
                f"{bound:.3g}: the inputs moved to where the model is weaker",
                "look at the drifted inputs of the window; prepare a retraining and confirm with the "
                "realised value when labels mature",
            )


def _health_rule(window: WindowResult, policy: AlertPolicy, ctx: RuleContext) -> Iterator[_Finding]:
    for column, health in window.health.items():
        ref = ctx.reference_health.get(column, {})
        unknown = health.get("unknown_share", 0.0)
        if unknown >= policy.unknown_share and unknown > 0:
            named = window.extra.get("unseen_values", {}).get(column, {})
            sample = ", ".join(list(named)[:5])
            yield _Finding(
                AlertKind.UNKNOWN_CATEGORIES.value,
                Severity.WARNING.value,
                column,
                None,
                {"unknown_share": unknown, "examples": named},
                f"{unknown:.1%} of {column} are values the reference never had"
                + (f" ({sample})" if sample else ""),
                f"new values of {column}: if they are a new market or category, add them to the contract and "
                "retrain with data that has them; until then their predictions are extrapolations",
            )
        for share, bound, what in (
            ("null_share", policy.null_rise, "null"),
            ("default_share", policy.default_rise, "default"),
        ):
            rise = health.get(share, 0.0) - ref.get(share, 0.0)
            if rise > bound:
                yield _Finding(
                    AlertKind.DATA_QUALITY.value,
                    Severity.WARNING.value,
                    column,
                    None,
                    {share: health.get(share), "reference": ref.get(share, 0.0), "rise": rise},
                    f"{what} values of {column} rose from {ref.get(share, 0.0):.1%} "
                    f"to {health.get(share, 0.0):.1%}",
                    f"inspect the pipeline that feeds {column} (a join that stopped matching, a changed "
                    "upstream default, a null turned into an empty value)",
                )


def _multivariate_rule(window: WindowResult, policy: AlertPolicy, ctx: RuleContext) -> Iterator[_Finding]:
    mv = window.multivariate
    if mv and mv.get("drifted"):
        yield _Finding(
            AlertKind.MULTIVARIATE_DRIFT.value,
            Severity.INFO.value,
            None,
            None,
            {k: mv.get(k) for k in ("method", "statistic", "p_value", "top_features")},
            f"a classifier tells this window from the reference (AUC {mv['statistic']:.3f}); "
            f"it relies most on {', '.join(mv.get('top_features', [])[:3])}",
            "look at the named features together: their joint distribution changed",
        )


def _budget_finding(what: str, actual: float, limit: float, declared: bool, action: str) -> _Finding:
    source = "the model's budget" if declared else "the alert policy's bound"
    return _Finding(
        AlertKind.BUDGET.value,
        Severity.WARNING.value,
        None,
        None,
        {"measure": what, "actual": actual, "limit": limit, "declared": declared},
        f"{what} was {actual:.4g}, over {source} of {limit:.4g}",
        action,
        rule=what,
    )


def _rejection_rule(ops: Mapping[str, Any], policy: AlertPolicy) -> Iterator[_Finding]:
    """Requests the contract rejected, above the policy's share: the field and rule most broken."""
    rate = ops.get("rejection_rate")
    if rate is None or rate <= policy.rejection_rate:
        return
    broken = sorted(
        (
            (n, name, rule)
            for name, rules in (ops.get("rejections") or {}).items()
            for rule, n in rules.items()
        ),
        reverse=True,
    )
    top = broken[0] if broken else (0, None, None)
    where = f" (most: field {top[1]}, rule {top[2]}, {top[0]:,} requests)" if top[1] is not None else ""
    yield _Finding(
        AlertKind.DATA_QUALITY.value,
        Severity.WARNING.value,
        top[1],
        None,
        {
            "rejected": ops.get("rejected"),
            "rejection_rate": rate,
            "limit": policy.rejection_rate,
            "by_field": {name: dict(rules) for name, rules in (ops.get("rejections") or {}).items()},
        },
        f"the contract rejected {rate:.1%} of the requests{where}: a caller or an upstream pipeline "
        "sends values the model does not accept",
        f"look at what builds field {top[1]} upstream (a changed unit, nulls as empty strings, a new "
        "category): the 422 answers name field and rule; fix the sender, or change the contract on "
        "purpose (fourloops validate) if the new values are right",
        rule="contract_rejections",
    )


def _operations_rule(window: WindowResult, policy: AlertPolicy, ctx: RuleContext) -> Iterator[_Finding]:
    ops = window.extra.get("operations")
    if not ops:
        return
    budget = ctx.budget
    latency = ops.get("latency_ms") or {}
    for q, key in (("p95", "p95_ms"), ("p99", "p99_ms")):
        actual = latency.get(q)
        if key in budget and actual is not None and actual > budget[key]:
            yield _budget_finding(
                f"latency {q} (ms)",
                actual,
                budget[key],
                True,
                "profile the model call and the feature lookups (fourloops serve's /metrics has both); "
                "consider a smaller model, a cache, or more workers",
            )
    rate = ops.get("fallback_rate")
    limit = budget.get("fallback_rate", policy.fallback_rate)
    if rate is not None and rate > limit:
        yield _budget_finding(
            "fallback rate",
            rate,
            limit,
            "fallback_rate" in budget,
            "look at the fallback reasons in the events (timeout, error, open circuit): a slow or failing "
            "model or store; the fallback's answers are not the model's",
        )
    cpu = ops.get("cpu_ms_per_1000")
    if "cpu_ms_per_1000" in budget and cpu is not None and cpu > budget["cpu_ms_per_1000"]:
        yield _budget_finding(
            "CPU ms per 1,000 predictions",
            cpu,
            budget["cpu_ms_per_1000"],
            True,
            "profile the server (py-spy on a worker): the model call, feature lookups or validation; "
            "a smaller model, batching (server.batching) or a prediction cache cut it",
        )
    yield from _rejection_rule(ops, policy)
    if "max_per_day" in budget and ctx.window_days:
        per_day = ops["requests"] / ctx.window_days
        if per_day > budget["max_per_day"]:
            yield _budget_finding(
                "predictions per day",
                per_day,
                budget["max_per_day"],
                True,
                "check who is calling: a retry storm or a new client; rate limits per client can cap it",
            )
    for view, shares in (ops.get("coverage") or {}).items():
        found = shares.get("ok", 0.0)
        expected = ctx.coverage.get(view)
        if expected is not None and expected - found > policy.coverage_drop:
            yield _Finding(
                AlertKind.COVERAGE.value,
                Severity.WARNING.value,
                view,
                None,
                {
                    "found": found,
                    "training": expected,
                    "missing": shares.get("missing"),
                    "expired": shares.get("expired"),
                },
                f"features of view {view} were found for {found:.1%} of requests, against {expected:.1%} "
                "in the training data",
                f"check the materialisation of view {view} (is it scheduled, and did it run?) and its "
                "source's freshness: expired values mean the online store is behind",
            )


RULES: tuple[Rule, ...] = (_drift_rule, _performance_rule, _health_rule, _multivariate_rule, _operations_rule)


def detect(
    windows: Sequence[WindowResult],
    policy: AlertPolicy,
    ctx: RuleContext,
    *,
    rules: Sequence[Rule] = RULES,
) -> list[Alert]:
    """Alerts over ``windows`` (in order), one per episode, after ``policy.consecutive`` windows."""
    alerts: list[Alert] = []
    streak: dict[tuple[str, str | None, str | None, str], list[int]] = {}
    raised: dict[tuple[str, str | None, str | None, str], int] = {}
    for window in windows:
        if window.status != WindowStatus.OK:
            continue  # too small, or not whole: judged and shown, but neither extends nor breaks an episode
        holding: set[tuple[str, str | None, str | None, str]] = set()
        for rule in rules:
            for f in rule(window, policy, ctx):
                if policy.is_snoozed(f.kind, f.column):
                    continue
                key = (f.kind, f.column, f.segment, f.rule)
                if key in holding:
                    continue
                holding.add(key)
                streak.setdefault(key, []).append(window.index)
                if len(streak[key]) >= policy.consecutive and key not in raised:
                    raised[key] = len(alerts)
                    b = window.bounds
                    alerts.append(
                        Alert(
                            f.kind,
                            f.severity,
                            window.index,
                            b.start,
                            b.end,
                            f.column,
                            f.segment,
                            f.evidence,
                            f.cause,
                            f.action,
                            tuple(streak[key]),
                        )
                    )
                elif key in raised:
                    i = raised[key]
                    a = alerts[i]
                    alerts[i] = Alert(
                        a.kind,
                        a.severity,
                        a.window,
                        a.start,
                        a.end,
                        a.column,
                        a.segment,
                        a.evidence,
                        a.cause,
                        a.action,
                        (*a.windows, window.index),
                    )
        for key in [k for k in streak if k not in holding]:
            del streak[key]
            raised.pop(key, None)
    return alerts
