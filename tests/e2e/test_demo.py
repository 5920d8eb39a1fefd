from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fourloops.cli",
            "demo",
            "--out",
            str(out),
            "--days",
            "200",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads(result.stdout)["days"] == 200
    ing = summary["loops"]["ingestion"]
    totals = ing["totals"]
    assert totals["rows"] == totals["valid"] + totals["quarantined"] > 10_000
    # The real data's 1,048 mph wind reading (February) is quarantined.
    feb = [d for d in ing["deliveries"] if d["file"] == "2013-02.parquet"][0]
    assert any(f["column"] == "wind_speed" and f["rule"] == "max" for f in feb["failures"])
    # The injected null -> "" change in June is caught as schema drift.
    june = [d for d in ing["deliveries"] if d["injected_fault"]][0]
    assert any("wind_gust" in d["message"] for d in june["drift"])
    ts = summary["loops"]["training_set"]
    assert ts["rows"] > 100_000 and 0.1 < ts["delay_rate"] < 0.4
    assert [f["feature"] for f in ts["leakage"]] == ["arr_delay"]
    online = summary["loops"]["online"]
    assert all(r["status"]["weather"] == "ok" for r in online["reads_at_as_of"])
    assert all(r["status"]["weather"] == "expired" for r in online["reads_6h_later"])
    ad = summary["loops"]["adaptation"]
    assert [r["version"] for r in ad["runs"]] == [1, 2]
    first = ad["runs"][0]
    assert first["test"]["roc_auc"] > first["baseline"]["roc_auc"] + 0.1
    assert ad["runs"][1]["champion_version"] == (1 if "v1 promoted to champion" in ad["decisions"] else None)
    assert ad["aliases"]["champion"] == ad["journal"][-1]["to_version"]
    assert any("refused" in d or "promoted" in d for d in ad["decisions"])
    if "v1 promoted to champion" in ad["decisions"]:
        # v2 was promoted (on its merits or by an audited override), then rolled back to v1.
        assert ad["aliases"] == {"champion": 1}
        assert [e["action"] for e in ad["journal"]] == ["promote", "promote", "rollback"]
    assert ad["artifacts_verified"] == ad["artifacts"] == 2
    inf = summary["loops"]["inference"]
    assert inf["requests"] == inf["statuses"]["200"] + inf["statuses"]["422"]
    assert set(inf["rejections"]) <= {"hour:max", "carrier:missing"} and inf["rejections"]
    assert inf["events_logged"] == inf["statuses"]["200"]  # every acknowledged prediction is logged
    assert inf["labels"]["inserted"] > 0 and inf["labels_resent"]["inserted"] == 0
    # Labels of rejected requests (never logged) and one made-up id are counted as unknown.
    assert inf["labels"]["inserted"] + inf["labels"]["unknown"] == inf["labels_sent"]
    assert 1 <= inf["labels"]["unknown"] <= inf["statuses"]["422"] + 1
    assert inf["training_serving_parity"]["mismatches"] == 0
    compared = inf["training_serving_parity"]["compared"]
    assert compared == inf["events_logged"]
    assert f"{compared:,} of {compared:,} served predictions equal offline" in " ".join(summary["highlights"])
    html = (out / "report.html").read_text()
    assert "Training/serving parity" in html
    assert "Adaptation: training, gates, registry" in html
    assert html.startswith("<!doctype html>") and "Point-in-time training set" in html
