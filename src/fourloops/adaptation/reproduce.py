"""Comparing a re-run with a registered version: same data, same metrics, same bytes?"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["compare_runs"]

#: Metrics are "the same" when they agree to this absolute tolerance.
TOLERANCE = 1e-9


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def compare_runs(recorded: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """Compare the lineage and test metrics of a recorded version with a re-run.

    Both arguments are ``{"lineage": ..., "metrics": ...}``. Returns which
    ingredients match and, for metrics, every difference.
    """
    old, new = (
        _numbers(recorded["metrics"].get("test", {})),
        _numbers(rerun["metrics"].get("test", {})),
    )
    diffs = {
        k: {"recorded": old[k], "rerun": new.get(k)}
        for k in old
        if k not in new
        or not ((math.isnan(old[k]) and math.isnan(new[k])) or abs(old[k] - new[k]) <= TOLERANCE)
    }
    old_lineage, new_lineage = recorded["lineage"], rerun["lineage"]
    data_same = old_lineage.get("data", {}).get("fingerprint") == new_lineage.get("data", {}).get(
        "fingerprint"
    )
    bytes_same = old_lineage.get("artifact_sha256") == new_lineage.get("artifact_sha256")
    code_same = old_lineage.get("code", {}).get("commit") == new_lineage.get("code", {}).get("commit")
    old_pkgs = old_lineage.get("environment", {}).get("packages", {})
    new_pkgs = new_lineage.get("environment", {}).get("packages", {})
    env_changes = {
        name: {"recorded": old_pkgs.get(name), "now": new_pkgs.get(name)}
        for name in sorted(set(old_pkgs) | set(new_pkgs))
        if old_pkgs.get(name) != new_pkgs.get(name)
    }
    return {
        "data_match": data_same,
        "metrics_match": not diffs,
        "model_bytes_match": bytes_same,
        "code_match": code_same,
        "metric_differences": diffs,
        "environment_changes": env_changes,
        "reproduced": data_same and not diffs,
    }
