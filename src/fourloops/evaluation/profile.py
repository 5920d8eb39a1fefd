"""The reference profile: what monitoring compares every window with, fitted once.

For each monitored column the profile keeps

* numeric: bin edges at the reference's quantiles (``bins`` of them, or one
  per distinct value when there are few) with **open outer bins**, so a later
  outlier lands in the first or last bin and never stretches the bins, and
  the grouping of those fine bins into ``coarse_bins`` of about equal
  reference mass (PSI, Jensen–Shannon);
* categorical: the ``max_categories`` most frequent categories; the rarer
  ones pooled as ``__other__``; anything else is *unseen* and counted apart;

and the reference's own summaries on those bins, overall and per segment
value, beside the model's output and labels when there are any (scores on a
fine grid, for calibration and estimation). It is plain JSON
(:meth:`ReferenceProfile.to_dict`), small, and stored with a model version
when the version is trained.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fourloops.engines.base import TableScan
from fourloops.engines.summaries import (
    OTHER,
    CategoricalSummary,
    GroupInfo,
    GroupKey,
    NumericSummary,
    RowWindows,
    ScorePlan,
    ScoreSummary,
    Summaries,
    SummaryPlan,
    TimeWindows,
)
from fourloops.errors import SchemaError
from fourloops.evaluation.drift.methods import Comparison, Kind
from fourloops.evaluation.drift.policy import DriftPolicy

__all__ = [
    "BLOCK_SECONDS",
    "ColumnProfile",
    "ReferenceProfile",
    "classify",
    "fit_profile",
    "summaries_from_dict",
    "summaries_to_dict",
]

#: Time windows count a binary model's labelled rows per hour too: rows of one hour may share a cause
#: (its weather, an incident, a batch of late labels), so realised metrics' errors treat an hour's
#: rows as related (see :mod:`fourloops.evaluation.influence`).
BLOCK_SECONDS = 3600
#: Reference values kept by name for pooling as ``__other__``; rarer values past these count as unseen.
MAX_POOLED = 100_000
_NUMERIC = re.compile(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL|DECIMAL.*|NUMERIC.*)$")
_CATEGORICAL = re.compile(r"^(VARCHAR|BOOLEAN|ENUM.*|UUID)$")


def classify(duckdb_type: str) -> str | None:
    """``"numeric"``, ``"categorical"`` or ``None`` (timestamps, lists, blobs: not monitored as values)."""
    t = duckdb_type.upper()
    if _NUMERIC.match(t):
        return Kind.NUMERIC.value
    if _CATEGORICAL.match(t):
        return Kind.CATEGORICAL.value
    return None


@dataclass(frozen=True)
class ColumnProfile:
    """One column's reference bins: edges and coarse groups (numeric), or categories (categorical)."""

    name: str
    kind: str
    edges: tuple[float, ...] = ()
    coarse: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()
    pooled: frozenset[str] = frozenset()
    default: Any = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "default": self.default}
        if self.kind == Kind.NUMERIC:
            out |= {"edges": list(self.edges), "coarse": list(self.coarse)}
        else:
            out |= {"categories": list(self.categories), "pooled": sorted(self.pooled)}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            d["name"],
            d["kind"],
            tuple(float(e) for e in d.get("edges", ())),
            tuple(int(c) for c in d.get("coarse", ())),
            tuple(d.get("categories", ())),
            frozenset(d.get("pooled", ())),
            d.get("default"),
        )


def _effective(summary: NumericSummary) -> int | None:
    """The values of a continuous column that are not repeats (None: as many as its rows)."""
    if summary.distinct is None or summary.distinct >= summary.count:
        return None
    return max(int(summary.distinct), 1)


def _coarse(counts: np.ndarray, groups: int) -> tuple[int, ...]:
    """Group consecutive fine bins into about ``groups`` groups of equal reference mass."""
    total = counts.sum()
    if total == 0:
        edges = np.linspace(0, groups, num=len(counts), endpoint=False).astype(int)
        return tuple(int(g) for g in edges)
    mid = (np.cumsum(counts) - counts / 2) / total
    raw = np.minimum((mid * groups).astype(int), groups - 1)
    _, dense = np.unique(raw, return_inverse=True)
    return tuple(int(g) for g in dense)


@dataclass
class ReferenceProfile:
    """Columns' bins and the reference's summaries on them (window 0), overall and per segment."""

    columns: dict[str, ColumnProfile]
    summaries: Summaries
    segments: tuple[str, ...] = ()
    score: ScorePlan | None = None
    policy: DriftPolicy = field(default_factory=DriftPolicy)

    @property
    def rows(self) -> int:
        info = self.summaries.groups.get((0, None, None))
        return info.rows if info else 0

    @property
    def prediction(self) -> str | None:
        """The column holding the model's output, tested for prediction drift."""
        return self.score.score if self.score is not None else None

    def plan(self, windows: TimeWindows | RowWindows | None, *, label: str | None = None) -> SummaryPlan:
        """What to summarise in the current data to compare with this reference."""
        score = self.score
        if score is not None and label != score.label:
            score = ScorePlan(score.task, score.score, label, score.grid)
        if score is not None and isinstance(windows, TimeWindows):
            score = replace(score, block_seconds=BLOCK_SECONDS)
        return SummaryPlan(
            numeric={c.name: c.edges for c in self.columns.values() if c.kind == Kind.NUMERIC},
            categorical={c.name: c.categories for c in self.columns.values() if c.kind == Kind.CATEGORICAL},
            pooled={c.name: c.pooled for c in self.columns.values() if c.pooled},
            windows=windows,
            segments=self.segments,
            defaults={c.name: c.default for c in self.columns.values() if c.default is not None},
            score=score,
        )

    def reference(self, column: str, segment: tuple[str, str] | None = None) -> Any:
        """The reference's summary of ``column`` (for one segment value, when given; None if absent)."""
        key: GroupKey = (0, segment[0], segment[1]) if segment else (0, None, None)
        kind = self.columns[column].kind
        store = self.summaries.numeric if kind == Kind.NUMERIC else self.summaries.categorical
        return store.get(column, {}).get(key)

    def comparison(self, column: str, ref: Any, cur: Any) -> Comparison:
        """The counts a drift method compares, for ``column``'s reference and current summaries."""
        profile = self.columns[column]
        if profile.kind == Kind.NUMERIC:
            assert isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary)
            # A continuous column whose rows repeat values (requests of one hour share its weather
            # reading) holds fewer independent draws than rows: its distinct values are its sample size.
            continuous = ref.distinct is not None and ref.distinct > len(profile.edges) + 1
            return Comparison(
                profile.kind,
                ref.counts,
                cur.counts,
                coarse=np.asarray(profile.coarse, dtype=np.int64),
                ref_points=ref.points(),
                cur_points=cur.points(),
                scale=ref.std or 0.0,
                n_eff=_effective(ref) if continuous else None,
                m_eff=_effective(cur) if continuous else None,
            )
        assert isinstance(ref, CategoricalSummary) and isinstance(cur, CategoricalSummary)
        return Comparison(profile.kind, ref.with_unseen(), cur.with_unseen())

    def without(self, columns: Sequence[str]) -> ReferenceProfile:
        """The same profile without ``columns`` (columns the current data lacks)."""
        gone = set(columns)
        kept = {c: p for c, p in self.columns.items() if c not in gone}
        s = self.summaries
        summaries = Summaries(
            dict(s.groups),
            {c: v for c, v in s.numeric.items() if c not in gone},
            {c: v for c, v in s.categorical.items() if c not in gone},
            dict(s.scores),
        )
        return ReferenceProfile(kept, summaries, self.segments, self.score, self.policy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "columns": [c.to_dict() for c in self.columns.values()],
            "segments": list(self.segments),
            # (a block size is the monitor's, not the reference's: left out, so that a release
            # without blocks still reads the profile)
            "score": None
            if self.score is None
            else {k: v for k, v in self.score.__dict__.items() if k != "block_seconds"},
            "summaries": summaries_to_dict(self.summaries),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, policy: DriftPolicy | None = None) -> ReferenceProfile:
        columns = {c["name"]: ColumnProfile.from_dict(c) for c in d["columns"]}
        score = None if d.get("score") is None else ScorePlan(**d["score"])
        return cls(
            columns,
            summaries_from_dict(d["summaries"], columns),
            tuple(d.get("segments", ())),
            score,
            policy or DriftPolicy(),
        )


def fit_profile(
    scan: TableScan,
    *,
    columns: Sequence[str] | None = None,
    segments: Sequence[str] = (),
    score: ScorePlan | None = None,
    defaults: Mapping[str, Any] | None = None,
    policy: DriftPolicy | None = None,
    exclude: Sequence[str] = (),
    where: str | None = None,
) -> ReferenceProfile:
    """Fit the reference profile of ``columns`` (default: every numeric and categorical column).

    ``score`` names the model's output (and label) columns: the output is
    profiled too (prediction drift), and the reference's scores beside its
    labels are kept for calibration and estimation. ``exclude`` leaves
    columns out of the default choice (timestamps, labels).
    """
    policy = policy or DriftPolicy()
    types = scan.schema()
    if scan.rows(where) == 0:
        chosen = f" where {where}" if where else ""
        raise SchemaError(f"the reference has no rows{chosen}: there is nothing to compare the data with")
    kinds: dict[str, str] = {}
    wanted = list(columns) if columns is not None else [c for c in types if c not in set(exclude)]
    if score is not None and score.score not in wanted:
        wanted.append(score.score)
    for column in wanted:
        if column not in types:
            raise SchemaError(f"column {column!r} is not in the reference (it has {', '.join(types)})")
        kind = classify(types[column])
        if kind is None:
            if columns is not None:
                raise SchemaError(
                    f"column {column!r} has type {types[column]}: monitor numbers and categories"
                )
            continue
        kinds[column] = kind
    if not kinds:
        found = ", ".join(f"{c!r} ({types[c]})" for c in wanted[:20]) + (", ..." if len(wanted) > 20 else "")
        found = found or "none"
        raise SchemaError(f"the reference has no column to monitor (numbers or categories); it has {found}")
    for s in segments:
        if s not in types:
            raise SchemaError(f"segment column {s!r} is not in the reference")
    numeric = [c for c, k in kinds.items() if k == Kind.NUMERIC]
    categorical = [c for c, k in kinds.items() if k == Kind.CATEGORICAL]
    edges = scan.fit_edges(numeric, bins=policy.bins)
    top = scan.top_categories(categorical, limit=policy.max_categories + MAX_POOLED)
    defaults = dict(defaults or {})
    profiles: dict[str, ColumnProfile] = {}
    for column in numeric:
        profiles[column] = ColumnProfile(
            column, Kind.NUMERIC.value, edges[column], default=defaults.get(column)
        )
    for column in categorical:
        ranked = [v for v, _ in top[column]]
        keep, pooled = ranked[: policy.max_categories], ranked[policy.max_categories :]
        cats = tuple(keep) + ((OTHER,) if pooled else ())
        default = defaults.get(column)
        profiles[column] = ColumnProfile(
            column,
            Kind.CATEGORICAL.value,
            categories=cats,
            pooled=frozenset(pooled),
            default=None if default is None else str(default),
        )
    draft = ReferenceProfile(profiles, Summaries(), tuple(segments), score, policy)
    summaries = scan.summarize(draft.plan(None, label=None if score is None else score.label), where=where)
    for column in numeric:
        overall = summaries.numeric[column].get((0, None, None))
        counts = overall.counts if overall is not None else np.zeros(len(edges[column]) + 1)
        p = profiles[column]
        profiles[column] = ColumnProfile(
            p.name, p.kind, p.edges, _coarse(counts, policy.coarse_bins), default=p.default
        )
    return ReferenceProfile(profiles, summaries, tuple(segments), score, policy)


# --- JSON of summaries ------------------------------------------------------------------------


def _key_to_list(key: GroupKey) -> list[Any]:
    return [key[0], key[1], key[2]]


def summaries_to_dict(s: Summaries) -> dict[str, Any]:
    """Summaries as JSON-able lists (arrays as lists of numbers)."""
    groups = [[*_key_to_list(k), info.rows] for k, info in s.groups.items()]
    numeric = {
        column: [
            [
                *_key_to_list(k),
                v.counts.tolist(),
                v.nulls,
                v.defaults,
                v.total,
                v.squares,
                v.minimum,
                v.maximum,
                v.low_sum,
                v.high_sum,
                v.distinct,
            ]
            for k, v in by_key.items()
        ]
        for column, by_key in s.numeric.items()
    }
    categorical = {
        column: [
            [*_key_to_list(k), v.counts.tolist(), v.unseen, v.nulls, v.defaults, dict(v.unseen_values)]
            for k, v in by_key.items()
        ]
        for column, by_key in s.categorical.items()
    }
    scores = [
        [
            *_key_to_list(k),
            v.task,
            v.grid,
            v.positives.tolist(),
            v.negatives.tolist(),
            v.unlabelled.tolist(),
            v.score_sums.tolist(),
            v.sums.tolist(),
            v.pending,
            [[a, b, n] for (a, b), n in v.confusion.items()],
        ]
        for k, v in s.scores.items()
    ]
    return {"groups": groups, "numeric": numeric, "categorical": categorical, "scores": scores}


def summaries_from_dict(d: Mapping[str, Any], columns: Mapping[str, ColumnProfile]) -> Summaries:
    out = Summaries()
    for w, seg, value, rows in d["groups"]:
        out.groups[(int(w), seg, value)] = GroupInfo(int(rows))
    for column, items in d["numeric"].items():
        edges = columns[column].edges
        out.numeric[column] = {
            (int(w), seg, value): NumericSummary(
                edges,
                np.asarray(counts, dtype=np.int64),
                int(nulls),
                int(defaults),
                float(total),
                float(squares),
                lo,
                hi,
                float(low),
                float(high),
                None if not rest or rest[0] is None else int(rest[0]),
            )
            for w, seg, value, counts, nulls, defaults, total, squares, lo, hi, low, high, *rest in items
        }
    for column, items in d["categorical"].items():
        cats = columns[column].categories
        out.categorical[column] = {
            (int(w), seg, value): CategoricalSummary(
                cats, np.asarray(counts, dtype=np.int64), int(unseen), int(nulls), int(defaults), dict(named)
            )
            for w, seg, value, counts, unseen, nulls, defaults, named in items
        }
    for w, seg, value, task, grid, pos, neg, unl, sums_s, sums, pending, confusion in d["scores"]:
        out.scores[(int(w), seg, value)] = ScoreSummary(
            task,
            int(grid),
            np.asarray(pos, dtype=np.int64),
            np.asarray(neg, dtype=np.int64),
            np.asarray(unl, dtype=np.int64),
            np.asarray(sums_s, dtype=float),
            np.asarray(sums, dtype=float),
            int(pending),
            {(a, b): int(n) for a, b, n in confusion},
        )
    return out
