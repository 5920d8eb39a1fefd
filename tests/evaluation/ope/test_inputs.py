"""Bad logs and bad policies: an error of the project's tree, in one line naming the column, row and rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import fourloops as fl
from fourloops.errors import ConfigError, FourloopsError, SchemaError, SourceError

POLICY = pl.DataFrame({"item_id": [0, 1, 2], "pos0": [0.2, 0.3, 0.5], "pos1": [0.6, 0.2, 0.2]})


def _logs(**changes: Any) -> pl.DataFrame:
    base: dict[str, Any] = {
        "action": [0, 1, 2, 1],
        "position": [1, 2, 1, 2],
        "reward": [1.0, 0.0, 0.0, 1.0],
        "propensity": [0.5, 0.25, 0.25, 0.5],
    }
    base.update(changes)
    return pl.DataFrame(base)


def _error(kind: type[FourloopsError], logs: Any, policy: Any = POLICY, **kwargs: Any) -> str:
    with pytest.raises(kind) as caught:
        fl.ope(logs, policy, **{"replicates": 10, **kwargs})
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"propensity": [0.5, 0.0, 0.25, 0.5]},
            "the propensity column 'propensity' must be in (0, 1]: row 1 has 0.0",
        ),
        ({"propensity": [0.5, 0.25, 1.5, 0.5]}, "must be in (0, 1]: row 2 has 1.5"),
        ({"propensity": [0.5, 0.25, -0.1, 0.5]}, "must be in (0, 1]: row 2 has -0.1"),
        (
            {"propensity": [0.5, float("nan"), 0.25, 0.5]},
            "the propensity column 'propensity' is null, NaN or infinite at row 1",
        ),
        (
            {"propensity": [0.5, 0.25, None, 0.5]},
            "the propensity column 'propensity' is null, NaN or infinite at row 2",
        ),
        (
            {"reward": [1.0, 0.0, float("nan"), 1.0]},
            "the reward column 'reward' is null, NaN or infinite at row 2",
        ),
        ({"reward": [None, 0.0, 1.0, 1.0]}, "the reward column 'reward' is null, NaN or infinite at row 0"),
        ({"reward": ["yes", "no", "no", "yes"]}, "the reward column 'reward' must hold numbers, not String"),
        (
            {"position": [1.0, 2.0, 1.5, 2.0]},
            "the position column 'position' must hold whole numbers: row 2 has 1.5",
        ),
        ({"action": [0, None, 2, 1]}, "the 'action' column is null, NaN or infinite at row 1"),
        ({"action": [0.0, 1.0, float("inf"), 1.0]}, "the 'action' column is null, NaN or infinite at row 2"),
        ({"action": [0.0, float("nan"), 2.0, 1.0]}, "the 'action' column is null, NaN or infinite at row 1"),
    ],
)
def test_bad_log_values_are_named(changes: dict[str, Any], expected: str) -> None:
    assert expected in _error(SchemaError, _logs(**changes))


def test_a_missing_column_is_named_with_the_columns_there_are() -> None:
    message = _error(SchemaError, _logs(), reward="click")
    assert message == (
        "the logs: no reward column 'click' (the columns are: action, position, reward, propensity)"
    )
    assert "no propensity column 'p'" in _error(SchemaError, _logs(), propensity="p")
    assert "no position column 'slot'" in _error(SchemaError, _logs(), position="slot")
    assert "no round id column 'session'" in _error(SchemaError, _logs(), round_id="session")


def test_empty_logs() -> None:
    assert _error(SchemaError, _logs().head(0)) == "the logs: no rows (nothing to evaluate)"


def test_a_logged_action_absent_from_the_policy() -> None:
    message = _error(SchemaError, _logs(action=[0, 1, 7, 1]))
    assert message.startswith(
        "the logs' action '7' (first at row 2) is not in the policy (its actions: 0, 1, 2)"
    )


def test_a_logged_position_outside_the_policy() -> None:
    message = _error(SchemaError, _logs(position=[1, 2, 3, 2]))
    assert message == (
        "the logs' position 3 at row 2 has no column in the policy (positions read as 1-based; "
        "the policy has 2: pos0, pos1)"
    )
    assert "has 3 position columns" not in message
    no_positions = _logs().drop("position")
    assert "has 2 position columns (pos0, pos1) but the logs have no position column" in _error(
        SchemaError, no_positions
    )


def test_positions_are_zero_based_when_the_logs_have_a_zero() -> None:
    zero = fl.ope(_logs(position=[0, 1, 0, 1]), POLICY, replicates=10)
    one = fl.ope(_logs(position=[1, 2, 1, 2]), POLICY, replicates=10)
    assert zero.estimates["ips"].value == one.estimates["ips"].value
    assert zero.settings["positions"] == [0, 1] and one.settings["positions"] == [1, 2]
    forced = fl.ope(_logs(position=[1, 1, 1, 1]), POLICY, replicates=10, position_base=0)
    assert forced.settings["positions"] == [0, 1]
    assert "position_base must be 0 or 1" in _error(ConfigError, _logs(), position_base=2)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            POLICY.with_columns(pos1=pl.Series([0.6, 0.2, 0.3])),
            "the policy: the probabilities of column 'pos1' sum to 1.1, not 1",
        ),
        (
            POLICY.with_columns(pos0=pl.Series([1.2, -0.2, 0.0])),
            "column 'pos0' must hold probabilities in [0, 1]: row 0",
        ),
        (
            POLICY.with_columns(pos0=pl.Series([0.5, None, 0.5])),
            "the policy: column 'pos0' is null or NaN at row 1",
        ),
        (
            POLICY.with_columns(pos0=pl.Series([0.5, float("nan"), 0.5])),
            "column 'pos0' is null or NaN at row 1",
        ),
        (
            pl.concat([POLICY, POLICY.head(1)]),
            "the policy: action '0' has more than one row (row 0); give one row per action",
        ),
        (POLICY.select("item_id"), "the policy: no probability column beside the action column 'item_id'"),
        (POLICY.head(0), "the policy: no rows"),
        (
            POLICY.with_columns(item_id=pl.Series([0.0, 1.0, float("inf")])),
            "the policy: the 'item_id' column is null, NaN or infinite at row 2",
        ),
    ],
)
def test_bad_policies_are_named(policy: pl.DataFrame, expected: str) -> None:
    assert expected in _error(SchemaError, _logs(), policy)


def test_a_per_round_policy_must_cover_every_logged_round_and_position() -> None:
    logs = _logs(round_id=["a", "b", "c", "d"], position=[0, 0, 0, 0])
    policy = pl.DataFrame(
        {
            "round_id": ["a", "a", "b", "c"],
            "action": [0, 1, 1, 2],
            "position": [0, 0, 0, 0],
            "probability": [0.5, 0.5, 1.0, 1.0],
        }
    )
    message = _error(SchemaError, logs, policy)
    assert (
        message
        == "round 'd' at position 0 (row 3 of the logs) has no probabilities in the policy (1 rows lack them)"
    )
    unbalanced = policy.with_columns(probability=pl.Series([0.5, 0.4, 1.0, 1.0]))
    assert "the probabilities of round 'a' at position 0 sum to 0.9, not 1" in _error(
        SchemaError, logs.head(3), unbalanced
    )
    no_round = policy.drop("round_id")
    assert "no round id column 'round_id'" in _error(SchemaError, logs, no_round)


def test_a_per_round_policy_without_round_ids_in_the_logs_uses_row_numbers() -> None:
    logs = _logs(position=[0, 0, 0, 0])
    policy = pl.DataFrame(
        {"round_id": [0, 1, 2, 3], "action": [0, 1, 2, 1], "position": 0, "probability": 1.0}
    )
    result = fl.ope(logs, policy, replicates=10, min_ess=0)
    assert result.estimates["ips"].value == pytest.approx(np.mean([1 / 0.5, 0, 0, 1 / 0.5]))
    assert "round ids are row numbers (from 0)" in " ".join(result.notes)


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    assert "file" in _error(SourceError, tmp_path / "missing.csv")
    odd = tmp_path / "logs.json"
    odd.write_text("{}")
    assert "is neither CSV" in _error(SourceError, odd)
    broken = tmp_path / "logs.parquet"
    broken.write_text("not parquet")
    assert "cannot read" in _error(SourceError, broken)
    assert "give a Polars or pandas frame" in _error(ConfigError, {"action": [1]})


def test_settings_out_of_range() -> None:
    assert "confidence must be between 0 and 1" in _error(ConfigError, _logs(), confidence=1.5)
    assert "replicates must be at least 1" in _error(ConfigError, _logs(), replicates=0)
    assert "min_ess must be at least 0" in _error(ConfigError, _logs(), min_ess=-1)


def test_csv_and_parquet_paths_and_float_action_ids(tmp_path: Path) -> None:
    logs = _logs().with_columns(pl.col("action").cast(pl.Float64))  # 0.0 in the logs is 0 in the policy
    logs.write_csv(tmp_path / "logs.csv")
    POLICY.write_parquet(tmp_path / "policy.parquet")
    from_files = fl.ope(tmp_path / "logs.csv", tmp_path / "policy.parquet", replicates=10)
    from_frames = fl.ope(_logs(), POLICY, replicates=10)
    assert from_files.to_dict()["estimates"] == from_frames.to_dict()["estimates"]
