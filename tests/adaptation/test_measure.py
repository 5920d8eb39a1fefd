"""A rollout stage's sums, every check and segment in one query, against a brute-force oracle.

The oracle walks the same events row by row in Python: which arm and stratum a
request belongs to, each outcome's value (NumPy's linear quantile for the
champion's 95th latency percentile), and the count, sum and sum of squares per
(segment value, stratum, arm); the shadow oracle pairs each shadow answer with
its champion answer by hand. Estimated outcomes (``Check(estimate=True)``) use
the answering version's calibration curve through NumPy's ``interp`` where the
label has not arrived.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops.adaptation.measure import (
    ArmSums,
    calibrated_sql,
    canary_sql,
    estimated_outcome_sql,
    outcome_sql,
    paired_sums_from,
    shadow_sql,
    sums_from,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
OUTCOMES = [
    "error",
    "log_loss",
    "fallback",
    "slow",
    "latency_ms",
    "brier",
    "estimated_error",
    "estimated_log_loss",
    "estimated_brier",
]
SEGMENTS = ["region", "tier"]
THRESHOLD = 0.5
#: Each version's P(y = 1) on an even grid of scores: any nondecreasing chances, different per version.
GRID = np.linspace(0.0, 1.0, 201)
CURVES = {v: np.sort(np.random.default_rng(v).random(GRID.size)) for v in (1, 2, 3)}


def _events(seed: int, n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        route = str(rng.choice(["champion", "canary", "shadow", "champion"]))
        version = int(rng.choice([1, 2, 3]))
        label = None if rng.random() < 0.3 else float(rng.integers(0, 2))
        latency = float(rng.exponential(20.0))
        if route != "champion" and rng.random() < 0.05:
            latency = math.inf  # not finite: never counted (the champion's keep its percentile finite)
        rows.append(
            {
                "request_id": f"r{i}",
                "route": route,
                "version": version,
                "at": T0 + timedelta(minutes=int(rng.integers(0, 3 * 24 * 60))),
                "prediction": float(rng.choice([0.0, 1.0, rng.random()])),
                "label_number": label,
                "fallback": bool(rng.random() < 0.1),
                "latency_ms": latency,
                "region": None if rng.random() < 0.1 else str(rng.choice(["n", "s", "e"])),
                "tier": int(rng.integers(1, 3)),
                "shadow_of": None,
            }
        )
    champions = [r["request_id"] for r in rows if r["route"] == "champion"]
    for r in rows:
        if r["route"] == "shadow" and champions:
            r["shadow_of"] = champions[int(rng.integers(0, len(champions)))]
    return rows


SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("route", pa.string()),
        ("version", pa.int64()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("prediction", pa.float64()),
        ("label_number", pa.float64()),
        ("fallback", pa.bool_()),
        ("latency_ms", pa.float64()),
        ("region", pa.string()),
        ("tier", pa.int64()),
        ("shadow_of", pa.string()),
    ]
)


def _query(rows: list[dict[str, Any]], sql: str) -> pa.Table:
    """``sql`` over ``rows`` as the view ``events``."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("events", pa.Table.from_pylist(rows, schema=SCHEMA))
    return con.sql(sql).to_arrow_table()


def _p95(values: list[float]) -> float:
    """The linearly interpolated 95th percentile, by hand."""
    xs = sorted(values)
    h = (len(xs) - 1) * 0.95
    lo = math.floor(h)
    return xs[lo] if lo + 1 >= len(xs) else xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])


def _value(outcome: str, prediction: str, label: str, version: str) -> str:
    if outcome.startswith("estimated_"):
        chance = calibrated_sql(prediction, version, CURVES)
        return estimated_outcome_sql(
            outcome.removeprefix("estimated_"),
            prediction=prediction,
            label=label,
            chance=chance,
            threshold=THRESHOLD,
        )
    return outcome_sql(outcome, prediction=prediction, label=label, threshold=THRESHOLD, task="binary")


def _outcome(
    outcome: str, p: float, y: float | None, fallback: bool, latency: float, p95: float | None, version: int
) -> float | None:
    if outcome.startswith("estimated_"):
        outcome = outcome.removeprefix("estimated_")
        if y is None:
            c = float(np.interp(p, GRID, CURVES[version]))
            if outcome == "error":
                return 1 - c if p >= THRESHOLD else c
            if outcome == "brier":
                return c * (1 - p) ** 2 + (1 - c) * p**2
            q = min(max(p, 1e-15), 1 - 1e-15)
            return -(c * math.log(q) + (1 - c) * math.log(1 - q))
    if outcome == "fallback":
        return 1.0 if fallback else 0.0
    if outcome == "latency_ms":
        return latency
    if outcome == "slow":
        return None if p95 is None else (1.0 if latency > p95 else 0.0)
    if y is None:
        return None
    if outcome == "error":
        return 0.0 if (p >= THRESHOLD) == (y >= 0.5) else 1.0
    if outcome == "brier":
        return (p - y) ** 2
    q = min(max(p, 1e-15), 1 - 1e-15)
    return -(y * math.log(q) + (1 - y) * math.log(1 - q))


def _keys(row: dict[str, Any]) -> list[str]:
    return ["all"] + [f"{c}={'null' if row[c] is None else row[c]}" for c in SEGMENTS]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _same(got: dict[str, ArmSums], want: dict[tuple[str, int, str], list[float]], strata: int) -> None:
    assert sorted(got) == sorted({k for k, _, _ in want})
    for key, arms in got.items():
        assert len(arms.strata) == strata
        for s, pair in enumerate(arms.strata):
            for arm, sums in zip(("champion", "candidate"), pair, strict=True):
                n, total, squares = want.get((key, s, arm), [0.0, 0.0, 0.0])
                assert sums.n == n, (key, s, arm)
                assert _close(sums.total, total) and _close(sums.squares, squares), (key, s, arm)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400), split=st.integers(1, 47))
def test_canary_sums_of_every_check_and_segment_equal_a_row_by_row_oracle(
    seed: int, n: int, split: int
) -> None:
    rows = _events(seed, n)
    boundaries = [T0 + timedelta(hours=6), T0 + timedelta(hours=6 + split)]
    until = T0 + timedelta(days=2, hours=12)
    sql = canary_sql(
        OUTCOMES, champion=1, candidate=2, boundaries=boundaries, until=until, value=_value, segments=SEGMENTS
    )
    got = sums_from(_query(rows, sql), len(OUTCOMES), 2, SEGMENTS)

    chosen = []
    for r in rows:
        arm = {("champion", 1): "champion", ("canary", 2): "candidate"}.get((r["route"], r["version"]))
        if arm is None or not boundaries[0] <= r["at"] < until:
            continue
        chosen.append((r, arm, 0 if r["at"] < boundaries[1] else 1))
    p95: dict[int, float] = {}
    for s in (0, 1):
        lat = [r["latency_ms"] for r, arm, st_ in chosen if arm == "champion" and st_ == s]
        if lat:
            p95[s] = _p95(lat)
    for i, outcome in enumerate(OUTCOMES):
        want: dict[tuple[str, int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for r, arm, s in chosen:
            x = _outcome(
                outcome,
                r["prediction"],
                r["label_number"],
                r["fallback"],
                r["latency_ms"],
                p95.get(s),
                r["version"],
            )
            if x is None or not math.isfinite(x):
                continue
            for key in _keys(r):
                cell = want[(key, s, arm)]
                cell[0] += 1
                cell[1] += x
                cell[2] += x * x
        _same(got[i], want, 2)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400))
def test_shadow_sums_are_per_request_differences_of_every_check_and_segment(seed: int, n: int) -> None:
    rows = _events(seed, n)
    start, until = T0 + timedelta(hours=3), T0 + timedelta(days=2)
    sql = shadow_sql(
        OUTCOMES, champion=1, candidate=3, start=start, until=until, value=_value, segments=SEGMENTS
    )
    got = paired_sums_from(_query(rows, sql), len(OUTCOMES), SEGMENTS)

    by_id = {r["request_id"]: r for r in rows}
    pairs = []
    for s in rows:
        c = by_id.get(s["shadow_of"]) if s["shadow_of"] else None
        if s["route"] != "shadow" or s["version"] != 3 or c is None:
            continue
        if c["route"] == "champion" and c["version"] == 1 and start <= c["at"] < until:
            pairs.append((s, c))
    for i, outcome in enumerate(OUTCOMES):
        want: dict[tuple[str, int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for s, c in pairs:
            if outcome in ("latency_ms", "slow"):
                d: float | None = s["latency_ms"] - c["latency_ms"]
            else:
                a = _outcome(outcome, s["prediction"], c["label_number"], s["fallback"], 0.0, None, 3)
                b = _outcome(outcome, c["prediction"], c["label_number"], c["fallback"], 0.0, None, 1)
                d = None if a is None or b is None else a - b
            if d is None or not math.isfinite(d):
                continue
            for key in _keys(c):
                want[(key, 0, "champion")][0] += 1
                cell = want[(key, 0, "candidate")]
                cell[0] += 1
                cell[1] += d
                cell[2] += d * d
        _same(got[i], want, 1)


@pytest.mark.parametrize("segments", [[], ["region"]])
def test_a_stage_without_segments_or_events_gives_empty_sums(segments: list[str]) -> None:
    rows = [_events(1, 1)[0] | {"route": "other"}]  # no champion, canary or shadow answer
    until = T0 + timedelta(days=3)
    sql = canary_sql(
        ["error"], champion=1, candidate=2, boundaries=[T0], until=until, value=_value, segments=segments
    )
    assert sums_from(_query(rows, sql), 1, 1, segments) == [{}]
    sql = shadow_sql(
        ["error"], champion=1, candidate=3, start=T0, until=until, value=_value, segments=segments
    )
    assert paired_sums_from(_query(rows, sql), 1, segments) == [{}]


@settings(max_examples=50, deadline=None)
@given(
    scores=st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=1, max_size=50),
    size=st.integers(2, 300),
    seed=st.integers(0, 1000),
)
def test_calibrated_chances_interpolate_each_versions_curve_as_numpy_does(
    scores: list[float], size: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    curves = {1: rng.random(size), 2: rng.random(size)}
    grid = np.linspace(0.0, 1.0, size)
    rows = [{"p": p, "v": 1 + i % 2} for i, p in enumerate(scores)]
    con = duckdb.connect()
    con.register("t", pa.Table.from_pylist(rows))
    got = [r[0] for r in con.sql(f"SELECT {calibrated_sql('p', 'v', curves)} FROM t").fetchall()]
    want = [float(np.interp(r["p"], grid, curves[r["v"]])) for r in rows]
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_curve_outside_zero_to_one_or_no_curve_is_refused() -> None:
    with pytest.raises(ValueError, match="version 4"):
        calibrated_sql("p", "v", {4: [0.0, 1.5]})
    with pytest.raises(ValueError, match="at least one version"):
        calibrated_sql("p", "v", {})
