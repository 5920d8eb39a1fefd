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
alike); a request without one does not count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from fourloops.adaptation.sequential import Sums

__all__ = [
    "ArmSums",
    "Measured",
    "canary_sql",
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


@dataclass(frozen=True)
class ArmSums:
    """The sums of one outcome per stratum: (champion, candidate) pairs, ready for the sequential test."""

    strata: tuple[tuple[Sums, Sums], ...]

    @property
    def rows(self) -> tuple[int, int]:
        return (int(sum(c.n for c, _ in self.strata)), int(sum(k.n for _, k in self.strata)))


@dataclass(frozen=True)
class Measured:
    """Everything measured for a stage: sums per check outcome, requests seen, and plain evidence."""

    sums: dict[str, ArmSums]
    requests: tuple[int, int]
    evidence: dict[str, Any]


def sums_from(table: pa.Table, strata: int) -> dict[str, ArmSums]:
    """``(seg, stratum, arm, n, total, squares)`` rows as sums per segment value and stratum."""
    cells: dict[tuple[str, int, str], Sums] = {}
    for row in table.to_pylist():
        cells[(str(row["seg"]), int(row["stratum"]), str(row["arm"]))] = Sums(
            float(row["n"] or 0), float(row["total"] or 0.0), float(row["squares"] or 0.0)
        )
    empty = Sums(0.0, 0.0, 0.0)
    return {
        seg: ArmSums(
            tuple(
                (cells.get((seg, s, "champion"), empty), cells.get((seg, s, "candidate"), empty))
                for s in range(strata)
            )
        )
        for seg in sorted({key[0] for key in cells})
    }


def _segment(column: str | None, table: str | None = None) -> str:
    """SQL of an event's segment value (``'all'`` without a segment column)."""
    if column is None:
        return "'all'"
    quoted = '"' + column.replace('"', '""') + '"'
    return f"coalesce(CAST({table + '.' if table else ''}{quoted} AS VARCHAR), 'null')"


def _stratum_sql(boundaries: Sequence[datetime]) -> str:
    """The stratum of an event: the index of the period (stage) its time falls in."""
    if len(boundaries) <= 1:
        return "0"
    cases = " ".join(f'WHEN "at" < {_ts(b)} THEN {i}' for i, b in enumerate(boundaries[1:]))
    return f"CASE {cases} ELSE {len(boundaries) - 1} END"


def canary_sql(
    outcome: str,
    *,
    champion: int,
    candidate: int,
    boundaries: Sequence[datetime],
    until: datetime,
    value: Callable[[str, str], str],
    segment: str | None = None,
) -> str:
    """Per stratum and arm, the sums of ``outcome`` over the champion's and the canary's answers.

    ``boundaries`` are the start times of the periods compared (one stratum each), ``until`` the end;
    ``value(prediction, label)`` is the SQL of a labelled outcome (see :func:`outcome_sql`). With
    ``segment`` the sums are per value of that column too (``seg``; else ``seg`` is ``all``).
    """
    start = boundaries[0]
    base = (
        f"SELECT *, CASE WHEN route = 'canary' THEN 'candidate' ELSE 'champion' END AS arm, "
        f"{_stratum_sql(boundaries)} AS stratum, {_segment(segment)} AS seg FROM events "
        f"WHERE ((route = 'champion' AND version = {int(champion)}) "
        f"OR (route = 'canary' AND version = {int(candidate)})) "
        f'AND "at" >= {_ts(start)} AND "at" < {_ts(until)}'
    )
    if outcome in ("slow", "latency_ms", "fallback"):
        measure = {
            "fallback": "CASE WHEN fallback THEN 1.0 ELSE 0.0 END",
            "latency_ms": "latency_ms",
            "slow": "CASE WHEN latency_ms > p95 THEN 1.0 ELSE 0.0 END",
        }[outcome]
        p95 = (
            "(SELECT stratum, quantile_cont(latency_ms, 0.95) AS p95 FROM e "
            "WHERE arm = 'champion' GROUP BY stratum)"
        )
        source = f"e JOIN {p95} q USING (stratum)" if outcome == "slow" else "e"
        inner = f"SELECT seg, stratum, arm, {measure} AS x FROM {source}"
    else:
        inner = f"SELECT seg, stratum, arm, {value('prediction', 'label_number')} AS x FROM e"
    return (
        f"WITH e AS ({base}) SELECT seg, stratum, arm, count(x) AS n, sum(x) AS total, "
        f"sum(x * x) AS squares FROM ({inner}) WHERE x IS NOT NULL AND isfinite(x) GROUP BY ALL"
    )


def shadow_sql(
    outcome: str,
    *,
    champion: int,
    candidate: int,
    start: datetime,
    until: datetime,
    value: Callable[[str, str], str],
    segment: str | None = None,
) -> str:
    """The sums of the per-request difference (shadow minus champion) of ``outcome`` on the same requests.

    Returned as one stratum where the champion's side is all zeros and the candidate's side holds
    the differences, so that the two-sample test reads it as the paired test it is.
    """
    pairs = (
        f"SELECT {_segment(segment, 'c')} AS seg, c.label_number AS y, "
        f"s.prediction AS ps, c.prediction AS pc, "
        f"s.fallback AS fs, c.fallback AS fc, s.latency_ms AS ls, c.latency_ms AS lc "
        f"FROM events s JOIN events c ON s.shadow_of = c.request_id "
        f"WHERE s.route = 'shadow' AND s.version = {int(candidate)} "
        f"AND c.route = 'champion' AND c.version = {int(champion)} "
        f'AND c."at" >= {_ts(start)} AND c."at" < {_ts(until)}'
    )
    if outcome == "fallback":
        diff = "(CASE WHEN fs THEN 1.0 ELSE 0.0 END) - (CASE WHEN fc THEN 1.0 ELSE 0.0 END)"
    elif outcome in ("latency_ms", "slow"):
        diff = "ls - lc"
    else:
        diff = f"({value('ps', 'y')}) - ({value('pc', 'y')})"
    return (
        f"WITH p AS ({pairs}), d AS (SELECT seg, {diff} AS d FROM p) "
        "SELECT seg, 0 AS stratum, 'candidate' AS arm, count(d) AS n, sum(d) AS total, sum(d * d) AS squares "
        "FROM d WHERE d IS NOT NULL AND isfinite(d) GROUP BY seg "
        "UNION ALL SELECT seg, 0, 'champion', count(d), 0.0, 0.0 FROM d "
        "WHERE d IS NOT NULL AND isfinite(d) GROUP BY seg"
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
