"""From summaries to judged windows: the part both monitoring doors share.

:func:`assess` takes the reference profile and the current data's summaries
(per window and segment) and gives one :class:`~fourloops.evaluation.monitor_result.WindowResult`
per window: drift of every column and of the prediction (overall and per
segment, with one Benjamini–Hochberg correction over all of a window's
tests), the data's health, realised metrics where labels have matured,
estimated metrics before they have, and the estimate checked against the
realised value on the same rows. A window's segment intervals are
simultaneous (Bonferroni over its segments), so that reading them together
keeps their error rate however many segments a model declares. With a
``pool_metric``, each mature window also gives every segment that metric on
its last windows pooled (:mod:`fourloops.evaluation.pooling`), what the
segment alerts judge.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from fourloops.engines.summaries import (
    CategoricalSummary,
    GroupInfo,
    NumericSummary,
    RowWindows,
    ScoreSummary,
    Summaries,
    TimeWindows,
)
from fourloops.evaluation.drift.methods import METHODS, Kind
from fourloops.evaluation.drift.policy import ColumnDrift, adjust
from fourloops.evaluation.monitor_result import MetricReport, SegmentWindow, WindowResult
from fourloops.evaluation.pooling import PooledMetric, SegmentPool, measure, pool_windows
from fourloops.evaluation.profile import ReferenceProfile
from fourloops.evaluation.window_metrics import (
    Calibrator,
    MetricValue,
    estimate,
    estimate_check,
    realised,
)
from fourloops.evaluation.windows import WindowBounds, WindowStatus, bounds

__all__ = ["Assessment", "assess", "health_of", "reference_health", "window_bounds"]


@dataclass(frozen=True)
class Assessment:
    """How to judge windows: windows, the observation's end, label maturity, threshold, seed."""

    windows: TimeWindows | RowWindows | None
    observed_until: datetime | None = None
    observed_from: datetime | None = None
    mature: Callable[[WindowBounds], bool] = field(default=lambda _b: True)
    threshold: float = 0.5
    seed: int = 0
    has_labels: bool = False
    first_window: int | None = None
    last_window: int | None = None
    #: The metric judged per segment on pooled windows (``None``: none), and the longest pool.
    pool_metric: str | None = None
    pool: int = 1
    #: Whether nothing precedes the first window (the data starts there): its first windows are
    #: then pooled with what they have. A range cut out of a longer history (``since``) is given
    #: the score summaries of the windows before it (``before``) and pools its first windows with
    #: them; without them it pools a window only once its longest pool lies in the range. Either
    #: way a window is judged on the same pools however the range around it was cut (rolling
    #: monitors agree with each other and with the monitor of the whole log).
    whole_history: bool = True
    #: The windows before the first (negative indices): their bounds and each segment's score
    #: summary, ``(column, value) -> summary``, read for the pools only.
    before: Mapping[int, tuple[WindowBounds, Mapping[tuple[str, Any], ScoreSummary]]] | None = None


def _rng(seed: int, window: int, column: str, segment: str | None) -> np.random.Generator:
    key = f"{column}\x00{segment or ''}".encode()
    return np.random.default_rng([seed, window & 0x7FFFFFFF, zlib.crc32(key)])


def _test(
    profile: ReferenceProfile,
    column: str,
    ref: Any,
    cur: Any,
    rows: int,
    rng: np.random.Generator,
) -> ColumnDrift:
    policy = profile.policy
    kind = profile.columns[column].kind
    methods = policy.applicable(kind)
    if cur is None or ref is None or cur.count == 0:
        empty_note = "no values in the window" if ref is not None else "no reference for this segment"
        zero = [
            METHODS[m].test(_empty(profile, column), rng, draws=0, floor=policy.floor(m)) for m in methods
        ]
        return ColumnDrift(column, kind, 0, tuple(zero), policy.alpha, note=empty_note)
    cmp = profile.comparison(column, ref, cur)
    results = tuple(METHODS[m].test(cmp, rng, draws=policy.draws, floor=policy.floor(m)) for m in methods)
    note: str | None = None
    if ref.count == 0:
        note = "the reference has no values"
    elif cur.count < policy.min_rows:
        note = f"too few values ({cur.count} < {policy.min_rows})"
    return ColumnDrift(column, kind, int(cur.count), results, policy.alpha, note=note)


def _empty(profile: ReferenceProfile, column: str) -> Any:
    from fourloops.evaluation.drift.methods import Comparison

    p = profile.columns[column]
    if p.kind == Kind.NUMERIC:
        zeros = np.zeros(len(p.edges) + 1, dtype=np.int64)
        return Comparison(
            p.kind, zeros, zeros, np.asarray(p.coarse, dtype=np.int64), np.zeros(zeros.size), None, 1.0
        )
    zeros = np.zeros(len(p.categories) + 1, dtype=np.int64)
    return Comparison(p.kind, zeros, zeros)


def health_of(summary: NumericSummary | CategoricalSummary, rows: int) -> dict[str, float]:
    """Null, default-value and unseen-category shares of a column among ``rows`` rows."""
    if rows <= 0:
        return {"null_share": 0.0, "default_share": 0.0, "unknown_share": 0.0}
    unknown = summary.unseen if isinstance(summary, CategoricalSummary) else 0
    return {
        "null_share": summary.nulls / rows,
        "default_share": summary.defaults / rows,
        "unknown_share": unknown / rows,
    }


#: What :func:`assess` derives from a reference's scores (its metrics, its calibrator), kept for the
#: last few references seen: a monitor that runs every window against the same reference (the
#: controller, a simulation) computes them once. Keyed by the scores' content, so never stale.
_DERIVED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_DERIVED_SIZE = 256
_DERIVED_LOCK = threading.Lock()


def _fingerprint(summary: ScoreSummary) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{summary.task}\x00{summary.grid}\x00{summary.pending}".encode())
    for values in (
        summary.positives,
        summary.negatives,
        summary.unlabelled,
        summary.score_sums,
        summary.sums,
    ):
        digest.update(np.ascontiguousarray(values).tobytes())
        digest.update(b"\x00")
    digest.update(repr(sorted(summary.confusion.items())).encode())
    for block in sorted(summary.blocks):  # (a reference's scores have none today; the key stays whole)
        digest.update(f"\x00{block}\x00".encode())
        digest.update(np.ascontiguousarray(summary.blocks[block]).tobytes())
    return digest.hexdigest()


def _derived(kind: str, summary: ScoreSummary, threshold: float, seed: int, make: Callable[[], Any]) -> Any:
    """``make()`` once per (kind, reference scores, threshold, seed); read-only results."""
    key = (kind, _fingerprint(summary), threshold, seed)
    with _DERIVED_LOCK:
        if key in _DERIVED:
            _DERIVED.move_to_end(key)
            return _DERIVED[key]
    value = make()  # outside the lock: two threads may both compute it, to the same result
    with _DERIVED_LOCK:
        _DERIVED[key] = value
        if len(_DERIVED) > _DERIVED_SIZE:
            _DERIVED.popitem(last=False)
    return value


def _reference_metrics(summary: ScoreSummary | None, how: Assessment) -> dict[str, MetricValue]:
    if summary is None:
        return {}
    return dict(
        _derived(
            "realised",
            summary,
            how.threshold,
            how.seed,
            lambda: realised(summary, threshold=how.threshold, seed=how.seed),
        )
    )


def reference_health(profile: ReferenceProfile) -> dict[str, dict[str, float]]:
    """The reference's own health, per column (what rises are measured from)."""
    rows = profile.rows
    out = {}
    for column, p in profile.columns.items():
        store = profile.summaries.numeric if p.kind == Kind.NUMERIC else profile.summaries.categorical
        summary = store.get(column, {}).get((0, None, None))
        if summary is not None:
            out[column] = health_of(summary, rows)
    return out


def _metrics(
    summary: ScoreSummary | None,
    reference: Mapping[str, MetricValue],
    calibrator: Calibrator | None,
    how: Assessment,
    bounds_: WindowBounds,
    min_labels: int,
    seed: int,
    confidence: float = 0.95,
) -> tuple[dict[str, MetricReport], dict[str, MetricValue], dict[str, dict[str, Any]]]:
    if summary is None:
        return {}, {}, {}
    estimated = estimate(summary, calibrator, threshold=how.threshold, confidence=confidence)
    if not how.has_labels:
        return {}, estimated, {}
    values = realised(summary, threshold=how.threshold, seed=seed, confidence=confidence)
    mature = how.mature(bounds_) and summary.labelled >= min_labels
    reports = {}
    for name, value in values.items():
        shown = value if mature else MetricValue(None, None, None, value.rows)
        ref = reference.get(name)
        reports[name] = MetricReport(
            shown, None if ref is None else ref.value, "mature" if mature else "pending"
        )
    checks = {}
    if mature and calibrator is not None:
        # every row labelled: the estimate on the labelled rows is the one above (same rows)
        on_labelled = (
            estimated
            if not summary.unlabelled.any()
            else estimate(
                summary,
                calibrator,
                threshold=how.threshold,
                confidence=confidence,
                labelled_only=True,
            )
        )
        checks = estimate_check(values, on_labelled)
    return reports, estimated, checks


def _reference_spread(
    summary: ScoreSummary | None, metric: str, how: Assessment
) -> tuple[float | None, float | None, int]:
    """A segment's ``metric`` on the reference's rows: value, standard error and rows (cached)."""
    if summary is None:
        return None, None, 0
    value, se, rows = _derived(
        f"spread:{metric}",
        summary,
        how.threshold,
        how.seed,
        lambda: measure(summary, metric, threshold=how.threshold, seed=how.seed),
    )
    return value, se, rows


def _seeder(base: int, bounds: Mapping[int, WindowBounds], label: str) -> Callable[[int, int], int]:
    """Seeds of a segment's pools, from the pool's size and its last window's start (not its index,
    which depends on where the range read begins): the same pool gets the same seed in any run."""

    def seed(size: int, index: int) -> int:
        start = bounds[index].start
        when = start.isoformat() if start is not None else str(index)
        return zlib.crc32(f"{base}\x00{when}\x00{size}\x00{label}".encode())

    return seed


def _pool_segments(
    windows: list[WindowResult], profile: ReferenceProfile, summaries: Summaries, how: Assessment
) -> None:
    """Every segment of every mature window: the metric on its last 2, 4, 8, ... mature windows pooled."""
    metric = how.pool_metric
    if metric is None or not how.has_labels:
        return
    mature = {w.index: w.bounds for w in windows if how.mature(w.bounds)}
    by_segment: dict[tuple[str, str], dict[int, ScoreSummary]] = {}
    for (index, column, value), scores in summaries.scores.items():
        if column is not None and value is not None and index in mature:
            by_segment.setdefault((column, value), {})[index] = scores
    for index, (earlier, scored) in (how.before or {}).items():
        if how.mature(earlier):
            mature[index] = earlier
            for key, scores in scored.items():
                by_segment.setdefault(key, {})[index] = scores
    first = min((w.index for w in windows), default=0)
    whole = how.whole_history or how.before is not None
    references: dict[tuple[str, str], tuple[float | None, float | None, int]] = {}
    alone: dict[tuple[str, str], dict[int, tuple[float | None, float | None, int]]] = {}
    for window in windows:
        index = window.index
        if index not in mature:
            continue
        if not whole and index - how.pool + 1 < first:
            continue  # its longest pool would reach before the range read: judged where it does not
        for segment in window.segments.values():
            key = (segment.column, segment.value)
            if key not in references:
                references[key] = _reference_spread(profile.summaries.scores.get((0, *key)), metric, how)
            reference, reference_se, reference_rows = references[key]
            if reference is None:
                continue
            pools = pool_windows(
                index,
                by_segment.get(key, {}),
                metric,
                longest=how.pool,
                threshold=how.threshold,
                seed=_seeder(how.seed, mature, segment.key),
                alone=alone.setdefault(key, {}),
            )
            segment.pooled[metric] = SegmentPool(
                reference,
                reference_se,
                tuple(
                    PooledMetric(members, mature[members[0]].start, window.bounds.end, v, se, n, spread)
                    for members, v, se, n, spread in pools
                ),
                reference_rows,
            )


def _window_indexes(summaries: Summaries, how: Assessment) -> list[int]:
    present = summaries.windows()
    if how.windows is None:
        return [0]
    lo = how.first_window if how.first_window is not None else (min(present) if present else 0)
    hi = how.last_window if how.last_window is not None else (max(present) if present else -1)
    return list(range(lo, hi + 1))


def _window_bounds(
    profile: ReferenceProfile, summaries: Summaries, how: Assessment, index: int
) -> WindowBounds:
    info = summaries.groups.get((index, None, None), GroupInfo(0))
    return bounds(
        how.windows,
        index,
        info.rows,
        first_row=info.first_row,
        last_row=info.last_row,
        observed_until=how.observed_until,
        observed_from=how.observed_from,
        min_rows=profile.policy.min_rows,
    )


def window_bounds(profile: ReferenceProfile, summaries: Summaries, how: Assessment) -> list[WindowBounds]:
    """The bounds of the windows :func:`assess` judges, in its order, without judging them."""
    return [_window_bounds(profile, summaries, how, index) for index in _window_indexes(summaries, how)]


def assess(profile: ReferenceProfile, summaries: Summaries, how: Assessment) -> list[WindowResult]:
    """Judge every window of ``summaries`` against ``profile`` (see the module docstring)."""
    policy = profile.policy
    prediction = profile.prediction
    columns = [c for c in profile.columns if c != prediction]
    ref_scores = profile.summaries.scores.get((0, None, None))
    reference_metrics = _reference_metrics(ref_scores, how)
    calibrator = (
        _derived("calibrator", ref_scores, 0.0, 0, lambda: Calibrator.fit(ref_scores))
        if ref_scores is not None and ref_scores.task == "binary"
        else None
    )
    segment_references: dict[tuple[str, str], dict[str, MetricValue]] = {}
    out = []
    for index in _window_indexes(summaries, how):
        info = summaries.groups.get((index, None, None), GroupInfo(0))
        b = _window_bounds(profile, summaries, how, index)
        window = WindowResult(b)
        key = (index, None, None)
        for column in columns:
            store = (
                summaries.numeric if profile.columns[column].kind == Kind.NUMERIC else summaries.categorical
            )
            cur = store.get(column, {}).get(key)
            if cur is not None:
                window.health[column] = health_of(cur, info.rows)
                if isinstance(cur, CategoricalSummary) and cur.unseen_values:
                    window.extra.setdefault("unseen_values", {})[column] = dict(cur.unseen_values)
        if b.status != WindowStatus.TOO_FEW_ROWS:
            tests: list[tuple[str | None, str, ColumnDrift]] = []
            for column in columns + ([prediction] if prediction in profile.columns else []):
                store = (
                    summaries.numeric
                    if profile.columns[column].kind == Kind.NUMERIC
                    else summaries.categorical
                )
                cur = store.get(column, {}).get(key)
                tests.append(
                    (
                        None,
                        column,
                        _test(
                            profile,
                            column,
                            profile.reference(column),
                            cur,
                            info.rows,
                            _rng(how.seed, index, column, None),
                        ),
                    )
                )
            for (w, seg, value), seg_info in summaries.groups.items():
                if w != index or seg is None or value is None:
                    continue
                segment = SegmentWindow(seg, value, seg_info.rows)
                window.segments[segment.key] = segment
                if seg_info.rows < policy.min_rows:
                    continue
                for column in columns:
                    if column == seg:
                        continue  # a segment's own column is constant inside it
                    kind = profile.columns[column].kind
                    store = summaries.numeric if kind == Kind.NUMERIC else summaries.categorical
                    cur = store.get(column, {}).get((w, seg, value))
                    ref = profile.reference(column, (seg, value)) or profile.reference(column)
                    tests.append(
                        (
                            segment.key,
                            column,
                            _test(
                                profile,
                                column,
                                ref,
                                cur,
                                seg_info.rows,
                                _rng(how.seed, index, column, segment.key),
                            ),
                        )
                    )
            judged = adjust([t for _, _, t in tests], policy)
            for (scope, column, _), verdict in zip(tests, judged, strict=True):
                if scope is None:
                    if column == prediction:
                        window.prediction_drift = verdict
                    else:
                        window.drift[column] = verdict
                else:
                    window.segments[scope].drift[column] = verdict
        seed = how.seed * 7919 + index
        window.metrics, window.estimated, window.checks = _metrics(
            summaries.scores.get(key), reference_metrics, calibrator, how, b, policy.min_rows, seed
        )
        # The segments' intervals hold together (Bonferroni over the window's segments): with 19
        # segments judged every day, separate 95 % intervals would miss somewhere most days.
        simultaneous = 1 - 0.05 / max(len(window.segments), 1)
        for seg_window in window.segments.values():
            seg_scores = summaries.scores.get((index, seg_window.column, seg_window.value))
            seg_key = (seg_window.column, seg_window.value)
            if seg_key not in segment_references:
                seg_ref = profile.summaries.scores.get((0, *seg_key))
                segment_references[seg_key] = _reference_metrics(seg_ref, how)
            seg_reference = segment_references[seg_key]
            seg_window.metrics, seg_window.estimated, _ = _metrics(
                seg_scores, seg_reference, calibrator, how, b, policy.min_rows, seed, simultaneous
            )
        out.append(window)
    _pool_segments(out, profile, summaries, how)
    return out
