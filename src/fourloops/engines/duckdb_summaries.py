"""Summaries on DuckDB: one aggregate query for the rows and moments, one streamed scan for the bins.

DuckDB reads the data where it lives (an Arrow table, Parquet files, the
compacted event log), assigns each row its window and segment values, and

1. aggregates rows, nulls, defaults, sums, squares, minimum and maximum per
   group with ``GROUPING SETS`` (one query, every column);
2. streams the few columns the bins need as Arrow record batches, which a
   vectorised NumPy kernel bins (``searchsorted`` on the reference edges, then
   one ``bincount`` per column and grouping), batch by batch.

Only the summaries stay in memory: the data never does. Binning is done by
NumPy because DuckDB's ``histogram(x, boundaries)`` takes about 15 times
longer for a hundred edges (measured: 4.4 s against 0.3 s for a million rows
of 25 columns).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fourloops.engines import duckdb_pit as sql
from fourloops.engines.summaries import (
    OTHER,
    POSITION,
    UNSEEN_NAMED,
    CategoricalSummary,
    GroupInfo,
    GroupKey,
    NumericSummary,
    RowWindows,
    ScoreSummary,
    Summaries,
    SummaryPlan,
    TimeWindows,
)

__all__ = ["POSITION", "summarize_relation"]

_W = "__fl_w"
_BATCH = 1 << 18
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _q(name: str) -> str:
    return sql.quote(name)


def _window_sql(plan: SummaryPlan) -> str:
    w = plan.windows
    if isinstance(w, TimeWindows):
        origin = int((w.origin - _EPOCH).total_seconds() * 1_000_000)
        width = int(w.width.total_seconds() * 1_000_000)
        return f"CAST(floor((epoch_us({_q(w.column)}) - {origin}) / {width}) AS BIGINT)"
    if isinstance(w, RowWindows):
        return f"CAST({POSITION} // {int(w.size)} AS BIGINT)"
    return "CAST(0 AS BIGINT)"


def _segment_sql(column: str) -> str:
    return f"coalesce(CAST({_q(column)} AS VARCHAR), 'null')"


def _number_sql(column: str) -> str:
    # NaN and infinity are nulls for monitoring (a contract would have refused them).
    value = f"CAST({_q(column)} AS DOUBLE)"
    return f"CASE WHEN isfinite({value}) THEN {value} END"


@dataclass(frozen=True)
class _Shape:
    """The columns of the streamed scan, by role."""

    segments: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]


def _where(plan: SummaryPlan, where: str | None) -> str:
    parts = [f"({where})"] if where else []
    if isinstance(plan.windows, TimeWindows):
        parts.append(f"{_q(plan.windows.column)} IS NOT NULL")
    return f"WHERE {' AND '.join(parts)}" if parts else ""


def _aggregate(con: duckdb.DuckDBPyConnection, relation: str, plan: SummaryPlan, where: str) -> Summaries:
    """Rows, positions, times and the moments of every numeric column, per group (one query)."""
    segs = list(plan.segments)
    ts = plan.windows.column if isinstance(plan.windows, TimeWindows) else None
    rows_only = isinstance(plan.windows, RowWindows)
    selects = [f"{_window_sql(plan)} AS {_W}"] + [f"{_segment_sql(s)} AS {_q('s_' + s)}" for s in segs]
    selects += [f"{_number_sql(c)} AS {_q('n_' + c)}" for c in plan.numeric]
    if ts:
        selects.append(f"{_q(ts)} AS __fl_ts")
    if rows_only:
        selects.append(POSITION)
    aggs = ["count(*) AS rows"]
    if rows_only:
        aggs += [f"min({POSITION}) AS first_row", f"max({POSITION}) AS last_row"]
    if ts:
        aggs += ["min(__fl_ts) AS start", 'max(__fl_ts) AS "end"']
    for i, column in enumerate(plan.numeric):
        v = _q("n_" + column)
        aggs += [
            f"sum({v}) AS s{i}",
            f"sum({v} * {v}) AS q{i}",
            f"min({v}) AS lo{i}",
            f"max({v}) AS hi{i}",
            f"approx_count_distinct({v}) AS u{i}",
        ]
        default = plan.defaults.get(column)
        if default is not None:
            aggs.append(f"count(*) FILTER (WHERE {v} = {float(default)!r}) AS d{i}")
    for i, column in enumerate(plan.categorical):
        default = plan.defaults.get(column)
        if default is not None:
            selects.append(f"CAST({_q(column)} AS VARCHAR) AS {_q('c_' + column)}")
            aggs.append(f"count(*) FILTER (WHERE {_q('c_' + column)} = {sql.literal(str(default))}) AS cd{i}")
    sets = ", ".join([f"({_W})"] + [f"({_W}, {_q('s_' + s)})" for s in segs])
    grouping = ", ".join(f"GROUPING({_q('s_' + s)}) AS {_q('g_' + s)}" for s in segs)
    query = (
        f"WITH x AS (SELECT {', '.join(selects)} FROM {relation} {where}) "
        f"SELECT {_W}, {', '.join([_q('s_' + s) for s in segs] + ([grouping] if grouping else []) + aggs)} "
        f"FROM x GROUP BY GROUPING SETS ({sets})"
    )
    table = con.sql(query).to_arrow_table()
    out = Summaries()
    for row in table.to_pylist():
        key = _key(row, segs)
        out.groups[key] = GroupInfo(
            int(row["rows"]),
            row.get("first_row"),
            row.get("last_row"),
            _aware(row.get("start")),
            _aware(row.get("end")),
        )
        for i, column in enumerate(plan.numeric):
            summary = NumericSummary.empty(plan.numeric[column])
            out.numeric.setdefault(column, {})[key] = NumericSummary(
                summary.edges,
                summary.counts,
                defaults=int(row.get(f"d{i}") or 0),
                total=float(row[f"s{i}"] or 0.0),
                squares=float(row[f"q{i}"] or 0.0),
                minimum=row[f"lo{i}"],
                maximum=row[f"hi{i}"],
                distinct=None if row[f"u{i}"] is None else int(row[f"u{i}"]),
            )
        for i, column in enumerate(plan.categorical):
            empty = CategoricalSummary.empty(plan.categorical[column])
            out.categorical.setdefault(column, {})[key] = CategoricalSummary(
                empty.categories, empty.counts, defaults=int(row.get(f"cd{i}") or 0)
            )
    return out


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _key(row: dict[str, Any], segs: Sequence[str]) -> GroupKey:
    for s in segs:
        if row.get("g_" + s) == 0:
            return (int(row[_W]), s, str(row["s_" + s]))
    return (int(row[_W]), None, None)


def _batches(
    con: duckdb.DuckDBPyConnection, relation: str, plan: SummaryPlan, where: str, shape: _Shape
) -> Iterator[pa.RecordBatch]:
    selects = [f"{_window_sql(plan)} AS {_W}"]
    selects += [f"{_segment_sql(s)} AS {_q('s_' + s)}" for s in shape.segments]
    selects += [f"{_number_sql(c)} AS {_q('n_' + c)}" for c in shape.numeric]
    selects += [f"CAST({_q(c)} AS VARCHAR) AS {_q('c_' + c)}" for c in shape.categorical]
    score = plan.score
    if score is not None:
        if score.task == "multiclass":
            selects.append(f"CAST({_q(score.score)} AS VARCHAR) AS __fl_score")
        else:
            selects.append(f"{_number_sql(score.score)} AS __fl_score")
        if score.label is not None:
            label = (
                f"CAST({_q(score.label)} AS VARCHAR)"
                if score.task == "multiclass"
                else _number_sql(score.label)
            )
            selects.append(f"{label} AS __fl_label")
    reader = con.sql(f"SELECT {', '.join(selects)} FROM {relation} {where}").to_arrow_reader(_BATCH)
    yield from reader


class _Groups:
    """Group codes of one batch for each grouping: overall, then per segment column."""

    def __init__(self, batch: pa.RecordBatch, segments: Sequence[str]) -> None:
        windows = batch.column(_W).to_numpy(zero_copy_only=False).astype(np.int64)
        self.sets: list[tuple[list[GroupKey], np.ndarray]] = []
        uniq, codes = np.unique(windows, return_inverse=True)
        overall: list[GroupKey] = [(int(w), None, None) for w in uniq]
        self.sets.append((overall, codes))
        for s in segments:
            encoded = pc.dictionary_encode(batch.column("s_" + s))
            values = encoded.dictionary.to_pylist()
            seg_codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            combined = codes * len(values) + seg_codes
            cuniq, cinv = np.unique(combined, return_inverse=True)
            keys: list[GroupKey] = [
                (int(uniq[c // len(values)]), s, str(values[c % len(values)])) for c in cuniq
            ]
            self.sets.append((keys, cinv))


def _bin_numeric(out: Summaries, plan: SummaryPlan, column: str, values: np.ndarray, groups: _Groups) -> None:
    edges = np.asarray(plan.numeric[column], dtype=float)
    nbins = len(edges) + 1
    finite = np.isfinite(values)
    bins = np.searchsorted(edges, values, side="left")
    low = finite & (bins == 0)
    high = finite & (bins == nbins - 1)
    column_map = out.numeric[column]
    for keys, codes in groups.sets:
        g = len(keys)
        counts = np.bincount(codes[finite] * nbins + bins[finite], minlength=g * nbins).reshape(g, nbins)
        nulls = np.bincount(codes[~finite], minlength=g)
        low_sum = np.bincount(codes[low], weights=values[low], minlength=g)
        high_sum = np.bincount(codes[high], weights=values[high], minlength=g)
        for i, key in enumerate(keys):
            prev = column_map[key]
            column_map[key] = NumericSummary(
                prev.edges,
                prev.counts + counts[i],
                prev.nulls + int(nulls[i]),
                prev.defaults,
                prev.total,
                prev.squares,
                prev.minimum,
                prev.maximum,
                prev.low_sum + float(low_sum[i]),
                prev.high_sum + float(high_sum[i]),
                prev.distinct,
            )


def _bin_categorical(
    out: Summaries, plan: SummaryPlan, column: str, array: pa.Array, groups: _Groups
) -> None:
    categories = plan.categorical[column]
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    pooled = plan.pooled.get(column, frozenset())
    other = index.get(OTHER, k)
    encoded = pc.dictionary_encode(array)
    values = encoded.dictionary.to_pylist()
    # Each distinct value of the batch -> its category, the unseen bucket (k) or null (k + 1).
    lookup = np.array([index.get(v, other if v in pooled else k) for v in values] + [k + 1], dtype=np.int64)
    raw = encoded.indices.fill_null(len(values)).to_numpy(zero_copy_only=False).astype(np.int64)
    codes_v = lookup[raw]
    unseen_mask = codes_v == k
    column_map = out.categorical[column]
    for keys, codes in groups.sets:
        g = len(keys)
        counts = np.bincount(codes * (k + 2) + codes_v, minlength=g * (k + 2)).reshape(g, k + 2)
        named: dict[int, Counter[str]] = {}
        if unseen_mask.any():
            for code, raw_value in zip(codes[unseen_mask].tolist(), raw[unseen_mask].tolist(), strict=True):
                named.setdefault(code, Counter())[values[raw_value]] += 1
        for i, key in enumerate(keys):
            prev = column_map[key]
            seen = Counter(prev.unseen_values)
            seen.update(named.get(i, {}))
            column_map[key] = CategoricalSummary(
                prev.categories,
                prev.counts + counts[i, :k],
                prev.unseen + int(counts[i, k]),
                prev.nulls + int(counts[i, k + 1]),
                prev.defaults,
                dict(seen.most_common(UNSEEN_NAMED)),
            )


def _bin_scores(out: Summaries, plan: SummaryPlan, batch: pa.RecordBatch, groups: _Groups) -> None:
    score_plan = plan.score
    assert score_plan is not None
    has_label = score_plan.label is not None
    if score_plan.task == "multiclass":
        _bin_classes(out, batch, groups, has_label)
        return
    score = batch.column("__fl_score").to_numpy(zero_copy_only=False).astype(float)
    label = (
        batch.column("__fl_label").to_numpy(zero_copy_only=False).astype(float)
        if has_label
        else np.full(score.shape, np.nan)
    )
    ok = np.isfinite(score)
    labelled = ok & np.isfinite(label)
    if score_plan.task == "binary":
        grid = score_plan.grid
        bins = np.clip(np.floor(score[ok] * grid), 0, grid - 1).astype(np.int64)
        kind = np.where(np.isfinite(label[ok]), np.where(label[ok] >= 0.5, 0, 1), 2)
        for keys, codes in groups.sets:
            g = len(keys)
            c = codes[ok]
            counts = np.bincount((c * 3 + kind) * grid + bins, minlength=g * 3 * grid).reshape(g, 3, grid)
            sums = np.bincount(c * grid + bins, weights=score[ok], minlength=g * grid).reshape(g, grid)
            for i, key in enumerate(keys):
                prev = out.scores.setdefault(key, ScoreSummary.empty("binary", grid))
                out.scores[key] = ScoreSummary(
                    "binary",
                    grid,
                    prev.positives + counts[i, 0],
                    prev.negatives + counts[i, 1],
                    prev.unlabelled + counts[i, 2],
                    prev.score_sums + sums[i],
                )
        return
    err = score - label
    stats = np.column_stack(
        [
            np.ones(labelled.sum()),
            err[labelled],
            np.abs(err[labelled]),
            err[labelled] ** 2,
            err[labelled] ** 4,
            label[labelled],
            label[labelled] ** 2,
            score[labelled],
            score[labelled] ** 2,
        ]
    )
    pending_rows = ok & ~np.isfinite(label)
    for keys, codes in groups.sets:
        g = len(keys)
        lab_codes = codes[labelled]
        sums = np.stack([np.bincount(lab_codes, weights=stats[:, j], minlength=g) for j in range(9)], axis=1)
        pend = np.bincount(codes[pending_rows], minlength=g)
        for i, key in enumerate(keys):
            prev = out.scores.setdefault(key, ScoreSummary.empty("regression", 0))
            out.scores[key] = _add_sums(prev, sums[i], int(pend[i]))


def _add_sums(prev: ScoreSummary, sums: np.ndarray, pending: int) -> ScoreSummary:
    return ScoreSummary(prev.task, prev.grid, sums=prev.sums + sums, pending=prev.pending + pending)


def _codes(array: pa.Array) -> tuple[list[Any], np.ndarray]:
    """Distinct values of ``array`` and each row's index among them (nulls: -1)."""
    encoded = pc.dictionary_encode(array)
    return encoded.dictionary.to_pylist(), encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)


def _bin_classes(out: Summaries, batch: pa.RecordBatch, groups: _Groups, has_label: bool) -> None:
    """Multiclass: a confusion table (label, predicted class) per group, and unlabelled rows."""
    classes, predicted = _codes(batch.column("__fl_score"))
    if has_label:
        labels, truth = _codes(batch.column("__fl_label"))
    else:
        labels, truth = [], np.full(predicted.shape, -1)
    k_p, k_y = max(len(classes), 1), len(labels) + 1
    ok = predicted >= 0
    cell = (truth + 1) * k_p + predicted  # label -1 (none yet) -> row 0 of the table
    for keys, codes in groups.sets:
        g = len(keys)
        table = np.bincount(codes[ok] * (k_y * k_p) + cell[ok], minlength=g * k_y * k_p).reshape(g, k_y, k_p)
        for i, key in enumerate(keys):
            prev = out.scores.setdefault(key, ScoreSummary.empty("multiclass", 0))
            confusion: Counter[tuple[str, str]] = Counter(prev.confusion)
            for y, p in zip(*np.nonzero(table[i, 1:]), strict=True):
                confusion[(str(labels[y]), str(classes[p]))] += int(table[i, 1 + y, p])
            out.scores[key] = ScoreSummary(
                "multiclass", 0, confusion=dict(confusion), pending=prev.pending + int(table[i, 0].sum())
            )


def summarize_relation(
    con: duckdb.DuckDBPyConnection, relation: str, plan: SummaryPlan, *, where: str | None = None
) -> Summaries:
    """Summaries of ``relation`` (a table name or a parenthesised query) by ``plan``.

    Windows by row count need the relation to carry :data:`POSITION`.
    """
    where_sql = _where(plan, where)
    out = _aggregate(con, relation, plan, where_sql)
    shape = _Shape(tuple(plan.segments), tuple(plan.numeric), tuple(plan.categorical))
    needs_scan = shape.numeric or shape.categorical or plan.score is not None
    if not needs_scan:
        return out
    for batch in _batches(con, relation, plan, where_sql, shape):
        if batch.num_rows == 0:
            continue
        groups = _Groups(batch, shape.segments)
        for column in shape.numeric:
            values = batch.column("n_" + column).to_numpy(zero_copy_only=False).astype(float)
            _bin_numeric(out, plan, column, values, groups)
        for column in shape.categorical:
            _bin_categorical(out, plan, column, batch.column("c_" + column), groups)
        if plan.score is not None:
            _bin_scores(out, plan, batch, groups)
    return out
