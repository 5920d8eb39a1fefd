"""Mergeable summaries of a table, per window and segment: what monitoring is computed from.

A batch engine reads the data where it lives and hands back, for every
*group* (a window, and that window restricted to each value of each segment
column), small summaries that can be merged:

* :class:`NumericSummary`: counts on fixed bin edges, nulls (NaN and
  infinity count as null), rows at a declared default value, sum, sum of
  squares, minimum, maximum, the sums of the values that fell in the two
  open outer bins, and (approximately) how many distinct values there were;
* :class:`CategoricalSummary`: counts per known category, the counts of
  values never seen in the reference (with the most frequent ones named) and
  nulls;
* :class:`ScoreSummary`: labelled and unlabelled rows of a model's output on a
  fine score grid (binary; with time windows, also the labelled rows of each
  hour on a coarse grid, for errors that count rows of one hour as related),
  or sums of errors (regression), or a confusion table (multiclass);
* :class:`GroupInfo`: the rows of the group, the first and last row position
  and the first and last timestamp.

What to compute is a :class:`SummaryPlan`. Summaries of disjoint parts of a
table merge into the summary of the whole (``a.merge(b)``), in any order: a
window can be summarised in pieces, on several machines, or incrementally.

>>> import numpy as np
>>> a = NumericSummary.empty((0.0, 1.0))
>>> a = a.merge(NumericSummary.of(np.array([-1.0, 0.5, 2.0, np.nan]), (0.0, 1.0)))
>>> a.counts.tolist(), a.nulls, a.count
([1, 1, 1], 1, 3)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CategoricalSummary",
    "GroupInfo",
    "GroupKey",
    "NumericSummary",
    "BLOCK_BINS",
    "OTHER",
    "POSITION",
    "RowWindows",
    "ScorePlan",
    "ScoreSummary",
    "SummaryPlan",
    "Summaries",
    "TimeWindows",
    "UNSEEN",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Column holding each row's 0-based position in the data (for windows by row count).
POSITION = "__fl_row"
#: A group: (window index, segment column or None, segment value or None).
GroupKey = tuple[int, str | None, str | None]
#: Bucket name of categories that the reference never had.
UNSEEN = "__unseen__"
#: Category name of the reference's rare categories, pooled.
OTHER = "__other__"
#: How many unseen categories a summary keeps by name.
UNSEEN_NAMED = 20
#: Score bins of a binary summary's blocks (coarse: a block's rows are few).
BLOCK_BINS = 50


@dataclass(frozen=True)
class TimeWindows:
    """Windows of ``width`` on the timestamp column ``column``, the first starting at ``origin``."""

    column: str
    origin: datetime
    width: timedelta

    def bounds(self, index: int) -> tuple[datetime, datetime]:
        """Start (inclusive) and end (exclusive) of window ``index``."""
        start = self.origin + index * self.width
        return start, start + self.width


@dataclass(frozen=True)
class RowWindows:
    """Windows of ``size`` consecutive rows, in the order of the data."""

    size: int


@dataclass(frozen=True)
class ScorePlan:
    """A model's output and label columns, summarised for metrics and estimation.

    ``task`` is binary (``score`` is P(y = 1), binned on ``grid`` equal bins of
    [0, 1]), regression (``score`` is the point prediction) or multiclass
    (``score`` is the predicted class, ``label`` the true one).
    """

    task: str
    score: str
    label: str | None = None
    grid: int = 2000
    #: Seconds of a block (0: none). With time windows, a binary model's labelled rows are also
    #: counted per block of this many seconds (on :data:`BLOCK_BINS` score bins): rows of one block
    #: may share a cause (an hour's weather, an incident), and the realised metrics' errors count it.
    block_seconds: int = 0


@dataclass(frozen=True)
class SummaryPlan:
    """What to summarise: numeric columns on their bin edges, categorical columns, the model's output.

    ``numeric`` maps a column to its interior bin edges (strictly increasing);
    bin ``i`` holds ``edges[i-1] < x <= edges[i]``, the first and the last bins
    are open. ``categorical`` maps a column to its known categories; a value in
    ``pooled[column]`` counts as the category :data:`OTHER` (rare categories of
    the reference), any other value as unseen. ``windows`` is ``None`` for a
    single window.
    """

    numeric: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    categorical: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pooled: Mapping[str, frozenset[str]] = field(default_factory=dict)
    windows: TimeWindows | RowWindows | None = None
    segments: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    score: ScorePlan | None = None


@dataclass(frozen=True)
class GroupInfo:
    """Rows of a group, their first and last 0-based position, first and last timestamp."""

    rows: int
    first_row: int | None = None
    last_row: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def merge(self, other: GroupInfo) -> GroupInfo:
        return GroupInfo(
            self.rows + other.rows,
            _opt(min, self.first_row, other.first_row),
            _opt(max, self.last_row, other.last_row),
            _opt(min, self.start, other.start),
            _opt(max, self.end, other.end),
        )


def _opt(fn: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)


@dataclass(frozen=True)
class NumericSummary:
    """A numeric column on fixed bin edges (see the module docstring)."""

    edges: tuple[float, ...]
    counts: IntArray
    nulls: int = 0
    defaults: int = 0
    total: float = 0.0
    squares: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    low_sum: float = 0.0
    high_sum: float = 0.0
    distinct: int | None = None

    @classmethod
    def empty(cls, edges: Sequence[float]) -> NumericSummary:
        return cls(tuple(float(e) for e in edges), np.zeros(len(edges) + 1, dtype=np.int64))

    @classmethod
    def of(
        cls, values: FloatArray, edges: Sequence[float], *, default: float | None = None
    ) -> NumericSummary:
        """The summary of an array of values (NaN and infinity are nulls); the reference computation."""
        edges_t = tuple(float(e) for e in edges)
        values = np.asarray(values, dtype=float)
        finite = values[np.isfinite(values)]
        bins = np.searchsorted(np.asarray(edges_t), finite, side="left")
        counts = np.bincount(bins, minlength=len(edges_t) + 1).astype(np.int64)
        return cls(
            edges_t,
            counts,
            nulls=int(values.size - finite.size),
            defaults=int(np.sum(finite == default)) if default is not None else 0,
            total=float(finite.sum()),
            squares=float(np.dot(finite, finite)),
            minimum=float(finite.min()) if finite.size else None,
            maximum=float(finite.max()) if finite.size else None,
            low_sum=float(finite[bins == 0].sum()),
            high_sum=float(finite[bins == len(edges_t)].sum()),
            distinct=int(np.unique(finite).size),
        )

    @classmethod
    def of_sorted(cls, ordered: FloatArray, edges: Sequence[float], *, nulls: int = 0) -> NumericSummary:
        """The summary of finite values sorted ascending (defaults and distinct values not counted).

        Bin ``i`` holds ``edges[i-1] < x <= edges[i]``, so it ends where the values above
        ``edges[i]`` begin: one binary search per edge, not one per value.

        >>> s = NumericSummary.of_sorted(np.array([-1.0, 0.0, 0.5, 2.0, 3.0]), (0.0, 2.0), nulls=1)
        >>> s.counts.tolist(), s.nulls, s.low_sum, s.high_sum, s.minimum, s.maximum
        ([2, 2, 1], 1, -1.0, 3.0, -1.0, 3.0)
        """
        edges_t = tuple(float(e) for e in edges)
        ends = np.searchsorted(ordered, np.asarray(edges_t, dtype=float), side="right")
        bounds = np.concatenate(([0], ends, [ordered.size]))
        return cls(
            edges_t,
            np.diff(bounds).astype(np.int64),
            nulls=int(nulls),
            total=float(ordered.sum()),
            squares=float((ordered * ordered).sum()),  # not np.dot: BLAS threads spin on a busy machine
            minimum=float(ordered[0]) if ordered.size else None,
            maximum=float(ordered[-1]) if ordered.size else None,
            low_sum=float(ordered[: bounds[1]].sum()),
            high_sum=float(ordered[bounds[-2] :].sum()),
        )

    @property
    def count(self) -> int:
        """Non-null values."""
        return int(self.counts.sum())

    @property
    def rows(self) -> int:
        return self.count + self.nulls

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        """Population standard deviation (0.0 for a single value)."""
        n = self.count
        if not n:
            return None
        var = max(self.squares / n - (self.total / n) ** 2, 0.0)
        return float(np.sqrt(var))

    def points(self) -> FloatArray:
        """Where each bin's mass sits: the right edge of inner bins, the mean of each outer bin.

        For data whose distinct values are the edges (plus one above), these are the values themselves.
        """
        edges = np.asarray(self.edges, dtype=float)
        pts = np.empty(len(edges) + 1)
        pts[1:-1] = edges[1:] if len(edges) > 1 else edges[:0]
        first, last = int(self.counts[0]), int(self.counts[-1])
        pts[0] = self.low_sum / first if first else (edges[0] if len(edges) else 0.0)
        if len(edges):
            pts[-1] = self.high_sum / last if last else edges[-1]
        return pts

    def merge(self, other: NumericSummary) -> NumericSummary:
        if other.edges != self.edges:
            raise ValueError("numeric summaries on different bin edges cannot be merged")
        return NumericSummary(
            self.edges,
            self.counts + other.counts,
            self.nulls + other.nulls,
            self.defaults + other.defaults,
            self.total + other.total,
            self.squares + other.squares,
            _opt(min, self.minimum, other.minimum),
            _opt(max, self.maximum, other.maximum),
            self.low_sum + other.low_sum,
            self.high_sum + other.high_sum,
            # Distinct values do not add up; the sum of the parts' counts is an upper bound.
            None if self.distinct is None or other.distinct is None else self.distinct + other.distinct,
        )


@dataclass(frozen=True)
class CategoricalSummary:
    """A categorical column: counts per known category, unseen values, nulls."""

    categories: tuple[str, ...]
    counts: IntArray
    unseen: int = 0
    nulls: int = 0
    defaults: int = 0
    unseen_values: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, categories: Sequence[str]) -> CategoricalSummary:
        return cls(tuple(categories), np.zeros(len(categories), dtype=np.int64))

    @classmethod
    def of(
        cls,
        values: Sequence[Any],
        categories: Sequence[str],
        *,
        default: str | None = None,
        pooled: frozenset[str] = frozenset(),
    ) -> CategoricalSummary:
        """The summary of a sequence of values (``None`` is null); the reference computation."""
        cats = tuple(categories)
        index = {c: i for i, c in enumerate(cats)}
        index.update({v: index[OTHER] for v in pooled if v not in index and OTHER in index})
        counts = np.zeros(len(cats), dtype=np.int64)
        unseen: Counter[str] = Counter()
        nulls = defaults = 0
        for value in values:
            if value is None:
                nulls += 1
                continue
            text = str(value)
            defaults += text == default
            if text in index:
                counts[index[text]] += 1
            else:
                unseen[text] += 1
        return cls(
            cats, counts, sum(unseen.values()), nulls, defaults, dict(unseen.most_common(UNSEEN_NAMED))
        )

    @property
    def count(self) -> int:
        """Non-null values (known and unseen)."""
        return int(self.counts.sum()) + self.unseen

    @property
    def rows(self) -> int:
        return self.count + self.nulls

    def with_unseen(self) -> IntArray:
        """Counts of the known categories followed by the unseen bucket."""
        return np.append(self.counts, self.unseen)

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        if other.categories != self.categories:
            raise ValueError("categorical summaries over different categories cannot be merged")
        named = Counter(self.unseen_values)
        named.update(other.unseen_values)
        return CategoricalSummary(
            self.categories,
            self.counts + other.counts,
            self.unseen + other.unseen,
            self.nulls + other.nulls,
            self.defaults + other.defaults,
            dict(named.most_common(UNSEEN_NAMED)),
        )


@dataclass(frozen=True)
class ScoreSummary:
    """A model's output beside its label.

    Binary: ``positives``, ``negatives`` and ``unlabelled`` rows per bin of the
    score grid, with the score sums per bin (the bin's mean score is where its
    rows sit); ``blocks`` (when the plan asks for them) maps a block (its index
    since the epoch) to its labelled rows, positives then negatives, on
    :data:`BLOCK_BINS` equal score bins. Regression: ``sums`` of (labelled rows, error, |error|,
    error², error⁴, label, label², prediction, prediction²) and the
    unlabelled rows. Multiclass: ``confusion`` counts (label, predicted).
    """

    task: str
    grid: int = 0
    positives: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    negatives: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unlabelled: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    score_sums: FloatArray = field(default_factory=lambda: np.zeros(0))
    sums: FloatArray = field(default_factory=lambda: np.zeros(9))
    pending: int = 0
    confusion: Mapping[tuple[str, str], int] = field(default_factory=dict)
    blocks: Mapping[int, IntArray] = field(default_factory=dict)

    @classmethod
    def empty(cls, task: str, grid: int) -> ScoreSummary:
        if task == "binary":
            zeros = np.zeros(grid, dtype=np.int64)
            return cls(task, grid, zeros, zeros.copy(), zeros.copy(), np.zeros(grid))
        return cls(task, grid)

    @property
    def labelled(self) -> int:
        if self.task == "binary":
            return int(self.positives.sum() + self.negatives.sum())
        if self.task == "regression":
            return int(self.sums[0])
        return int(sum(self.confusion.values()))

    def merge(self, other: ScoreSummary) -> ScoreSummary:
        if (self.task, self.grid) != (other.task, other.grid):
            raise ValueError("score summaries of different tasks or grids cannot be merged")
        confusion = Counter(self.confusion)
        confusion.update(other.confusion)
        blocks = dict(self.blocks)
        for block, counts in other.blocks.items():
            blocks[block] = blocks[block] + counts if block in blocks else counts
        return replace(
            self,
            positives=self.positives + other.positives,
            negatives=self.negatives + other.negatives,
            unlabelled=self.unlabelled + other.unlabelled,
            score_sums=self.score_sums + other.score_sums,
            sums=self.sums + other.sums,
            pending=self.pending + other.pending,
            confusion=dict(confusion),
            blocks=blocks,
        )


@dataclass
class Summaries:
    """Everything an engine returns for one plan, by group."""

    groups: dict[GroupKey, GroupInfo] = field(default_factory=dict)
    numeric: dict[str, dict[GroupKey, NumericSummary]] = field(default_factory=dict)
    categorical: dict[str, dict[GroupKey, CategoricalSummary]] = field(default_factory=dict)
    scores: dict[GroupKey, ScoreSummary] = field(default_factory=dict)

    def merge(self, other: Summaries) -> Summaries:
        """The summaries of both inputs together (group by group)."""
        out = Summaries(dict(self.groups), {}, {}, dict(self.scores))
        for key, info in other.groups.items():
            out.groups[key] = out.groups[key].merge(info) if key in out.groups else info
        for attr in ("numeric", "categorical"):
            mine, theirs, merged = getattr(self, attr), getattr(other, attr), getattr(out, attr)
            for column in mine.keys() | theirs.keys():
                merged[column] = _merge_maps(mine.get(column, {}), theirs.get(column, {}))
        out.scores = _merge_maps(self.scores, other.scores)
        return out

    def windows(self) -> list[int]:
        """The window indexes present, in order."""
        return sorted({key[0] for key in self.groups})


def _merge_maps(a: Mapping[GroupKey, Any], b: Mapping[GroupKey, Any]) -> dict[GroupKey, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out[key].merge(value) if key in out else value
    return out
