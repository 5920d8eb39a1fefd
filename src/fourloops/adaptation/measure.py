"""What a rollout's checks measure, from the event log: per-request outcomes of candidate and champion.

Every check compares a per-request **outcome** (an error, a loss, a fallback,
a slow answer, the reward) of the candidate with the champion's, computed in
SQL where the events live (the compacted event tables, by the batch engine)
and returned as mergeable sums (count, sum, sum of squares) per arm and
stratum; only those come back to Python.

* A **canary** is compared with the champion on the requests each answered
  in the same period, stratum by stratum (one stratum per stage of the
  ramp, so a share that grows mid-test does not bias the difference). The
  sticky hash makes the two groups comparable.
* A **shadow** scored the champion's own requests: each shadow score is
  paired with the champion's answer to the same request (``shadow_of``), and
  the per-request difference is what is tested. Agreement of the decisions,
  the mean distance between the two predictions and the pair count are
  measured beside it.

Outcomes that need a label use the labels that have arrived so far (both arms
alike); a request without one does not count, unless its check is estimated
(``Check(estimate=True)``): then it counts with its expected outcome under the
answering version's calibrated score (:func:`estimated_outcome_sql`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from fourloops.adaptation.sequential import Sums

__all__ = [
    "ArmSums",
    "calibrated_sql",
    "canary_sql",
    "estimated_outcome_sql",
    "expected_outcome_sql",
    "paired_sums_from",
    "outcome_sql",
    "shadow_evidence_sql",
    "shadow_sql",
    "sums_from",
    "traffic_sql",
]

#: Probabilities are clipped this far from 0 and 1 before a log.
_EPS = 1e-15


def _ts(at: datetime) -> str:
    return f"TIMESTAMPTZ '{at.isoformat()}'"


def outcome_sql(outcome: str, *, prediction: str, label: str, threshold: float, task: str) -> str:
    """SQL of one request's ``outcome`` from its prediction, label, fallback and latency columns."""
    p, y = prediction, label
    clipped = f"least(greatest({p}, {_EPS}), {1 - _EPS})"
    if outcome == "error":
        if task == "binary":
            hit = f"({p} >= {threshold}) = ({y} >= 0.5)"
            return f"CASE WHEN {y} IS NULL THEN NULL WHEN {hit} THEN 0.0 ELSE 1.0 END"
        return f"CASE WHEN {y} IS NULL THEN NULL WHEN {p} = {y} THEN 0.0 ELSE 1.0 END"
    if outcome == "log_loss":
        return f"-({y} * ln({clipped}) + (1 - {y}) * ln(1 - {clipped}))"
    if outcome == "brier":
        return f"({p} - {y}) * ({p} - {y})"
    if outcome == "abs_error":
        return f"abs({p} - {y})"
    if outcome == "squared_error":
        return f"({p} - {y}) * ({p} - {y})"
    if outcome == "reward":
        return y
    raise ValueError(f"no per-prediction SQL for outcome {outcome!r}")


def calibrated_sql(prediction: str, version: str, curves: Mapping[int, Sequence[float]]) -> str:
    """SQL of P(y = 1 | score) under the calibration curve of the version that answered.

    ``curves[v]`` is version ``v``'s P(y = 1) at evenly spaced scores from 0 to 1 (a
    :class:`~fourloops.evaluation.window_metrics.Calibrator`'s ``y``), interpolated linearly
    between them; ``version`` is the SQL of the answering version (a column or a number).
    """
    if not curves:
        raise ValueError("calibrated_sql needs the curve of at least one version")
    clipped = f"least(greatest({prediction}, 0.0), 1.0)"
    cases = []
    for v, curve in sorted(curves.items()):
        points = [float(x) for x in curve]
        if len(points) < 2 or not all(0.0 <= x <= 1.0 for x in points):
            raise ValueError(f"version {v}: a calibration curve is two or more chances in [0, 1]")
        grid = len(points) - 1
        listed = "[" + ", ".join(repr(x) for x in points) + "]"
        at = f"({clipped} * {grid})"
        cell = f"least(CAST(floor({at}) AS BIGINT), {grid - 1})"
        # DuckDB lists are 1-based: the cell's left point is element cell + 1.
        interpolated = (
            f"({listed}[{cell} + 1] + ({at} - {cell}) * ({listed}[{cell} + 2] - {listed}[{cell} + 1]))"
        )
        cases.append(f"WHEN {version} = {int(v)} THEN {interpolated}")
    return f"(CASE {' '.join(cases)} END)"


def expected_outcome_sql(outcome: str, *, prediction: str, chance: str, threshold: float) -> str:
    """SQL of a binary prediction's expected ``outcome`` when its label is 1 with probability ``chance``."""
    p, c = prediction, chance
    if outcome == "error":
        return f"CASE WHEN {p} >= {threshold} THEN 1.0 - {c} ELSE {c} END"
    if outcome == "log_loss":
        clipped = f"least(greatest({p}, {_EPS}), {1 - _EPS})"
        return f"-({c} * ln({clipped}) + (1 - {c}) * ln(1 - {clipped}))"
    if outcome == "brier":
        return f"(({p} - {c}) * ({p} - {c}) + {c} * (1 - {c}))"
    raise ValueError(f"no expected value for outcome {outcome!r}")


def estimated_outcome_sql(outcome: str, *, prediction: str, label: str, chance: str, threshold: float) -> str:
    """The realised ``outcome`` where the label has arrived, the expected one (given ``chance``) before."""
    realised = outcome_sql(outcome, prediction=prediction, label=label, threshold=threshold, task="binary")
    expected = expected_outcome_sql(outcome, prediction=prediction, chance=chance, threshold=threshold)
    return f"(CASE WHEN {label} IS NULL THEN {expected} ELSE {realised} END)"


@dataclass(frozen=True)
class ArmSums:
    """The sums of one outcome per stratum: (champion, candidate) pairs, ready for the sequential test."""

    strata: tuple[tuple[Sums, Sums], ...]

    @property
    def rows(self) -> tuple[int, int]:
        return (int(sum(c.n for c, _ in self.strata)), int(sum(k.n for _, k in self.strata)))


def _cell_sums(row: dict[str, Any], i: int) -> Sums:
    return Sums(float(row[f"n{i}"] or 0), float(row[f"t{i}"] or 0.0), float(row[f"q{i}"] or 0.0))


def _cell_key(row: dict[str, Any], segments: Sequence[str]) -> str:
    """``all`` for the overall grouping, ``column=value`` for a segment column's grouping."""
    for j, column in enumerate(segments):
        if row[f"s{j}"] is not None:
            return f"{column}={row[f's{j}']}"
    return "all"


def sums_from(
    table: pa.Table, outcomes: int, strata: int, segments: Sequence[str]
) -> list[dict[str, ArmSums]]:
    """The rows of :func:`canary_sql` as sums per outcome: ``{key: ArmSums}`` with key ``all`` or
    ``column=value``; a key appears for an outcome once it has a counted request in some stratum."""
    cells: list[dict[tuple[str, int, str], Sums]] = [{} for _ in range(outcomes)]
    for row in table.to_pylist():
        key = _cell_key(row, segments)
        for i in range(outcomes):
            sums = _cell_sums(row, i)
            if sums.n > 0:
                cells[i][(key, int(row["stratum"]), str(row["arm"]))] = sums
    empty = Sums(0.0, 0.0, 0.0)
    return [
        {
            key: ArmSums(
                tuple(
                    (found.get((key, s, "champion"), empty), found.get((key, s, "candidate"), empty))
                    for s in range(strata)
                )
            )
            for key in sorted({k[0] for k in found})
        }
        for found in cells
    ]


def paired_sums_from(table: pa.Table, outcomes: int, segments: Sequence[str]) -> list[dict[str, ArmSums]]:
    """The rows of :func:`shadow_sql` as sums per outcome, one stratum each.

    The champion's side counts the pairs with all-zero sums and the candidate's side holds the
    differences, so that the two-sample test reads them as the paired test they are.
    """
    out: list[dict[str, ArmSums]] = [{} for _ in range(outcomes)]
    for row in table.to_pylist():
        key = _cell_key(row, segments)
        for i in range(outcomes):
            sums = _cell_sums(row, i)
            if sums.n > 0:
                out[i][key] = ArmSums(((Sums(sums.n, 0.0, 0.0), sums),))
    return [dict(sorted(d.items())) for d in out]


def _segment(column: str | None, table: str | None = None) -> str:
    """SQL of an event's segment value (``'all'`` without a segment column)."""
    if column is None:
        return "'all'"
    quoted = '"' + column.replace('"', '""') + '"'
    return f"coalesce(CAST({table + '.' if table else ''}{quoted} AS VARCHAR), 'null')"


def _grouped(segments: Sequence[str], keys: str) -> str:
    """GROUPING SETS over ``keys`` alone and with each segment column in turn."""
    sets = [f"({keys})" if keys else "()"]
    sets += [f"(__fl_s{j}{', ' + keys if keys else ''})" for j in range(len(segments))]
    return f"GROUPING SETS ({', '.join(sets)})"


def _aggregates(outcomes: int) -> str:
    return ", ".join(
        f"count(__fl_x{i}) AS n{i}, sum(__fl_x{i}) AS t{i}, sum(__fl_x{i} * __fl_x{i}) AS q{i}"
        for i in range(outcomes)
    )


def _finite(outcomes: int) -> str:
    """Each outcome where it is a finite number (else null: not counted)."""
    return ", ".join(
        f"CASE WHEN isfinite(__fl_x{i}) THEN __fl_x{i} END AS __fl_x{i}" for i in range(outcomes)
    )


def _stratum_sql(boundaries: Sequence[datetime]) -> str:
    """The stratum of an event: the index of the period (stage) its time falls in."""
    if len(boundaries) <= 1:
        return "0"
    cases = " ".join(f'WHEN "at" < {_ts(b)} THEN {i}' for i, b in enumerate(boundaries[1:]))
    return f"CASE {cases} ELSE {len(boundaries) - 1} END"


def canary_sql(
    outcomes: Sequence[str],
    *,
    champion: int,
    candidate: int,
    boundaries: Sequence[datetime],
    until: datetime,
    value: Callable[[str, str, str, str], str],
    segments: Sequence[str] = (),
) -> str:
    """Per stratum and arm, the sums of every outcome over the champion's and the canary's answers.

    One query, one pass over the events: columns ``n<i>`` (count), ``t<i>`` (total) and sum of squares
    ``q<i>`` of outcome ``i``, grouped overall and by each segment column (``s<j>``: the value of
    ``segments[j]`` in its grouping, null elsewhere). ``boundaries`` are the start times of the
    periods compared (one stratum each), ``until`` the end; ``value(outcome, prediction, label,
    version)`` is the SQL of a labelled outcome (see :func:`outcome_sql`; ``version``: the SQL of
    the answering version). Read with :func:`sums_from`.
    """
    start = boundaries[0]
    segs = "".join(f", {_segment(c)} AS __fl_s{j}" for j, c in enumerate(segments))
    base = (
        f"SELECT *, CASE WHEN route = 'canary' THEN 'candidate' ELSE 'champion' END AS __fl_arm, "
        f"{_stratum_sql(boundaries)} AS __fl_stratum{segs} FROM events "
        f"WHERE ((route = 'champion' AND version = {int(champion)}) "
        f"OR (route = 'canary' AND version = {int(candidate)})) "
        f'AND "at" >= {_ts(start)} AND "at" < {_ts(until)}'
    )
    measures = []
    for i, outcome in enumerate(outcomes):
        if outcome == "fallback":
            measure = "CASE WHEN fallback THEN 1.0 ELSE 0.0 END"
        elif outcome == "latency_ms":
            measure = "latency_ms"
        elif outcome == "slow":
            # no champion answer in the stratum: no 95th percentile, nothing to count
            measure = "CASE WHEN q.p95 IS NULL THEN NULL WHEN latency_ms > q.p95 THEN 1.0 ELSE 0.0 END"
        else:
            measure = value(outcome, "prediction", "label_number", "version")
        measures.append(f"{measure} AS __fl_x{i}")
    source = "e"
    if "slow" in outcomes:  # slower than the champion's 95th percentile in the same stratum
        p95 = (
            "(SELECT __fl_stratum, quantile_cont(latency_ms, 0.95) AS p95 FROM e "
            "WHERE __fl_arm = 'champion' GROUP BY __fl_stratum)"
        )
        source = f"e LEFT JOIN {p95} q USING (__fl_stratum)"
    keep = "".join(f"__fl_s{j}, " for j in range(len(segments)))
    named = "".join(f"__fl_s{j} AS s{j}, " for j in range(len(segments)))
    inner = f"SELECT {keep}__fl_stratum, __fl_arm, {', '.join(measures)} FROM {source}"
    return (
        f"WITH e AS ({base}), "
        f"x AS (SELECT {keep}__fl_stratum, __fl_arm, {_finite(len(outcomes))} FROM ({inner})) "
        f"SELECT {named}__fl_stratum AS stratum, __fl_arm AS arm, {_aggregates(len(outcomes))} FROM x "
        f"GROUP BY {_grouped(segments, '__fl_stratum, __fl_arm')}"
    )


def shadow_sql(
    outcomes: Sequence[str],
    *,
    champion: int,
    candidate: int,
    start: datetime,
    until: datetime,
    value: Callable[[str, str, str, str], str],
    segments: Sequence[str] = (),
) -> str:
    """The sums of each outcome's per-request difference (shadow minus champion) on the same requests.

    One query, one pass: columns ``n<i>``, ``t<i>``, ``q<i>`` of the differences of outcome ``i``,
    overall and by each segment column (``s<j>``). Read with :func:`paired_sums_from`.
    """
    segs = "".join(f", {_segment(c, 'c')} AS __fl_s{j}" for j, c in enumerate(segments))
    pairs = (
        f"SELECT c.label_number AS y, s.prediction AS ps, c.prediction AS pc, "
        f"s.fallback AS fs, c.fallback AS fc, s.latency_ms AS ls, c.latency_ms AS lc{segs} "
        f"FROM events s JOIN events c ON s.shadow_of = c.request_id "
        f"WHERE s.route = 'shadow' AND s.version = {int(candidate)} "
        f"AND c.route = 'champion' AND c.version = {int(champion)} "
        f'AND c."at" >= {_ts(start)} AND c."at" < {_ts(until)}'
    )
    diffs = []
    for i, outcome in enumerate(outcomes):
        if outcome == "fallback":
            diff = "(CASE WHEN fs THEN 1.0 ELSE 0.0 END) - (CASE WHEN fc THEN 1.0 ELSE 0.0 END)"
        elif outcome in ("latency_ms", "slow"):
            diff = "ls - lc"
        else:
            shadow = value(outcome, "ps", "y", str(int(candidate)))
            diff = f"({shadow}) - ({value(outcome, 'pc', 'y', str(int(champion)))})"
        diffs.append(f"{diff} AS __fl_x{i}")
    keep = "".join(f"__fl_s{j}, " for j in range(len(segments)))
    named = "".join(f"__fl_s{j} AS s{j}, " for j in range(len(segments)))
    return (
        f"WITH p AS ({pairs}), d AS (SELECT {keep}{', '.join(diffs)} FROM p), "
        f"x AS (SELECT {keep}{_finite(len(outcomes))} FROM d) "
        f"SELECT {named}{_aggregates(len(outcomes))} FROM x GROUP BY {_grouped(segments, '')}"
    )


def shadow_evidence_sql(
    *, champion: int, candidate: int, start: datetime, until: datetime, threshold: float
) -> str:
    """Pairs, decision agreement and the mean distance between shadow and champion predictions."""
    return (
        f"SELECT count(*) AS pairs, "
        f"avg(CASE WHEN (s.prediction >= {threshold}) = (c.prediction >= {threshold}) "
        f"THEN 1.0 ELSE 0.0 END) AS agreement, avg(abs(s.prediction - c.prediction)) AS mean_distance, "
        f"avg(CASE WHEN s.fallback THEN 1.0 ELSE 0.0 END) AS shadow_fallback_rate, "
        f"quantile_cont(s.latency_ms, 0.99) AS shadow_p99_ms "
        f"FROM events s JOIN events c ON s.shadow_of = c.request_id "
        f"WHERE s.route = 'shadow' AND s.version = {int(candidate)} "
        f"AND c.route = 'champion' AND c.version = {int(champion)} "
        f'AND c."at" >= {_ts(start)} AND c."at" < {_ts(until)}'
    )


def traffic_sql(*, since: datetime, until: datetime) -> str:
    """Champion requests per hour between ``since`` and ``until`` (for stage planning)."""
    hours = max((until - since).total_seconds() / 3600, 1e-9)
    return (
        f"SELECT count(*) / {hours} AS per_hour FROM events WHERE route = 'champion' "
        f'AND "at" >= {_ts(since)} AND "at" < {_ts(until)}'
    )
