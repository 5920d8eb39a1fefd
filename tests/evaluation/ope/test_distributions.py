"""Logs that carry an action distribution are checked before anything is estimated; bad rows are refused."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import fourloops as fl
from fourloops.cli import app
from fourloops.errors import SchemaError

POLICY = pl.DataFrame({"action": ["a", "b"], "probability": [0.5, 0.5]})


def _logs(distributions: list[object], actions: list[str], propensity: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "action": actions,
            "reward": [1.0] * len(actions),
            "propensity": propensity,
            "distribution": [d if d is None or isinstance(d, str) else json.dumps(d) for d in distributions],
        }
    )


def test_well_formed_distributions_pass() -> None:
    logs = _logs(
        [{"a": 0.75, "b": 0.25}] * 150 + [{"b": 0.25, "a": 0.75}] * 150, ["a", "b"] * 150, [0.75, 0.25] * 150
    )
    assert fl.ope(logs, POLICY, replicates=50).rounds == 300
    top = pl.DataFrame(  # top-k with the rest of the mass in distribution_rest
        {"action": ["a"] * 200, "reward": [1.0] * 200, "propensity": [0.5] * 200,
         "distribution": ['{"a": 0.5}'] * 200, "distribution_rest": [0.5] * 200}
    )  # fmt: skip
    assert fl.ope(top, POLICY, replicates=50).rounds == 200


def test_rows_breaking_the_rules_are_named_counted_and_refused() -> None:
    logs = _logs(
        [
            {"a": 0.5, "b": 0.5},
            {"a": 0.7, "b": 0.2},
            {"a": 1.0, "b": 0.0},
            {"a": 0.5, "b": 0.5},
            None,
            "{bad",
        ],
        ["a", "a", "b", "a", "a", "b"],
        [0.5, 0.7, 0.5, 0.9, 0.5, 0.5],
    )
    with pytest.raises(SchemaError) as err:
        fl.ope(logs, POLICY)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("the logs: 5 of 6 rows have an action distribution that breaks its rules")
    assert "sums_to_one 1, chosen_action_positive 1, propensity_matches 1, probability_range 2" in message
    assert "row 1: sums_to_one (the probabilities sum to 0.9, not 1)" in message
    assert "row 2: chosen_action_positive (the chosen action 'b' has probability 0)" in message
    assert "row 3: propensity_matches" in message and "row 0" not in message


def test_the_command_refuses_bad_logs_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "logs.parquet"
    _logs([{"a": 0.6, "b": 0.6}] * 3, ["a", "b", "a"], [0.6, 0.6, 0.6]).write_parquet(path)
    POLICY.write_csv(tmp_path / "policy.csv")
    result = CliRunner().invoke(app, ["ope", "--logs", str(path), "--policy", str(tmp_path / "policy.csv")])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "3 of 3 rows" in lines[0] and "sums_to_one 3" in lines[0]
    renamed = tmp_path / "renamed.parquet"
    pl.read_parquet(path).rename({"distribution": "probs"}).write_parquet(renamed)
    named = CliRunner().invoke(
        app,
        ["ope", "--logs", str(renamed), "--policy", str(tmp_path / "policy.csv"), "--distribution", "probs"],
    )
    assert named.exit_code != 0 and "sums_to_one 3" in named.output
