"""Staged rollout: a candidate walks shadow -> canary -> full on evidence, and backs out on its own.

:func:`start` puts a candidate into the first stage of its model's
:class:`~fourloops.definitions.rollout.Rollout` (the registry's routing: the
shadow alias, or the canary alias and share); :func:`step` is what the
controller does at every tick for a running rollout:

1. measure the stage (:mod:`fourloops.adaptation.measure`): the checks'
   outcomes of candidate and champion as sums, from the event log;
2. judge every check with the always-valid sequential test
   (:mod:`fourloops.adaptation.sequential`): pass, fail, inconclusive or error;
   overall and in every value of the model's segment columns (half of alpha
   overall, the other half shared by the segments), so that a candidate worse
   for one segment fails even when the overall number would hide it;
3. decide: **abort** on a critical failure, on ``failures`` failures in a row
   or ``errors`` errors in a row (traffic back to the champion on every
   server, through the registry), or **pause** instead when the policy says
   so; **advance** (or **promote**, at ``Full``) when every check passes and
   the stage has its requests and time; **pause** for a human when the stage
   is past its time limit undecided (a must-have-data check without data
   counts as failed then: no data is never a pass); otherwise **wait**.

Every decision goes to the journal with the checks' numbers. Before a stage
starts, its plan (from the current traffic and the champion's outcomes: the
requests and hours it needs to pass identical versions, and to catch a
regression of twice the margin) is journaled too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fourloops.adaptation.loop import ACTOR, Decision, Loop
from fourloops.adaptation.measure import (
    ArmSums,
    calibrated_sql,
    canary_sql,
    estimated_outcome_sql,
    outcome_sql,
    paired_sums_from,
    shadow_evidence_sql,
    shadow_sql,
    sums_from,
    traffic_sql,
)
from fourloops.adaptation.sequential import Comparison, Verdict, compare, required_samples
from fourloops.definitions import Model
from fourloops.definitions.lifecycle import Alias, Stage
from fourloops.definitions.rollout import Check, Rollout, RolloutStage
from fourloops.errors import ConfigError, FourloopsError, NotFoundError
from fourloops.storage.controller_state import RolloutRecord, RolloutStatus

__all__ = ["abort", "plan_stage", "policy_of", "start", "step"]


def policy_of(model: Model) -> Rollout:
    """The model's rollout policy, or the default one (shadow, 5 % and 25 % canaries, full)."""
    return model.rollout if model.rollout is not None else Rollout()


def _stage(policy: Rollout, index: int) -> RolloutStage:
    return policy.stages[index]


def _apply(
    loop: Loop, name: str, version: int, stage: RolloutStage, *, reason: str, force: bool = False
) -> None:
    """Route traffic for ``stage`` through the registry (servers follow)."""
    if stage.kind == "shadow":
        loop.registry.set_routing(
            name, shadow=version, canary=None, stage=Stage.SHADOW, actor=ACTOR, reason=reason, force=force
        )
    elif stage.kind == "canary":
        loop.registry.set_routing(
            name,
            canary=version,
            canary_share=stage.share,
            shadow=None,
            stage=Stage.CANARY,
            actor=ACTOR,
            reason=reason,
            force=force,
        )
    else:
        loop.registry.promote(name, version, actor=ACTOR, reason=reason, force=force)
        loop.registry.set_routing(
            name, canary=None, shadow=None, stage=Stage.PRODUCTION, actor=ACTOR, reason=reason
        )


def _champion(loop: Loop, name: str) -> int | None:
    try:
        return loop.registry.get_version(name, Alias.CHAMPION).version
    except NotFoundError:
        return None


def _value(loop: Loop, model: Model, check: Check, versions: Sequence[int]) -> Callable[[str, str, str], str]:
    """SQL of the check's per-request outcome from the SQL of (prediction, label, answering version).

    An estimated check needs each version's calibration curve (from its reference); a version
    without one makes the measurement fail (an ``error`` verdict), never a guess.
    """
    threshold = model.objective.threshold
    if not check.estimate:
        return lambda p, y, v: outcome_sql(
            check.outcome, prediction=p, label=y, threshold=threshold, task=model.task.value
        )
    curves = {}
    for version in versions:
        curve = loop.calibration(model.name, version) if loop.calibration is not None else None
        if curve is None:
            raise FourloopsError(
                f"check {check.name}: version {version} of {model.name!r} has no calibration "
                "(its reference has no labelled rows of both classes)"
            )
        curves[version] = curve
    return lambda p, y, v: estimated_outcome_sql(
        check.outcome, prediction=p, label=y, chance=calibrated_sql(p, v, curves), threshold=threshold
    )


def _hours(rows: int, per_hour: float) -> float | None:
    return None if rows < 0 or per_hour <= 0 else rows / per_hour


def _spread(loop: Loop, model: Model, champion: int, check: Check) -> float:
    """The standard deviation of a check's outcome on the champion's events."""
    if check.outcome == "slow":
        return math.sqrt(0.05 * 0.95)  # a share of 5 % by construction
    if check.outcome == "fallback":
        expr = "CASE WHEN fallback THEN 1.0 ELSE 0.0 END"
    elif check.outcome == "latency_ms":
        expr = "latency_ms"
    else:
        expr = _value(loop, model, check, [champion])("prediction", "label_number", "version")
    rows = loop.query(
        f"SELECT stddev_samp(x) AS sd FROM (SELECT {expr} AS x FROM events WHERE route = 'champion' "
        f"AND version = {int(champion)}) WHERE x IS NOT NULL",
        model.name,
    ).to_pylist()
    return float(rows[0]["sd"] or 0.0) if rows else 0.0


def plan_stage(
    loop: Loop, model: Model, stage: RolloutStage, *, checks: list[Check], alpha: float
) -> dict[str, Any]:
    """What a stage needs, from the last day's traffic and the champion's outcomes (module docstring)."""
    now = loop.clock()
    champion = _champion(loop, model.name)
    rows = loop.query(traffic_sql(since=now - timedelta(days=1), until=now), model.name).to_pylist()
    per_hour = float(rows[0]["per_hour"] or 0.0) if rows else 0.0
    share = stage.share if stage.kind == "canary" else 1.0
    out: dict[str, Any] = {"stage": stage.kind, "share": share, "requests_per_hour": per_hour, "checks": {}}
    if champion is None:
        return out
    for check in checks:
        sd = _spread(loop, model, champion, check)
        tau = check.tau if check.tau is not None else check.margin
        regression = 2 * check.margin or tau
        to_pass = required_samples(sd, detect=0.0, margin=check.margin, alpha=alpha, tau=tau)
        to_catch = required_samples(sd, detect=regression, margin=check.margin, alpha=alpha, tau=tau)
        # The smaller arm sets the pace: the canary's share, or the champion's rest of it.
        rate = per_hour * (min(share, 1 - share) if stage.kind == "canary" else 1.0)
        out["checks"][check.name] = {
            "sd": sd,
            "rows_to_pass": to_pass,
            "hours_to_pass": _hours(to_pass, rate),
            "rows_to_catch_regression": to_catch,
            "regression": regression,
            "hours_to_catch": _hours(to_catch, rate),
        }
    return out


def start(
    loop: Loop, name: str, version: int, *, reason: str = "", actor: str = ACTOR, force: bool = False
) -> Decision:
    """Start rolling ``version`` of model ``name`` out: stage 0 of its policy, journaled with its plan."""
    model = loop.models.get(name)
    if model is None:
        raise NotFoundError(f"no model {name!r} is defined")
    recorded = loop.registry.get_version(name, version)
    champion = _champion(loop, name)
    if champion == recorded.version:
        raise ConfigError(f"version {version} of {name!r} is the champion already; nothing to roll out")
    policy = policy_of(model)
    now = loop.clock()
    first = _stage(policy, 0)
    record = loop.rollouts.start(
        name,
        recorded.version,
        champion=champion,
        policy=policy.to_dict(),
        at=now,
        state={
            "history": [
                {"stage": 0, "kind": first.kind, "share": first.share, "started_at": now.isoformat()}
            ],
            "failures": {},
            "errors": 0,
            # A version that failed its gates goes out only by force, and every stage after the
            # first needs that force again: the rollout keeps it (the start's journal entry says so).
            "forced": bool(force),
        },
        reason=reason,
    )
    try:
        note = f"rollout of v{recorded.version}: {first.kind}" + (
            f" {first.share:.0%}" if first.kind == "canary" else ""
        )
        if champion is None:
            _apply(
                loop, name, recorded.version, _stage(policy, len(policy.stages) - 1), reason=note, force=force
            )
            record.status, record.reason = RolloutStatus.COMPLETED, "no champion: promoted directly"
            loop.rollouts.save(record, at=now)
            return loop.journal(
                "promote", name, recorded.version, "no champion yet: promoted directly", actor=actor
            )
        _apply(loop, name, recorded.version, first, reason=note, force=force)
    except FourloopsError as err:
        record.status, record.reason = RolloutStatus.ABORTED, f"could not start: {err}"
        loop.rollouts.save(record, at=now)
        raise
    plan = plan_stage(loop, model, first, checks=list(policy.checks), alpha=policy.alpha)
    record.state["plan"] = plan
    loop.rollouts.save(record, at=now)
    return loop.journal(
        "rollout_start",
        name,
        recorded.version,
        reason or f"rollout started at its {first.kind} stage",
        {"stage": first.to_dict(), "plan": plan, "champion": champion, "forced": bool(force)},
        actor=actor,
    )


def abort(loop: Loop, name: str, *, reason: str, actor: str = ACTOR) -> Decision:
    """Send all traffic back to the champion and end the model's open rollout, journaled."""
    record = loop.rollouts.current(name)
    if record is None:
        raise ConfigError(f"model {name!r} has no rollout in progress")
    return _abort(loop, record, reason, {}, actor=actor)


def _abort(
    loop: Loop, record: RolloutRecord, reason: str, evidence: dict[str, Any], *, actor: str = ACTOR
) -> Decision:
    loop.registry.set_routing(
        record.model, canary=None, shadow=None, stage=Stage.NONE, actor=actor, reason=f"abort: {reason}"
    )
    record.status, record.reason = RolloutStatus.ABORTED, reason
    loop.rollouts.save(record, at=loop.clock())
    return loop.journal("abort", record.model, record.version, reason, evidence, actor=actor)


_SEGMENT_KEYS = ("difference", "low", "high", "verdict", "rows")


@dataclass(frozen=True)
class _Judged:
    check: Check
    comparison: Comparison
    segments: dict[str, Comparison]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "outcome": self.check.outcome,
            "check": self.check.name,
            "estimated": self.check.estimate,
            "critical": self.check.critical,
            **self.comparison.to_dict(),
        }
        if self.segments:
            out["segments"] = {
                key: {
                    k: v
                    for k, v in c.to_dict().items()
                    if k in ("difference", "low", "high", "verdict", "rows")
                }
                for key, c in self.segments.items()
            }
        return out


def _measure(
    loop: Loop, model: Model, record: RolloutRecord, stage: RolloutStage, checks: Sequence[Check]
) -> list[dict[str, ArmSums]]:
    """The stage's sums for every check (in order), in one query: overall (key ``all``) and per
    value of each segment column (keys ``column=value``)."""
    now = loop.clock()
    champion = record.champion
    assert champion is not None
    outcomes = [check.name for check in checks]
    values = {check.name: _value(loop, model, check, [champion, record.version]) for check in checks}

    def value(name: str, prediction: str, label: str, version: str) -> str:
        return values[name](prediction, label, version)

    if stage.kind == "shadow":
        sql = shadow_sql(
            outcomes,
            champion=champion,
            candidate=record.version,
            start=record.stage_started_at,
            until=now,
            value=value,
            segments=model.segments,
        )
        return paired_sums_from(loop.query(sql, model.name), len(outcomes), model.segments)
    canary_starts = [
        datetime.fromisoformat(h["started_at"])
        for h in record.state.get("history", [])
        if h["kind"] == "canary"
    ]
    sql = canary_sql(
        outcomes,
        champion=champion,
        candidate=record.version,
        boundaries=canary_starts,
        until=now,
        value=value,
        segments=model.segments,
    )
    return sums_from(loop.query(sql, model.name), len(outcomes), len(canary_starts), model.segments)


def _judge(
    check: Check, policy: Rollout, sums: dict[str, ArmSums], segments: int
) -> tuple[Comparison, dict[str, Comparison]]:
    """The check overall and in every segment value.

    Without segments the overall comparison has the policy's alpha. With ``segments`` values (the
    most seen so far) it has half of it, and the segments share the other half (Bonferroni), so
    that the whole family keeps the policy's alpha while the overall check, the one that must
    pass, stays nearly as quick to decide as without segments.
    """
    tau = check.tau if check.tau is not None else check.margin
    overall_alpha = policy.alpha / 2 if segments else policy.alpha
    segment_alpha = policy.alpha / (2 * segments) if segments else policy.alpha

    def one(s: ArmSums, alpha: float) -> Comparison:
        return compare(
            s.strata, margin=check.margin, alpha=alpha, tau=tau, lower_is_better=check.lower_is_better
        )

    overall = one(sums.get("all", ArmSums(())), overall_alpha)
    return overall, {key: one(s, segment_alpha) for key, s in sorted(sums.items()) if key != "all"}


def step(loop: Loop, record: RolloutRecord) -> Decision:
    """One tick of a running rollout (see the module docstring)."""
    model = loop.models.get(record.model)
    now = loop.clock()
    if model is None:
        return _abort(loop, record, f"model {record.model!r} is no longer defined", {})
    policy = Rollout(**_policy_args(record.policy))
    stage = _stage(policy, record.stage_index)
    champion = _champion(loop, record.model)
    if champion != record.champion:
        return _abort(
            loop,
            record,
            f"the champion changed from v{record.champion} to v{champion} during the rollout",
            {},
        )
    judged: list[_Judged] = []
    measured: list[dict[str, ArmSums]] | FourloopsError
    try:
        measured = _measure(loop, model, record, stage, policy.checks)
    except FourloopsError as err:  # the measurement failed: every check errs, none passes
        measured = err
    for index, check in enumerate(policy.checks):
        segments: dict[str, Comparison] = {}
        if isinstance(measured, FourloopsError):  # an error, never a pass
            comparison = Comparison(
                math.nan,
                -math.inf,
                math.inf,
                check.margin,
                policy.alpha,
                Verdict.ERROR,
                (0, 0),
                f"measurement failed: {measured}",
            )
        else:
            sums = measured[index]
            # The family only grows (a segment value once seen stays counted), so thresholds only
            # tighten as values appear: the stage's comparisons stay valid at every look.
            family = max(int(record.state.get("segments", 0)), len(sums) - 1)
            record.state["segments"] = family
            comparison, segments = _judge(check, policy, sums, family)
        failing = sorted(
            (k for k, c in segments.items() if c.verdict == Verdict.FAIL), key=lambda k: segments[k].high
        )
        if failing and comparison.verdict != Verdict.FAIL:
            worst = segments[failing[0]]
            comparison = Comparison(
                comparison.difference,
                comparison.low,
                comparison.high,
                comparison.margin,
                comparison.alpha,
                Verdict.FAIL,
                comparison.rows,
                f"in segment {failing[0]}: {worst.reason} (overall {comparison.verdict.value})",
            )
        judged.append(_Judged(check, comparison, segments))
    evidence: dict[str, Any] = {"stage": stage.to_dict(), "checks": [j.to_dict() for j in judged]}
    if stage.kind == "shadow" and champion is not None:
        rows = loop.query(
            shadow_evidence_sql(
                champion=champion,
                candidate=record.version,
                start=record.stage_started_at,
                until=now,
                threshold=model.objective.threshold,
            ),
            model.name,
        ).to_pylist()
        evidence["shadow"] = rows[0] if rows else {}
    requests = max((j.comparison.rows[1] for j in judged), default=0)
    if stage.kind == "shadow":
        requests = int((evidence.get("shadow") or {}).get("pairs") or requests)
    evidence["requests"] = requests
    record.state["last_checks"] = evidence["checks"]
    failures: dict[str, int] = record.state.setdefault("failures", {})
    elapsed = now - record.stage_started_at
    # Consecutive failures and errors, per check and overall.
    any_error = False
    for j in judged:
        key = j.check.name
        failures[key] = failures.get(key, 0) + 1 if j.comparison.verdict == Verdict.FAIL else 0
        any_error = any_error or j.comparison.verdict == Verdict.ERROR
    record.state["errors"] = record.state.get("errors", 0) + 1 if any_error else 0
    critical = [j for j in judged if j.comparison.verdict == Verdict.FAIL and j.check.critical]
    repeated = [j for j in judged if failures.get(j.check.name, 0) >= policy.failures]
    if critical or repeated:
        failed = (critical or repeated)[0]
        reason = f"check {failed.check.name} failed: {failed.comparison.reason}"
        return _fail(loop, record, policy, reason, evidence)
    if record.state["errors"] >= policy.errors:
        return _fail(
            loop,
            record,
            policy,
            f"{record.state['errors']} ticks in a row could not measure a check",
            evidence,
        )
    passed = all(j.comparison.verdict == Verdict.PASS for j in judged)
    ready = requests >= stage.min_requests and (stage.min_duration is None or elapsed >= stage.min_duration)
    if passed and ready:
        return _advance(loop, record, policy, model, evidence)
    if stage.max_duration is not None and elapsed >= stage.max_duration:
        empty = [j for j in judged if j.check.must_have_data and j.comparison.rows[1] == 0]
        if empty:
            return _fail(
                loop,
                record,
                policy,
                f"check {empty[0].check.name} had no data by the stage's time limit",
                evidence,
            )
        if policy.on_timeout == "abort":
            return _abort(
                loop,
                record,
                f"undecided after {elapsed} (limit {stage.max_duration}): never shown good enough",
                evidence,
            )
        record.status = RolloutStatus.PAUSED
        record.reason = f"undecided after {elapsed} (limit {stage.max_duration}): waiting for a human"
        loop.rollouts.save(record, at=now)
        return loop.journal("pause", record.model, record.version, record.reason, evidence)
    loop.rollouts.save(record, at=now)
    waiting = ", ".join(f"{j.check.name}: {j.comparison.verdict.value}" for j in judged) or "no checks"
    short = "" if ready else f"; {requests} of {stage.min_requests} requests"
    return loop.journal(
        "wait", record.model, record.version, f"{stage.kind} stage: {waiting}{short}", evidence
    )


def _fail(
    loop: Loop, record: RolloutRecord, policy: Rollout, reason: str, evidence: dict[str, Any]
) -> Decision:
    if policy.on_failure == "pause":
        record.status, record.reason = RolloutStatus.PAUSED, reason
        loop.rollouts.save(record, at=loop.clock())
        return loop.journal("pause", record.model, record.version, reason, evidence)
    return _abort(loop, record, reason, evidence)


def _advance(
    loop: Loop, record: RolloutRecord, policy: Rollout, model: Model, evidence: dict[str, Any]
) -> Decision:
    now = loop.clock()
    index = record.stage_index + 1
    stage = _stage(policy, index)
    history = record.state.setdefault("history", [])
    if history:
        history[-1]["ended_at"] = now.isoformat()
    history.append({"stage": index, "kind": stage.kind, "share": stage.share, "started_at": now.isoformat()})
    record.stage_index, record.stage_started_at = index, now
    record.state["failures"], record.state["errors"] = {}, 0
    note = f"rollout of v{record.version}: every check passed; next stage {stage.kind}"
    forced = bool(record.state.get("forced", False))
    if stage.kind == "full":
        _apply(loop, record.model, record.version, stage, reason=note, force=forced)
        record.status, record.reason = RolloutStatus.COMPLETED, "promoted after every stage passed"
        loop.rollouts.save(record, at=now)
        return loop.journal(
            "promote", record.model, record.version, "every stage passed: promoted to champion", evidence
        )
    _apply(loop, record.model, record.version, stage, reason=note, force=forced)
    record.state["plan"] = plan_stage(loop, model, stage, checks=list(policy.checks), alpha=policy.alpha)
    loop.rollouts.save(record, at=now)
    label = stage.kind + (f" {stage.share:.0%}" if stage.kind == "canary" else "")
    return loop.journal(
        "stage",
        record.model,
        record.version,
        f"every check passed: on to {label}",
        {**evidence, "plan": record.state["plan"]},
    )


def _policy_args(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored policy (``Rollout.to_dict()``) back as constructor arguments."""
    from fourloops.definitions.durations import parse_duration

    stages = [
        RolloutStage(
            s["kind"],
            float(s["share"]),
            int(s["min_requests"]),
            parse_duration(s["min_duration"], what="min_duration") if s.get("min_duration") else None,
            parse_duration(s["max_duration"], what="max_duration") if s.get("max_duration") else None,
        )
        for s in stored["stages"]
    ]
    checks = [Check(**c) for c in stored["checks"]]
    return {
        "stages": stages,
        "checks": checks,
        "alpha": stored["alpha"],
        "failures": stored["failures"],
        "errors": stored["errors"],
        "on_failure": stored["on_failure"],
        "on_timeout": stored.get("on_timeout", "pause"),
    }
