"""The published reference: the Open Bandit Dataset sample with the Bernoulli Thompson Sampling policy."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import fourloops as fl

DATA = Path(__file__).resolve().parents[2] / "data" / "obd"
LOGS = DATA / "random_all.parquet"
POLICY = DATA / "obd_bts_action_dist.csv"
COLUMNS = {"action": "item_id", "reward": "click", "propensity": "propensity_score"}


def test_the_shipped_sample_is_the_obp_one() -> None:
    logs = pl.read_parquet(LOGS)
    assert logs.columns == ["item_id", "position", "click", "propensity_score"]
    assert logs.height == 10_000
    assert logs["propensity_score"].unique().to_list() == [0.0125]  # uniform over 80 items
    assert sorted(logs["position"].unique()) == [1, 2, 3]


def test_ips_and_snips_reproduce_the_published_numbers(tmp_path: Path) -> None:
    result = fl.ope(LOGS, POLICY, **COLUMNS, replicates=100)
    assert result.rounds == 10_000
    assert result.logged_value == pytest.approx(0.0038, abs=1e-12)
    assert result.estimates["ips"].value == pytest.approx(0.0045528800, abs=1e-9)
    assert result.estimates["snips"].value == pytest.approx(0.0047758331, abs=1e-9)
    # positions 1..3 are read as 1-based (pos0..pos2), and say so
    assert result.settings["positions"] == [1, 2, 3]
    assert any("1-based" in note for note in result.notes)
    # the same from frames and from a CSV of the logs
    csv = tmp_path / "logs.csv"
    pl.read_parquet(LOGS).write_csv(csv)
    again = fl.ope(pl.read_csv(csv).to_pandas(), pl.read_csv(POLICY), **COLUMNS, replicates=100)
    assert again.to_dict() == result.to_dict()


def test_the_reference_run_is_conclusive_with_full_support() -> None:
    result = fl.ope(LOGS, POLICY, **COLUMNS)
    d = result.to_dict()
    assert d["verdict"] == "ok" and d["reason"] is None
    assert d["diagnostics"]["unsupported_mass"] == 0.0  # every item was shown at every position
    assert 1000 < d["diagnostics"]["ess"] < 10_000
    for name in ("dm", "ips", "snips", "dr"):
        e = d["estimates"][name]
        assert e["low"] < e["value"] < e["high"]
    json.dumps(d, allow_nan=False)
