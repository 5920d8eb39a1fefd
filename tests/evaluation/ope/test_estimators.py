"""Every estimator and diagnostic against a plain loop over rounds, on random logs (hypothesis)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fourloops.evaluation.ope import align, read_logs, read_policy
from fourloops.evaluation.ope.diagnostics import diagnose
from fourloops.evaluation.ope.estimators import Sums, estimate, unit_matrix

from .brute import brute_force


def _policy_table(draw: Any, actions: int, positions: int) -> np.ndarray:
    raw = np.array(
        draw(
            st.lists(
                st.one_of(st.just(0.0), st.floats(0.01, 1.0)),
                min_size=actions * positions,
                max_size=actions * positions,
            )
        )
    ).reshape(actions, positions)
    raw[0, raw.sum(axis=0) == 0] = 1.0  # no column all zero
    return raw / raw.sum(axis=0)


@st.composite
def bandits(draw: Any) -> dict[str, Any]:
    actions = draw(st.integers(1, 4))
    positions = draw(st.integers(1, 3))
    n = draw(st.integers(1, 40))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, actions - 1),
                st.integers(0, positions - 1),
                st.one_of(st.integers(0, 1).map(float), st.floats(-5, 5)),
                st.floats(0.01, 1.0),
            ),
            min_size=n,
            max_size=n,
        )
    )
    return {
        "actions": actions,
        "positions": positions,
        "rows": rows,
        "table": _policy_table(draw, actions, positions),
    }


def _close(ours: float | None, theirs: float | None) -> None:
    if theirs is None:
        assert ours is None or not np.isfinite(ours)
    else:
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def _check(rounds: Any, expected: dict[str, float | None]) -> None:
    sums = Sums.of(rounds)
    values = {name: float(v[0]) for name, v in estimate(sums).items()}
    for name in ("dm", "ips", "snips", "dr"):
        _close(values[name], expected[name])
    d = diagnose(rounds.weight, sums)
    _close(d.ess, expected["ess"])
    _close(d.max_weight_share, expected["max_weight_share"])
    _close(d.unsupported_mass, expected["unsupported_mass"])


@settings(max_examples=150, deadline=None)
@given(bandits())
def test_per_action_policy_matches_the_loop(bandit: dict[str, Any]) -> None:
    rows, table = bandit["rows"], bandit["table"]
    logs = pl.DataFrame(
        {
            "action": [r[0] for r in rows],
            "position": [r[1] for r in rows],
            "reward": [r[2] for r in rows],
            "propensity": [r[3] for r in rows],
        },
        schema={"action": pl.Int64, "position": pl.Int64, "reward": pl.Float64, "propensity": pl.Float64},
    )
    policy = pl.DataFrame(
        {"action": range(bandit["actions"]), **{f"pos{k}": table[:, k] for k in range(bandit["positions"])}}
    )
    rounds = align(read_logs(logs), read_policy(policy), position_base=0)
    logged = [(a, k, r, p, i) for i, (a, k, r, p) in enumerate(rows)]
    expected = brute_force(logged, range(bandit["actions"]), lambda _i, a, k: float(table[a, k]))
    _check(rounds, expected)


@settings(max_examples=100, deadline=None)
@given(bandits(), st.data())
def test_per_round_policy_matches_the_loop(bandit: dict[str, Any], data: st.DataObject) -> None:
    rows, actions = bandit["rows"], bandit["actions"]
    n = len(rows)
    round_of = data.draw(st.lists(st.integers(0, max(0, n // 2)), min_size=n, max_size=n))
    # Per round and position, the target's own distribution over the actions.
    pairs = sorted({(round_of[i], rows[i][1]) for i in range(n)})
    probabilities = {pair: _policy_table(data.draw, actions, 1)[:, 0] for pair in pairs}
    # An action a round does not list has probability 0 there; each action is listed somewhere.
    listed = [
        {"round_id": f"r{r}", "action": a, "position": k, "probability": float(p[a])}
        for (r, k), p in probabilities.items()
        for a in range(actions)
        if p[a] > 0
    ]
    (r0, k0) = pairs[0]
    named = {row["action"] for row in listed}
    listed += [
        {"round_id": f"r{r0}", "action": a, "position": k0, "probability": 0.0}
        for a in range(actions)
        if a not in named
    ]
    policy = pl.DataFrame(listed)
    logs = pl.DataFrame(
        {
            "round_id": [f"r{r}" for r in round_of],
            "action": [r[0] for r in rows],
            "position": [r[1] for r in rows],
            "reward": [r[2] for r in rows],
            "propensity": [r[3] for r in rows],
        },
        schema_overrides={"action": pl.Int64, "position": pl.Int64, "reward": pl.Float64},
    )
    rounds = align(read_logs(logs), read_policy(policy))
    assert rounds.units == len(set(round_of))  # a round's rows are resampled together
    logged = [(a, k, r, p, round_of[i]) for i, (a, k, r, p) in enumerate(rows)]
    expected = brute_force(
        logged,
        range(actions),
        lambda i, a, k: float(probabilities[i, k][a]) if (i, k) in probabilities else 0.0,
    )
    _check(rounds, expected)


@settings(max_examples=80, deadline=None)
@given(bandits(), st.data())
def test_a_bootstrap_replicate_is_the_estimate_on_the_resampled_rounds(
    bandit: dict[str, Any], data: st.DataObject
) -> None:
    """Replicates use resampling counts on per-round sums: the same as estimating on the duplicated rounds
    (the reward model refitted on them)."""
    rows, table = bandit["rows"], bandit["table"]
    counts = np.array(data.draw(st.lists(st.integers(0, 3), min_size=len(rows), max_size=len(rows))))
    if counts.sum() == 0:
        counts[0] = 1
    policy = pl.DataFrame(
        {"action": range(bandit["actions"]), **{f"pos{k}": table[:, k] for k in range(bandit["positions"])}}
    )

    def frame(rs: list[tuple[int, int, float, float]]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "action": [r[0] for r in rs],
                "position": [r[1] for r in rs],
                "reward": [r[2] for r in rs],
                "propensity": [r[3] for r in rs],
            },
            schema={"action": pl.Int64, "position": pl.Int64, "reward": pl.Float64, "propensity": pl.Float64},
        )

    rounds = align(read_logs(frame(rows)), read_policy(policy), position_base=0)
    totals = counts.astype(float)[None, :] @ unit_matrix(rounds).toarray()
    replicate = estimate(Sums.from_totals(totals, rounds))
    duplicated = [r for r, c in zip(rows, counts, strict=True) for _ in range(c)]
    logged = [(a, k, r, p, i) for i, (a, k, r, p) in enumerate(duplicated)]
    expected = brute_force(logged, range(bandit["actions"]), lambda _i, a, k: float(table[a, k]))
    for name in ("dm", "ips", "snips", "dr"):
        _close(float(replicate[name][0]), expected[name])
