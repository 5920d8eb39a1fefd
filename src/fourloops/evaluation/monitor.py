"""``fl.monitor``: the monitor on two data sets (files or frames), no project needed.

>>> import numpy as np, polars as pl
>>> import fourloops as fl
>>> rng = np.random.default_rng(0)
>>> reference = pl.DataFrame({"x": rng.normal(size=5000), "city": rng.choice(["a", "b"], 5000)})
>>> current = pl.DataFrame({"x": rng.normal(0.5, 1, 3000), "city": rng.choice(["a", "b"], 3000)})
>>> result = fl.monitor(reference, current, window=1000)
>>> [(w.index, w.drifted()) for w in result.windows]
[(0, ['x']), (1, ['x']), (2, ['x'])]
>>> result.alerts[0].kind, result.alerts[0].column, result.alerts[0].windows
('input_drift', 'x', (0, 1, 2))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from fourloops.engines.base import Engine, Stratum, TableScan
from fourloops.engines.summaries import POSITION, RowWindows, ScorePlan, ScoreSummary, TimeWindows
from fourloops.errors import ConfigError, SchemaError
from fourloops.evaluation.alerts import AlertPolicy, RuleContext, detect
from fourloops.evaluation.assess import Assessment, assess, reference_health, window_bounds
from fourloops.evaluation.drift.methods import Kind, MethodResult
from fourloops.evaluation.drift.policy import ColumnDrift, DriftPolicy, adjust
from fourloops.evaluation.monitor_result import MonitorResult, WindowResult
from fourloops.evaluation.multivariate import DomainClassifier, MultivariateResult
from fourloops.evaluation.operations import operations, operations_columns
from fourloops.evaluation.profile import ReferenceProfile, classify, fit_profile
from fourloops.evaluation.window_metrics import realised
from fourloops.evaluation.windows import WindowBounds, WindowSpec, WindowStatus, time_origin

__all__ = ["PRIMARY", "as_table", "monitor", "run"]

#: The metric judged for performance alerts, per task, when none is named.
PRIMARY = {"binary": "roc_auc", "regression": "rmse", "multiclass": "accuracy"}


def as_table(data: Any, what: str) -> pa.Table | str | Sequence[str]:
    """Arrow for a Polars/pandas frame or Arrow table; a path (or list of paths) as it is."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, str | Path):
        return str(data)
    if isinstance(data, list | tuple) and all(isinstance(d, str | Path) for d in data):
        return [str(d) for d in data]
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        table = data.to_arrow()
        assert isinstance(table, pa.Table)
        return table
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise ConfigError(
        f"{what}: give a Polars or pandas frame, an Arrow table or a file path, got {type(data).__name__}"
    )


def _task(
    scan: TableScan, score: str | None, prediction: str | None, label: str | None, task: str | None
) -> str | None:
    if task is not None:
        if task not in PRIMARY:
            raise ConfigError(f"task must be binary, multiclass or regression, got {task!r}")
        return task
    if score is not None:
        return "binary"
    if prediction is not None:
        kind = classify(scan.schema()[prediction])
        return "regression" if kind == "numeric" else "multiclass"
    return None


def _check_columns(scan: TableScan, names: Sequence[str | None], what: str) -> None:
    types = scan.schema()
    for name in names:
        if name is not None and name not in types:
            raise SchemaError(f"{what} has no column {name!r} (it has {', '.join(list(types)[:20])})")


def _quote(column: str) -> str:
    """``column`` as an SQL identifier."""
    return '"' + column.replace('"', '""') + '"'


def _offending(scan: TableScan, column: str, condition: str, where: str | None) -> tuple[int, Any]:
    """How many rows of ``where`` meet ``condition``, and ``column``'s value in one of them (text cut
    to 40 characters, for a one-line message)."""
    condition = f"({where}) AND {condition}" if where else condition
    count = scan.rows(condition)
    if not count:
        return 0, None
    example = scan.sample([column], 1, where=condition).column(0)[0].as_py()
    return count, example[:37] + "..." if isinstance(example, str) and len(example) > 40 else example


def _values(count: int) -> str:
    return f"{count:,} value{'s' * (count != 1)}"


def _not_numbers(scan: TableScan, column: str, where: str | None) -> tuple[int, Any]:
    """How many values of ``column`` do not read as numbers (nulls aside), and one of them."""
    q = _quote(column)
    return _offending(scan, column, f"{q} IS NOT NULL AND TRY_CAST({q} AS DOUBLE) IS NULL", where)


def _numbers_type(duckdb_type: str) -> bool:
    """Whether values of this type are numbers as they are (booleans read as 0 and 1)."""
    return classify(duckdb_type) == Kind.NUMERIC or duckdb_type.upper() == "BOOLEAN"


def _check_numbers(scan: TableScan, names: Sequence[str | None], what: str, where: str | None) -> None:
    """A score or label column must hold numbers (booleans, or text that reads as numbers, will do)."""
    types = scan.schema()
    for name in names:
        if name is None or name not in types or _numbers_type(types[name]):
            continue
        count, example = _not_numbers(scan, name, where)
        if count:
            raise SchemaError(
                f"{what}'s column {name!r} must hold numbers; it is {types[name]} and holds {example!r} "
                f"({_values(count)} {'are' if count != 1 else 'is'} not a number)"
            )


def _check_binary(
    scan: TableScan, score: str | None, label: str | None, what: str, where: str | None
) -> None:
    """A binary model's scores are probabilities and its labels 0 or 1 (not silently clipped or cut at
    0.5), in the rows that match ``where``; NaN, infinity and nulls aside, which monitoring counts
    as missing."""
    types = scan.schema()
    for column, outside, rule in (
        (score, "NOT ({v} BETWEEN 0 AND 1)", "holds scores of a binary model: probabilities in [0, 1]"),
        (label, "{v} NOT IN (0, 1)", "holds a binary model's labels: 0 or 1"),
    ):
        if column is None or column not in types:
            continue
        value = f"TRY_CAST({_quote(column)} AS DOUBLE)"
        count, example = _offending(scan, column, f"isfinite({value}) AND {outside.format(v=value)}", where)
        if count:
            raise SchemaError(
                f"{what}'s column {column!r} {rule}; it holds {example!r} ({_values(count)} outside)"
            )


def _unread_numbers(
    scan: TableScan, profile: ReferenceProfile, types: Mapping[str, str], where: str | None
) -> list[str]:
    """Notes on the reference's numeric columns that the current data holds as another type.

    Their values are read as numbers where they are numbers; any other value counts as missing,
    so the window's null share (and its data-quality alert) shows it. A note says how many.
    """
    notes = []
    for column, p in profile.columns.items():
        if p.kind != Kind.NUMERIC or column == profile.prediction or column not in types:
            continue
        if _numbers_type(types[column]):
            continue
        count, example = _not_numbers(scan, column, where)
        if count:
            notes.append(
                f"{column!r} is {types[column]} in the current data, numbers in the reference: "
                f"{_values(count)} that {'are' if count != 1 else 'is'} not a number (such as {example!r}) "
                "counted as missing"
            )
        else:
            notes.append(f"{column!r} is {types[column]} in the current data: read as numbers")
    return notes


def _between(column: str, start: datetime | None, end: datetime | None) -> str | None:
    """The SQL condition ``start <= column < end`` (either side left out when ``None``; ``None``
    when both are)."""
    q = _quote(column)
    sides = [
        f"{q} {op} TIMESTAMPTZ '{t.astimezone(UTC).isoformat()}'"
        for op, t in ((">=", start), ("<", end))
        if t
    ]
    return " AND ".join(sides) or None


def _window_sql(windows: TimeWindows | RowWindows | None, bounds: WindowBounds) -> str | None:
    """The SQL condition that selects one window's rows."""
    if isinstance(windows, TimeWindows) and bounds.start is not None and bounds.end is not None:
        return _between(windows.column, bounds.start, bounds.end)
    if isinstance(windows, RowWindows):
        first = bounds.index * windows.size
        return f"{POSITION} >= {first} AND {POSITION} < {first + windows.size}"
    return None


def _cores() -> int:
    """The cores this process may run on (its affinity, which containers set), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _multivariate(
    tested: Sequence[WindowBounds],
    classifier: DomainClassifier,
    profile: ReferenceProfile,
    ref_scan: TableScan | None,
    cur_scan: TableScan,
    windows: TimeWindows | RowWindows | None,
    conditions: list[str],
    reference_sample: pa.Table | None,
) -> list[MultivariateResult | None]:
    """The domain classifier's verdict on each of the ``tested`` windows (see multivariate); ``None``
    where it cannot fit, and for every window without a reference to sample."""
    columns = [c for c in profile.columns if c != profile.prediction]
    if not columns:
        return [None] * len(tested)
    if reference_sample is None:
        if ref_scan is None:
            return [None] * len(tested)
        reference_sample = ref_scan.sample(columns, classifier.rows, seed=classifier.seed)
    columns = [c for c in columns if c in reference_sample.column_names]
    # every window's sample in one pass over the data (not a query per window)
    samples = cur_scan.sample_windows(
        columns,
        classifier.rows,
        [Stratum(_window_sql(windows, b), b.rows) for b in tested],
        where=" AND ".join(conditions) or None,
        seed=classifier.seed,
    )
    # The fits are independent and LightGBM trains outside the GIL: one a core at a time (each on one
    # thread, seeded: the verdicts do not depend on the order they finish in).
    reference = reference_sample
    with ThreadPoolExecutor(max_workers=max(1, min(len(tested), _cores()))) as pool:
        numeric = {c for c in columns if profile.columns[c].kind == Kind.NUMERIC}
        return list(pool.map(lambda sample: classifier.test(reference, sample, columns, numeric), samples))


def _adjust_with(window: WindowResult, verdict: MultivariateResult, policy: DriftPolicy) -> None:
    """The window's verdicts again, with the classifier's test in the same Benjamini–Hochberg family.

    So the chance that anything at all alarms in a window where nothing changed stays at alpha.
    """
    scopes: list[tuple[str | None, str]] = [(None, c) for c in window.drift]
    scopes += [(key, c) for key, s in window.segments.items() for c in s.drift]
    tests = [window.drift[c] if key is None else window.segments[key].drift[c] for key, c in scopes]
    if window.prediction_drift is not None:
        tests.append(window.prediction_drift)
    auc = MethodResult(
        "domain_classifier", verdict.statistic, verdict.p_value, verdict.statistic, verdict.threshold
    )
    tests.append(ColumnDrift("(all columns)", "multivariate", verdict.rows[1], (auc,), policy.alpha))
    judged = adjust(tests, policy)
    for (key, column), test in zip(scopes, judged, strict=False):
        if key is None:
            window.drift[column] = test
        else:
            window.segments[key].drift[column] = test
    if window.prediction_drift is not None:
        window.prediction_drift = judged[len(scopes)]
    mv = judged[-1]
    assert window.multivariate is not None
    window.multivariate.update(p_adjusted=mv.p_adjusted, drifted=mv.drifted)


def _windows_before(
    history: Callable[[datetime, datetime], TableScan],
    cur_scan: TableScan,
    profile: ReferenceProfile,
    windows: TimeWindows,
    pool: int,
    label: str | None,
    where: str | None,
) -> dict[int, tuple[WindowBounds, dict[tuple[str, Any], ScoreSummary]]]:
    """The ``pool - 1`` windows before the first one: each segment's score summary (indices -1, -2, ...).

    A segment is judged on its last windows pooled (:mod:`fourloops.evaluation.pooling`); a range
    cut out of a longer log (``since``) reads the windows its first pools reach back to, scores
    only (one query: no drift, health or metrics of their own), so that its first windows are
    judged as the monitor of the whole log judges them.
    """
    if pool < 2 or profile.score is None or not profile.segments:
        return {}
    width = windows.width
    start = windows.origin - (pool - 1) * width
    conditions = [f"({where})"] if where else []
    conditions.append(str(_between(windows.column, start, windows.origin)))
    earlier = TimeWindows(windows.column, start, width)
    plan = replace(profile.plan(earlier, label=label), numeric={}, categorical={}, pooled={}, defaults={})
    scan = history(start, windows.origin)
    try:
        summaries = scan.summarize(plan, where=" AND ".join(conditions))
    finally:
        if scan is not cur_scan:
            scan.close()
    out: dict[int, tuple[WindowBounds, dict[tuple[str, Any], ScoreSummary]]] = {}
    for (index, column, value), scores in summaries.scores.items():
        if column is None or value is None:
            continue
        shifted = index - (pool - 1)
        if shifted not in out:
            lo = windows.origin + shifted * width
            out[shifted] = (WindowBounds(shifted, lo, lo + width, None, None, 0, WindowStatus.OK), {})
        out[shifted][1][(column, value)] = scores
    return out


def run(
    ref_scan: TableScan | None,
    cur_scan: TableScan,
    *,
    timestamp: str | None = None,
    window: str | int | timedelta | None = None,
    label: str | None = None,
    score: str | None = None,
    prediction: str | None = None,
    task: str | None = None,
    segments: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    policy: DriftPolicy | None = None,
    alerts: AlertPolicy | None = None,
    defaults: Mapping[str, Any] | None = None,
    threshold: float = 0.5,
    since: datetime | None = None,
    until: datetime | None = None,
    seed: int = 0,
    profile: ReferenceProfile | None = None,
    where: str | None = None,
    mature: Any = None,
    observed_until: datetime | None = None,
    primary: str | None = None,
    multivariate: DomainClassifier | None = None,
    reference_sample: pa.Table | None = None,
    operational: bool = False,
    budget: Mapping[str, float] | None = None,
    coverage: Mapping[str, float] | None = None,
    serving: Callable[[Sequence[WindowBounds]], Sequence[Mapping[str, Any]]] | None = None,
    history: Callable[[datetime, datetime], TableScan] | None = None,
    check_values: bool = False,
) -> MonitorResult:
    """The monitor on two open scans (both doors end here); with ``profile``, no reference scan is read.

    ``serving(bounds)`` gives, per window, what the servers counted beside the event log
    (contract rejections, CPU time: :mod:`fourloops.storage.serving_periods`), merged into the
    window's ``operations``. ``history(start, end)`` opens the data before ``since`` (it may
    return ``cur_scan`` itself, which is not closed): the windows a segment's first pools reach
    back to are read from it, their scores only (:func:`_windows_before`).
    ``check_values``: refuse a binary model's scores outside [0, 1] and labels other than 0 and 1
    (files and frames; the event log's were checked when they arrived).
    """
    policy = policy or (profile.policy if profile is not None else DriftPolicy())
    alerts = alerts or AlertPolicy()
    spec = WindowSpec.parse(window)
    if spec is not None and spec.width is not None and timestamp is None:
        raise ConfigError(f"window {window!r} is a duration: give the timestamp column (--timestamp)")
    output = score or prediction
    _check_columns(cur_scan, [timestamp, output, *segments], "the current data")
    cur_types = cur_scan.schema()
    has_labels = label is not None and label in cur_types
    if label is not None and not has_labels and profile is None:
        raise SchemaError(f"the current data has no label column {label!r}")
    notes: list[str] = []
    task = _task(cur_scan, score, prediction, label, task)
    numbers = task in ("binary", "regression")
    # the rows the monitor reads (before ``since`` too: a segment's first pools read their scores)
    before_until = _between(timestamp, None, until) if timestamp is not None else None
    read = " AND ".join(c for c in (f"({where})" if where else None, before_until) if c) or None
    if numbers:
        _check_numbers(cur_scan, [output, label], "the current data", read)
    if check_values and task == "binary":
        _check_binary(cur_scan, output, label, "the current data", read)
    if profile is None:
        if ref_scan is None:
            raise ConfigError("give a reference: data to profile, or a fitted profile")
        _check_columns(ref_scan, [output, *segments], "the reference")
        ref_label = label if label is not None and label in ref_scan.schema() else None
        if numbers:
            _check_numbers(ref_scan, [output, ref_label], "the reference", None)
        if check_values and task == "binary":
            _check_binary(ref_scan, output, ref_label, "the reference", None)
        plan = ScorePlan(task, output, ref_label) if task is not None and output is not None else None
        exclude = [c for c in (timestamp, label, score, prediction) if c]
        profile = fit_profile(
            ref_scan,
            columns=columns,
            segments=segments,
            score=plan,
            defaults=defaults,
            policy=policy,
            exclude=exclude,
        )
    missing = [c for c in profile.columns if c not in cur_types and c != profile.prediction]
    if missing:
        notes.append(f"the current data lacks {', '.join(missing)}: counted as null in every window")
    judged_profile = profile.without(missing)
    conditions = [f"({where})"] if where else []
    observed_from: datetime | None = None
    windows: TimeWindows | RowWindows | None = None
    first_window = last_window = None
    if timestamp is not None and since is not None:
        conditions.append(str(_between(timestamp, since, None)))
    if before_until is not None:
        conditions.append(before_until)
    if spec is not None and spec.width is not None:
        assert timestamp is not None
        first, last = cur_scan.time_range(timestamp)
        if first is not None and first.tzinfo is None:
            notes.append(f"timestamps of {timestamp!r} have no time zone: read as UTC")
        start = since or first
        if start is not None:
            origin = time_origin(start if start.tzinfo else start.replace(tzinfo=UTC), spec.width)
            windows = TimeWindows(timestamp, origin, spec.width)
            end = until or (
                last.replace(tzinfo=last.tzinfo or UTC) + timedelta(microseconds=1) if last else None
            )
            observed_until = observed_until or end
            observed_from = since or (first if first is None or first.tzinfo else first.replace(tzinfo=UTC))
            first_window = 0
            if end is not None:
                last_window = max(0, -(-(end - origin) // spec.width) - 1)
    elif spec is not None and spec.rows is not None:
        windows = RowWindows(spec.rows)
    notes += _unread_numbers(cur_scan, profile, cur_types, " AND ".join(conditions) or None)
    summary_plan = judged_profile.plan(windows, label=label if has_labels else None)
    if operational:
        numeric, categorical = operations_columns(cur_types)
        summary_plan = replace(
            summary_plan,
            numeric={**summary_plan.numeric, **numeric},
            categorical={**summary_plan.categorical, **categorical},
        )
    summaries = cur_scan.summarize(summary_plan, where=" AND ".join(conditions) or None)
    before = None
    if history is not None and isinstance(windows, TimeWindows) and since is not None and has_labels:
        before = _windows_before(history, cur_scan, judged_profile, windows, alerts.pool, label, where)
    how = Assessment(
        windows,
        observed_until=observed_until,
        observed_from=observed_from,
        mature=mature or (lambda _b: True),
        threshold=threshold,
        seed=seed,
        has_labels=has_labels,
        first_window=first_window,
        last_window=last_window,
        # The segment alerts judge this metric on pooled windows (see evaluation/pooling).
        pool_metric=alerts.metric or primary or (PRIMARY.get(task) if task else None),
        pool=alerts.pool,
        whole_history=since is None,
        before=before,
    )
    # The domain classifier (a sample query and a model a window, outside the GIL) runs beside the
    # tests and metrics of the windows (Python and NumPy): neither needs the other's results.
    with ThreadPoolExecutor(max_workers=1) as beside:
        tested: list[WindowBounds] = []
        classified = None
        if multivariate is not None:
            every = window_bounds(judged_profile, summaries, how)
            tested = [b for b in every if b.status != WindowStatus.TOO_FEW_ROWS]
            classified = beside.submit(
                _multivariate,
                tested,
                multivariate,
                judged_profile,
                ref_scan,
                cur_scan,
                windows,
                conditions,
                reference_sample,
            )
        try:
            judged = assess(judged_profile, summaries, how)
            verdicts = (
                dict(zip([b.index for b in tested], classified.result(), strict=True)) if classified else {}
            )
        except BaseException:
            # Ctrl-C or an error here: stop the classifier's queries rather than wait for them (again
            # until it ends: a query may start just after an interrupt; its fits end on their own)
            if classified is not None and not classified.cancel():
                while not classified.done():
                    for scan in (cur_scan, ref_scan):
                        if scan is not None:
                            scan.interrupt()
                    wait([classified], timeout=0.05)
            raise
    for judged_window in judged:
        verdict = verdicts.get(judged_window.index)
        if verdict is not None:
            judged_window.multivariate = verdict.to_dict()
            _adjust_with(judged_window, verdict, judged_profile.policy)
    for w in judged:
        for column in missing:
            w.health[column] = {
                "null_share": 1.0 if w.bounds.rows else 0.0,
                "default_share": 0.0,
                "unknown_share": 0.0,
            }
    ref_scores = profile.summaries.scores.get((0, None, None))
    ref_metrics = realised(ref_scores, threshold=threshold, seed=seed) if ref_scores else {}
    primary = primary or (PRIMARY.get(task) if task else None)
    if operational:
        counted = serving([w.bounds for w in judged]) if serving is not None else [{}] * len(judged)
        for judged_window, extra in zip(judged, counted, strict=True):
            ops = operations(summaries, judged_window.index)
            if ops is not None:
                judged_window.extra["operations"] = {**ops, **extra}
    ctx = RuleContext(
        task,
        primary,
        reference_health(profile),
        {k: v.value for k, v in ref_metrics.items() if v.value is not None},
        profile.prediction,
        budget=dict(budget or {}),
        coverage=dict(coverage or {}),
        window_days=(spec.width.total_seconds() / 86400)
        if spec is not None and spec.width is not None
        else None,
    )
    found = detect(judged, alerts, ctx)
    reference = {
        "rows": profile.rows,
        "columns": {c: p.kind for c, p in profile.columns.items() if c != profile.prediction},
        "metrics": {k: v.to_dict() for k, v in ref_metrics.items()},
        "health": reference_health(profile),
    }
    settings = {
        "window": None if spec is None else str(spec),
        "timestamp": timestamp,
        "task": task,
        "label": label,
        "score": score,
        "prediction": prediction,
        "segments": list(segments),
        "threshold": threshold,
        "primary": primary,
        "drift": policy.to_dict(),
        "alerts": {
            "consecutive": alerts.consecutive,
            "max_drop": alerts.max_drop,
            "min_labels": alerts.min_labels,
            "null_rise": alerts.null_rise,
            "pool": alerts.pool,
            "segment_alpha": alerts.segment_alpha,
        },
    }
    return MonitorResult(reference, judged, found, settings, notes)


def monitor(
    reference: Any,
    current: Any,
    *,
    timestamp: str | None = None,
    window: str | int | timedelta | None = None,
    label: str | None = None,
    score: str | None = None,
    prediction: str | None = None,
    task: str | None = None,
    segments: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    policy: DriftPolicy | None = None,
    alerts: AlertPolicy | None = None,
    defaults: Mapping[str, Any] | None = None,
    threshold: float = 0.5,
    since: datetime | None = None,
    until: datetime | None = None,
    seed: int = 0,
    multivariate: bool = True,
    engine: Engine | None = None,
) -> MonitorResult:
    """Monitor ``current`` against ``reference``, window by window.

    Parameters
    ----------
    reference, current:
        Polars or pandas frames, Arrow tables, or Parquet/CSV paths (a glob, or a list of Parquet files).
    timestamp:
        The current data's time column; windows are then by time.
    window:
        ``"1d"``, ``"7d"``, ``"12h"`` (with a timestamp) or a row count (``5000``, in the data's
        order); default one window of all rows. A last window the data does not fill is ``incomplete``.
    label, score, prediction, task:
        The label column (rows without a label are pending), the model's probability of the
        positive class (binary) or its prediction (a number: regression; a class: multiclass).
        With them: prediction drift, realised metrics with intervals, and (binary) estimated
        metrics before labels arrive.
    segments:
        Columns whose values are judged separately too (drift and metrics per value).
    columns:
        Columns to monitor (default: every number and category but the time, label and output).
    methods:
        Drift methods (``ks``, ``chi2``, ``psi``, ``jensen_shannon``, ``wasserstein``); the first
        that applies to a column is its verdict. Default: ``ks`` for numbers, ``chi2`` for categories.
    policy, alerts:
        The drift policy (:class:`~fourloops.evaluation.drift.DriftPolicy`) and the alert policy
        (:class:`~fourloops.evaluation.alerts.AlertPolicy`).
    defaults:
        A column's default value (its share is reported as ``default_share``).
    multivariate:
        Also ask a classifier whether it can tell each window from the reference (joint drift that
        no single column shows; see :mod:`fourloops.evaluation.multivariate`).
    """
    from fourloops.engines.duckdb import DuckDBEngine

    if methods is not None:
        base = policy or DriftPolicy()
        policy = DriftPolicy(**{**base.__dict__, "methods": tuple(methods)})
    engine = engine or DuckDBEngine()
    spec = WindowSpec.parse(window)
    ref_scan = engine.open(as_table(reference, "reference"), positions=False)
    try:
        cur_scan = engine.open(
            as_table(current, "current"), positions=spec is not None and spec.rows is not None
        )
        try:
            return run(
                ref_scan,
                cur_scan,
                timestamp=timestamp,
                window=window,
                label=label,
                score=score,
                prediction=prediction,
                task=task,
                segments=segments,
                columns=columns,
                policy=policy,
                alerts=alerts,
                defaults=defaults,
                threshold=threshold,
                since=since,
                until=until,
                seed=seed,
                multivariate=DomainClassifier(seed=seed) if multivariate else None,
                history=lambda _start, _end: cur_scan,  # the rows before since are in the same data
                check_values=True,
            )
        finally:
            cur_scan.close()
    finally:
        ref_scan.close()
