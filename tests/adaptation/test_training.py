"""Training runs end to end on a small synthetic project (real LightGBM, real registry)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from fourloops.cli import app
from fourloops.errors import ArtifactIntegrityError, PromotionBlocked, RegistryError
from fourloops.project import Project
from trips import write_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    write_project(tmp_path / "p")
    with Project.load(tmp_path / "p", env={}) as proj:
        yield proj  # type: ignore[misc]


def test_train_registers_an_evaluated_version_with_lineage(project: Project) -> None:
    result = project.train("late", seed=3)
    assert result.version == 1 and result.status == "ready"
    version = project.registry.get_version("late", 1)
    assert version.format == "lightgbm" and version.artifact["sha256"] == result.lineage["artifact_sha256"]
    lineage = version.lineage
    assert lineage["seed"] == 3 and lineage["definitions"]["model:late"] == project.model("late").version
    assert "contract:weather" in lineage["definitions"] and "contract:late.request" in lineage["definitions"]
    assert len(lineage["data"]["fingerprint"]) == 64 and lineage["data"]["rows"]["no_label"] > 0
    assert "lightgbm" in lineage["environment"]["packages"] and lineage["timings"]["fit_s"] > 0
    assert lineage["code"]["git"] is False  # the project folder is not a git repository
    metrics = version.metrics
    test = metrics["test"]
    assert 0.6 < test["roc_auc"] < 1.0
    assert metrics["baseline"]["roc_auc"] is None or metrics["baseline"]["roc_auc"] == 0.5
    assert metrics["calibration"]["ece"] is not None and metrics["latency_p99_ms"] > 0
    segments = {(s["column"], s["value"]) for s in metrics["segments"]}
    assert {("station", "a"), ("station", "b"), ("station", "c")} <= segments
    verdicts = {v.gate: v.to_dict() for v in version.gates.verdicts}
    assert verdicts["beats_baseline"]["passed"]
    assert verdicts["no_regression"]["message"].startswith("no champion")
    # The recorded AUC is what an independent computation on the stored model gives.
    split_start = datetime.fromisoformat(lineage["data"]["split"]["test_start"])
    predictor = project.load_model("late", 1)
    frame = project.dataset(
        pl.read_parquet(project.root / "data/trips.parquet").filter(
            (pl.col("at") >= split_start)
            & pl.col("minutes_late").is_not_null()
            & (pl.col("arrived") <= datetime.fromisoformat(lineage["cutoff"]))
        ),
        features=["weather:rain"],
        timestamp="at",
    ).to_polars()
    assert predictor.encoder is not None  # the artifact carries the encoder it was trained through
    X = predictor.encoder.frame(frame)
    auc = roc_auc_score((frame["minutes_late"] > 10).to_numpy(), predictor.predict(X))
    assert abs(auc - test["roc_auc"]) < 1e-9


def test_champion_comparison_promotion_and_rollback(project: Project) -> None:
    project.train("late", seed=1)
    project.promote("late", 1, reason="first")
    second = project.train("late", seed=2, params={"n_estimators": 5})
    verdicts = {v["gate"]: v for v in second.gates}
    numbers = verdicts["no_regression"]["numbers"]
    assert numbers["champion_version"] == 1
    assert numbers["ci_low"] <= numbers["diff"] <= numbers["ci_high"]
    assert (
        second.metrics["champion"]["roc_auc"]
        == project.registry.get_version("late", 1).metrics["test"]["roc_auc"]
    )
    if not second.passed:
        with pytest.raises(PromotionBlocked):
            project.promote("late", 2)
    project.promote("late", 2, force=True, reason="test")
    assert project.registry.aliases("late") == {"champion": 2}
    change = project.rollback("late", reason="bad canary")
    assert (change.previous, change.current) == (2, 1)
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        project.rollback("late")
    actions = [e["action"] for e in project.metadata.audit_entries("model:late")]
    assert "alias.rollback" in actions and "alias.promote" in actions


def test_reproduce_gives_the_same_data_metrics_and_bytes(project: Project) -> None:
    project.train("late", seed=5)
    report = project.reproduce("late", 1)
    assert report["reproduced"] and report["data_match"] and report["metrics_match"]
    assert report["model_bytes_match"]
    assert project.registry.versions("late")[-1].version == 1  # reproducing registers nothing


def test_tampered_artifact_is_refused(project: Project) -> None:
    project.train("late")
    version = project.registry.get_version("late", 1)
    path = Path(version.artifact["uri"].removeprefix("file://"))
    if not path.is_absolute():
        path = project.config.path(project.config.storage.artifacts) / path
    candidates = (
        [path]
        if path.exists()
        else list(project.config.path(".fourloops/artifacts").rglob(version.artifact["sha256"] + "*"))
    )
    target = candidates[0]
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    [result] = project.verify("late")
    assert not result["ok"] and version.artifact["sha256"] in result["error"]
    with pytest.raises(ArtifactIntegrityError):
        project.load_model("late", 1)


def test_a_failed_run_leaves_a_failed_record(project: Project) -> None:
    # A parameter the estimator takes but the library refuses once the run has started.
    with pytest.raises(Exception, match="num_leaves"):
        project.train("late", params={"num_leaves": 1})
    [failed] = project.registry.versions("late")
    assert failed.status.value == "failed" and "num_leaves" in failed.failure_reason
    assert failed.artifact is None
    with pytest.raises(RegistryError):
        project.promote("late", failed.version, force=True)


def test_cli_train_models_verify_promote_rollback(project: Project) -> None:
    runner = CliRunner()
    p = str(project.root)
    result = runner.invoke(app, ["train", "late", "--project", p, "--json", "--param", "n_estimators=10"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["version"] == 1
    result = runner.invoke(app, ["models", "late", "--project", p, "--json"])
    assert json.loads(result.stdout)["versions"][0]["gates"]["verdicts"]
    assert runner.invoke(app, ["verify", "--project", p]).exit_code == 0
    result = runner.invoke(app, ["promote", "late", "1", "--project", p, "--force", "--reason", "ok"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["rollback", "late", "--project", p])
    assert result.exit_code != 0 and "nothing to roll back to" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(app, ["train", "late", "--project", p, "--reproduce", "1", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["reproduced"] is True


def test_import_mlflow_folder(project: Project, tmp_path: Path) -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, (X[:, 0] > 0).astype(int)), 5)
    folder = tmp_path / "mlflow-model"
    folder.mkdir()
    booster.save_model(str(folder / "model.lgb"))
    (folder / "MLmodel").write_text(
        "artifact_path: model\nflavors:\n  lightgbm:\n    data: model.lgb\n    lgb_version: 4.5.0\n"
        "    model_class: lightgbm.basic.Booster\n  python_function:\n    data: model.lgb\n"
        "    loader_module: mlflow.lightgbm\nmlflow_version: 2.16.0\nrun_id: abc123\n"
        "utc_time_created: '2024-09-01 10:00:00.000000'\n"
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "import-mlflow",
            str(folder),
            "--name",
            "imported",
            "--project",
            str(project.root),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    version = project.registry.get_version("imported", 1)
    assert version.lineage["run_id"] == "abc123"
    predictor = project.load_model("imported", 1)
    assert np.allclose(predictor.predict(X[:10]), booster.predict(X[:10]), rtol=1e-12)
    with pytest.raises(PromotionBlocked):
        project.promote("imported", 1)
