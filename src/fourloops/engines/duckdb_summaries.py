"""Summaries on DuckDB: one aggregate query for the rows, one for the categories, one streamed scan.

DuckDB reads the data where it lives (an Arrow table, Parquet files, the
compacted event log), assigns each row its window and segment values, and

1. aggregates rows, positions, times, defaults and (approximately) distinct
   numbers per group with ``GROUPING SETS`` (one query, every column);
2. counts every categorical column's values per group (one ``GROUPING SETS``
   query, a set per column and grouping, reading those columns alone);
3. streams the numeric columns (and the model's output) as Arrow record
   batches, which a vectorised NumPy kernel bins and sums, batch by batch:
   each value's bin on the reference edges comes from a table lookup
   (:class:`~fourloops.engines.binning.BinLookup`), and the bins are counted
   per group with one ``bincount``.

The first two need no score: they read ``plain``, the relation without the
join that only the score's label needs (the event log without its labels,
see :class:`~fourloops.engines.duckdb_scan.Joined`), so the labels are read
and joined once, by the streamed scan.

Only the summaries stay in memory: the data never does (batches of 65,536
rows; Parquet read without prefetching whole row groups, see
:class:`~fourloops.engines.duckdb_scan.DuckDBScan`). Binning is done by NumPy
because DuckDB's ``histogram(x, boundaries)`` takes about 15 times longer for
a hundred edges (measured: 4.4 s against 0.3 s for a million rows of 25
columns); a value's bin comes from a table lookup, not from sorting the batch
or a binary search per value (three to four times faster than either on 99
edges, :mod:`~fourloops.engines.binning`). A reference scan
that already counted its columns while fitting their edges hands them over
(:class:`Counted`): then the reference is read once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fourloops.engines import duckdb_pit as sql
from fourloops.engines.binning import bin_lookup
from fourloops.engines.summaries import (
    BLOCK_BINS,
    OTHER,
    POSITION,
    UNSEEN_NAMED,
    CategoricalSummary,
    GroupInfo,
    GroupKey,
    IntArray,
    NumericSummary,
    RowWindows,
    ScoreSummary,
    Summaries,
    SummaryPlan,
    TimeWindows,
)

__all__ = ["POSITION", "Counted", "summarize_relation"]

_W = "__fl_w"
#: The streamed column of each row's block of time (see ``ScorePlan.block_seconds``).
_BLOCK = "__fl_block"
#: Rows per streamed batch (a monitor run of a million rows peaked 130 MB up with these, 200 MB with 4x).
_BATCH = 1 << 16
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
    # NaN and infinity are nulls for monitoring (a contract would have refused them); so is a value
    # that is not a number at all (text where the reference had numbers: the monitor notes how many).
    value = f"TRY_CAST({_q(column)} AS DOUBLE)"
    return f"CASE WHEN isfinite({value}) THEN {value} END"


@dataclass(frozen=True)
class _Shape:
    """The columns of the streamed scan, by role."""

    segments: tuple[str, ...]
    numeric: tuple[str, ...]


@dataclass(frozen=True)
class Counted:
    """What a scan counted over all its rows while fitting a reference, handed to :func:`summarize_relation`.

    ``numeric``: each column's finite values on its fitted edges (counts, sums, extremes; nulls,
    defaults and distinct values are left to the aggregate query). ``categorical``: every non-null
    value of a column with its count, most frequent first, then by value. Used only for a plan of
    one group over all rows (no windows, segments or condition) and numeric edges equal to the plan's.
    """

    numeric: Mapping[str, NumericSummary] = field(default_factory=dict)
    categorical: Mapping[str, Sequence[tuple[str, int]]] = field(default_factory=dict)


def _where(plan: SummaryPlan, where: str | None) -> str:
    parts = [f"({where})"] if where else []
    if isinstance(plan.windows, TimeWindows):
        parts.append(f"{_q(plan.windows.column)} IS NOT NULL")
    return f"WHERE {' AND '.join(parts)}" if parts else ""


def _aggregate(con: duckdb.DuckDBPyConnection, relation: str, plan: SummaryPlan, where: str) -> Summaries:
    """Rows, positions, times, defaults and distinct numbers per group (one query); counts come later."""
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
        aggs.append(f"approx_count_distinct({v}) AS u{i}")
        aggs += [f"min({v}) AS lo{i}", f"max({v}) AS hi{i}"]
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
    # Groups in a fixed order (window; overall, then each segment column's values), whatever the threads did.
    order = [_W]
    if segs:
        which = " ".join(f"WHEN GROUPING({_q('s_' + s)}) = 0 THEN {i + 1}" for i, s in enumerate(segs))
        order += [f"CASE {which} ELSE 0 END", *(_q("s_" + s) for s in segs)]
    query = (
        f"WITH x AS (SELECT {', '.join(selects)} FROM {relation} {where}) "
        f"SELECT {_W}, {', '.join([_q('s_' + s) for s in segs] + ([grouping] if grouping else []) + aggs)} "
        f"FROM x GROUP BY GROUPING SETS ({sets}) ORDER BY {', '.join(order)}"
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
            out.numeric.setdefault(column, {})[key] = replace(
                NumericSummary.empty(plan.numeric[column]),
                defaults=int(row.get(f"d{i}") or 0),
                distinct=None if row[f"u{i}"] is None else int(row[f"u{i}"]),
                minimum=None if row[f"lo{i}"] is None else float(row[f"lo{i}"]),
                maximum=None if row[f"hi{i}"] is None else float(row[f"hi{i}"]),
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
    con: duckdb.DuckDBPyConnection, relations: Sequence[str], plan: SummaryPlan, where: str, shape: _Shape
) -> Iterator[pa.RecordBatch]:
    selects = [f"{_window_sql(plan)} AS {_W}"]
    selects += [f"{_segment_sql(s)} AS {_q('s_' + s)}" for s in shape.segments]
    selects += [f"{_number_sql(c)} AS {_q('n_' + c)}" for c in shape.numeric]
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
        if _blocked(plan):
            assert isinstance(plan.windows, TimeWindows)
            micros = int(score.block_seconds) * 1_000_000
            at = _q(plan.windows.column)
            selects.append(f"CAST(floor(epoch_us({at}) / {micros}) AS BIGINT) AS {_BLOCK}")
    for relation in relations:  # one after another: one query's state at a time
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
    column_map = out.numeric[column]

    def add(key: GroupKey, part: NumericSummary) -> None:
        prev = column_map[key]
        # Defaults, distinct numbers, the least and the largest value come from the aggregate query,
        # not from the batches (a group's minimum in NumPy is a slow unbuffered ufunc.at).
        column_map[key] = replace(
            prev.merge(part),
            defaults=prev.defaults,
            distinct=prev.distinct,
            minimum=prev.minimum,
            maximum=prev.maximum,
        )

    edges = plan.numeric[column]
    finite = np.isfinite(values)
    x = values[finite]
    bins = bin_lookup(tuple(edges))(x)  # each value's bin by table lookup: no sort, no search
    for keys, codes in groups.sets:
        for key, part in zip(keys, _by_group(tuple(edges), x, bins, codes, finite, len(keys)), strict=True):
            add(key, part)


def _by_group(
    edges: tuple[float, ...], x: np.ndarray, bins: IntArray, codes: np.ndarray, finite: np.ndarray, g: int
) -> list[NumericSummary]:
    """Summaries of the finite values ``x`` (bin ``bins``) in ``g`` groups (``codes`` of every row),
    without their least and largest values (the aggregate query has them)."""
    nbins = len(edges) + 1
    low, high = bins == 0, bins == nbins - 1
    if g == 1:
        counts = np.bincount(bins, minlength=nbins)
        return [
            NumericSummary(
                edges,
                counts,
                int(finite.size - x.size),
                total=float(x.sum()),
                squares=float((x * x).sum()),  # not np.dot: BLAS threads spin on a busy machine
                low_sum=float(x[low].sum()),
                high_sum=float(x[high].sum()),
            )
        ]
    c = codes[finite]
    counts = np.bincount(c * nbins + bins, minlength=g * nbins).reshape(g, nbins)
    nulls = np.bincount(codes[~finite], minlength=g)
    total = np.bincount(c, weights=x, minlength=g)
    squares = np.bincount(c, weights=x * x, minlength=g)
    low_sum = np.bincount(c[low], weights=x[low], minlength=g)
    high_sum = np.bincount(c[high], weights=x[high], minlength=g)
    return [
        NumericSummary(
            edges,
            counts[i],
            int(nulls[i]),
            total=float(total[i]),
            squares=float(squares[i]),
            low_sum=float(low_sum[i]),
            high_sum=float(high_sum[i]),
        )
        for i in range(g)
    ]


def _count_categorical(
    con: duckdb.DuckDBPyConnection, relation: str, plan: SummaryPlan, where: str, columns: Sequence[str]
) -> dict[str, list[tuple[GroupKey, str | None, int]]]:
    """Each group's values of each of ``columns`` with their counts (nulls: None), most frequent first,
    then by value.

    DuckDB counts them, in one query reading those columns (a grouping set per column and grouping):
    cheaper than streaming the strings, and than a query per column (each reading the filter's
    columns again; 10M events, 6 columns: 0.8 s against 1.3 s).
    """
    segs = list(plan.segments)
    values = [f"__fl_c{i}" for i in range(len(columns))]
    selects = [f"{_window_sql(plan)} AS {_W}"] + [f"{_segment_sql(s)} AS {_q('s_' + s)}" for s in segs]
    selects += [f"CAST({_q(c)} AS VARCHAR) AS {v}" for c, v in zip(columns, values, strict=True)]
    by = [[_W], *([_W, _q("s_" + s)] for s in segs)]  # overall, then per segment column
    sets = ", ".join(f"({', '.join([*keys, v])})" for v in values for keys in by)
    grouping = [f"GROUPING({_q('s_' + s)}) AS {_q('g_' + s)}" for s in segs]
    which = " ".join(f"WHEN GROUPING({v}) = 0 THEN {i}" for i, v in enumerate(values))
    value = " ".join(f"WHEN GROUPING({v}) = 0 THEN {v}" for v in values)
    selected = [_W, *(_q("s_" + s) for s in segs), *grouping]
    selected += [f"CASE {which} END AS __fl_i", f"CASE {value} END AS __fl_v", "count(*) AS __fl_n"]
    query = (
        f"WITH x AS (SELECT {', '.join(selects)} FROM {relation} {where}) "
        f"SELECT {', '.join(selected)} FROM x GROUP BY GROUPING SETS ({sets}) "
        "ORDER BY __fl_i, __fl_n DESC, __fl_v"
    )
    out: dict[str, list[tuple[GroupKey, str | None, int]]] = {c: [] for c in columns}
    for row in con.sql(query).to_arrow_table().to_pylist():
        out[columns[row["__fl_i"]]].append((_key(row, segs), row["__fl_v"], int(row["__fl_n"])))
    return out


def _fold_categorical(
    out: Summaries, plan: SummaryPlan, column: str, counted: Iterable[tuple[GroupKey, str | None, int]]
) -> None:
    """Add values counted per group (most frequent first) to ``column``'s summaries."""
    categories = plan.categorical[column]
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    pooled = plan.pooled.get(column, frozenset())
    other = index.get(OTHER, k)
    counts: dict[GroupKey, IntArray] = {}
    unseen: dict[GroupKey, Counter[str]] = {}
    nulls: Counter[GroupKey] = Counter()
    for key, value, n in counted:
        if value is None:
            nulls[key] += n
            continue
        # Its category, the pooled rare categories' bucket, or unseen (named: the most frequent first).
        code = index.get(value, other if value in pooled else k)
        if code == k:
            unseen.setdefault(key, Counter())[value] += n
        else:
            counts.setdefault(key, np.zeros(k, dtype=np.int64))[code] += n
    column_map = out.categorical.get(column, {})
    for key in counts.keys() | unseen.keys() | nulls.keys():
        prev = column_map[key]
        named = Counter(prev.unseen_values)
        named.update(unseen.get(key, {}))
        column_map[key] = CategoricalSummary(
            prev.categories,
            prev.counts + counts.get(key, 0),
            prev.unseen + unseen.get(key, Counter()).total(),
            prev.nulls + nulls[key],
            prev.defaults,
            dict(named.most_common(UNSEEN_NAMED)),
        )


def _blocked(plan: SummaryPlan) -> bool:
    """Whether the plan counts a binary model's labelled rows per block of time too."""
    score = plan.score
    return (
        score is not None
        and score.task == "binary"
        and score.label is not None
        and score.block_seconds > 0
        and isinstance(plan.windows, TimeWindows)
    )


def _bin_blocks(
    out: Summaries,
    batch: pa.RecordBatch,
    groups: _Groups,
    ok: np.ndarray,
    kind: np.ndarray,
    bins: np.ndarray,
    grid: int,
) -> None:
    """Each group's labelled rows per block of time, positives then negatives, on ``BLOCK_BINS`` bins.

    ``ok`` marks the batch's rows with a score; ``kind`` (0 positive, 1 negative, 2 unlabelled)
    and ``bins`` (on the fine grid of ``grid`` bins) are those rows' (as ``_bin_scores`` has them).
    """
    column = batch.column(_BLOCK)
    keep = column.is_valid().to_numpy(zero_copy_only=False)[ok] & (kind < 2)
    if not keep.any():
        return
    block = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)[ok][keep]
    cell = kind[keep] * BLOCK_BINS + bins[keep] * BLOCK_BINS // grid
    ids, local = np.unique(block, return_inverse=True)
    size = 2 * BLOCK_BINS
    for keys, codes in groups.sets:
        # Only the (group, block) pairs that hold rows: a block lies in one window, so a dense
        # groups x blocks array would be mostly zeros (and huge with many segment values).
        pairs, pair = np.unique(codes[ok][keep] * ids.size + local, return_inverse=True)
        counts = np.bincount(pair * size + cell, minlength=pairs.size * size).reshape(-1, 2, BLOCK_BINS)
        group = pairs // ids.size
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        for start, end in zip(starts, [*starts[1:], pairs.size], strict=True):
            key = keys[int(group[start])]
            prev = out.scores[key]
            merged = dict(prev.blocks)
            for j in range(start, end):
                b = int(ids[pairs[j] % ids.size])
                merged[b] = merged[b] + counts[j] if b in merged else counts[j].copy()
            out.scores[key] = replace(prev, blocks=merged)


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
                out.scores[key] = replace(
                    prev,
                    positives=prev.positives + counts[i, 0],
                    negatives=prev.negatives + counts[i, 1],
                    unlabelled=prev.unlabelled + counts[i, 2],
                    score_sums=prev.score_sums + sums[i],
                )
        if _BLOCK in batch.schema.names:
            _bin_blocks(out, batch, groups, ok, kind, bins, grid)
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
    con: duckdb.DuckDBPyConnection,
    relation: str,
    plan: SummaryPlan,
    *,
    where: str | None = None,
    counted: Counted | None = None,
    plain: str | None = None,
    parts: Sequence[str] = (),
) -> Summaries:
    """Summaries of ``relation`` (a table name or a parenthesised query) by ``plan``.

    Windows by row count need the relation to carry :data:`POSITION`. ``counted``: what the caller
    already counted over all rows of ``relation`` (see :class:`Counted`), used for a plan of one group.
    ``plain``: a relation with the same rows and the plan's columns but the score's, which the
    queries that need no score read (the event log without its labels joined; see
    :class:`~fourloops.engines.duckdb_scan.Joined`); ``relation`` by default. ``parts``: relations
    that, read one after another, hold exactly ``relation``'s rows, which the streamed scan of the
    score reads instead (the event log a few days or hours at a time, each with its own labels
    joined).
    """
    where_sql = _where(plan, where)
    plain = plain or relation
    out = _aggregate(con, plain, plan, where_sql)
    whole = (0, None, None)
    if counted is not None and (where is not None or plan.windows is not None or plan.segments):
        counted = None
    if counted is None or whole not in out.groups:
        counted = Counted()
    rows = out.groups[whole].rows if whole in out.groups else 0
    numeric = []
    for column, edges in plan.numeric.items():
        known = counted.numeric.get(column)
        if known is None or known.edges != tuple(float(e) for e in edges):
            numeric.append(column)
            continue
        prev = out.numeric[column][whole]
        out.numeric[column][whole] = replace(
            prev.merge(known), nulls=rows - known.count, defaults=prev.defaults, distinct=prev.distinct
        )
    uncounted = [c for c in plan.categorical if counted.categorical.get(c) is None]
    counts = _count_categorical(con, plain, plan, where_sql, uncounted) if uncounted else {}
    for column in plan.categorical:
        values = counted.categorical.get(column)
        if values is None:
            _fold_categorical(out, plan, column, counts[column])
            continue
        nulls = rows - sum(n for _, n in values)
        _fold_categorical(out, plan, column, [(whole, v, n) for v, n in values] + [(whole, None, nulls)])
    shape = _Shape(tuple(plan.segments), tuple(numeric))
    if not shape.numeric and plan.score is None:
        return out
    streamed = (parts or [relation]) if plan.score is not None else [plain]
    for batch in _batches(con, streamed, plan, where_sql, shape):
        if batch.num_rows == 0:
            continue
        groups = _Groups(batch, shape.segments)
        for column in shape.numeric:
            values = batch.column("n_" + column).to_numpy(zero_copy_only=False).astype(float)
            _bin_numeric(out, plan, column, values, groups)
        if plan.score is not None:
            _bin_scores(out, plan, batch, groups)
    return out
