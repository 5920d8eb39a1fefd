"""``fourloops ope --logs FILE --policy FILE``: JSON and human output, one-line errors, help."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fourloops.cli import app as cli

DATA = Path(__file__).resolve().parents[2] / "data" / "obd"
OBD = [
    "ope",
    "--logs",
    str(DATA / "random_all.parquet"),
    "--policy",
    str(DATA / "obd_bts_action_dist.csv"),
    "--action",
    "item_id",
    "--reward",
    "click",
    "--propensity",
    "propensity_score",
    "--replicates",
    "200",
]


def test_json_output_is_the_design_contract() -> None:
    result = CliRunner().invoke(cli, [*OBD, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["rounds"] == 10_000 and d["logged_value"] == 0.0038
    assert abs(d["estimates"]["ips"]["value"] - 0.0045528800) < 1e-9
    assert abs(d["estimates"]["snips"]["value"] - 0.0047758331) < 1e-9
    assert d["verdict"] == "ok" and d["reason"] is None
    assert set(d["diagnostics"]) >= {"ess", "max_weight_share", "unsupported_mass"}
    assert d["settings"]["replicates"] == 200


def test_human_output_has_the_estimates_diagnostics_and_verdict() -> None:
    result = CliRunner().invoke(cli, OBD)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "10,000 rounds; logged value (mean reward in the logs) 0.0038" in text
    for name in ("DM", "IPS", "SNIPS", "DR"):
        assert name in text
    assert "0.00455288" in text and "95% interval" in text
    assert "effective sample size" in text and "verdict: ok" in text


def test_an_inconclusive_verdict_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [*OBD, "--min-ess", "5000"])
    assert result.exit_code == 0, result.output
    assert "verdict: inconclusive: effective sample size" in result.stdout
    assert "shown for inspection" in result.stdout


def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "logs.csv"
    bad.write_text("item_id,position,click,propensity_score\n1,1,0,0.0125\n2,1,0,0\n")
    args = [
        "ope",
        "--logs",
        str(bad),
        "--policy",
        str(DATA / "obd_bts_action_dist.csv"),
        "--action",
        "item_id",
    ]
    result = CliRunner().invoke(cli, [*args, "--reward", "click", "--propensity", "propensity_score"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [
        "error: the logs: the propensity column 'propensity_score' must be in (0, 1]: row 1 has 0.0"
    ]
    missing = CliRunner().invoke(cli, args)
    assert missing.exit_code == 2
    assert missing.output.strip() == (
        "error: the logs: no reward column 'reward' "
        "(the columns are: item_id, position, click, propensity_score)"
    )
    no_policy = CliRunner().invoke(cli, ["ope", "--logs", str(bad)])
    assert no_policy.exit_code == 2 and "give the target policy" in no_policy.output
    both = CliRunner().invoke(cli, [*args, "--model", "late"])
    assert both.exit_code == 2 and "give --logs or --model, not both" in both.output
    neither = CliRunner().invoke(cli, ["ope", "--policy", str(bad)])
    assert neither.exit_code == 2 and "give the logged rounds (--logs FILE) or a model" in neither.output


def test_help_explains_the_command() -> None:
    result = CliRunner().invoke(cli, ["ope", "--help"])
    assert result.exit_code == 0
    for words in ("Off-policy evaluation", "--logs", "--policy", "--propensity", "--model", "inconclusive"):
        assert words in result.output
