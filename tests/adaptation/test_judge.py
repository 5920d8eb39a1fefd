"""Judging a version that was not trained here (an MLflow import) or judging one again.

The oracle for the recorded metrics is scikit-learn on the same test rows, scored by the
booster itself; the served predictions of an imported version are compared with the
booster on the rows encoded as they were judged.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from fourloops.adaptation.training import prepare_data
from fourloops.cli import app
from fourloops.errors import PromotionBlocked, RegistryError
from fourloops.project import Project
from trips import write_project

MLMODEL = (
    "artifact_path: model\nflavors:\n  lightgbm:\n    data: model.lgb\n    lgb_version: 4.5.0\n"
    "    model_class: lightgbm.basic.Booster\n  python_function:\n    data: model.lgb\n"
    "    loader_module: mlflow.lightgbm\nmlflow_version: 2.16.0\nrun_id: r-{tag}\n"
    "utc_time_created: '2024-09-01 10:00:00.000000'\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    write_project(tmp_path / "p")
    with Project.load(tmp_path / "p", env={}) as proj:
        yield proj  # type: ignore[misc]


def _data(project: Project):  # type: ignore[no-untyped-def]
    return prepare_data(
        project.model("late"), root=project.root, views=project.feature_views, join=project._join,
        cutoff=None, now=project.clock(),
    )  # fmt: skip


def _mlflow_folder(tmp_path: Path, booster: lgb.Booster, tag: str) -> Path:
    folder = tmp_path / f"mlflow-{tag}"
    folder.mkdir()
    booster.save_model(str(folder / "model.lgb"))
    (folder / "MLmodel").write_text(MLMODEL.format(tag=tag))
    return folder


def _booster(X, y, columns: list[str]) -> lgb.Booster:  # type: ignore[no-untyped-def]
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "num_leaves": 7, "seed": 1}
    return lgb.train(params, lgb.Dataset(X[columns], y), num_boost_round=40)


def test_an_imported_model_of_a_defined_model_is_judged_like_a_trained_one(
    project: Project, tmp_path: Path
) -> None:
    data = _data(project)
    columns = list(reversed(data.encoder.names))  # trained elsewhere, columns in another order
    booster = _booster(data.X_train, data.y_train, columns)
    version = project.import_mlflow(_mlflow_folder(tmp_path, booster, "a"), name="late")
    assert version.version == 1 and version.lineage["run_id"] == "r-a"
    [judgement] = version.lineage["judgements"]
    assert judgement["data"]["fingerprint"] == data.lineage()["fingerprint"]
    expected = roc_auc_score(data.y_test, booster.predict(data.X_test[columns]))
    assert version.metrics["test"]["roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert version.metrics["baseline"]["roc_auc"] == 0.5
    verdicts = {v.gate: v for v in version.gates.verdicts}
    assert "imported" not in verdicts and verdicts["beats_baseline"].passed
    assert set(verdicts) == {g.kind for g in project.model("late").gates}
    if version.gates.passed:
        project.promote("late", 1, reason="judged import")  # no --force needed
    else:
        with pytest.raises(PromotionBlocked):
            project.promote("late", 1)
    # Served through the encoder it was judged with: a raw request scores as its encoded row.
    predictor = project.load_model("late", 1)
    request = {"station": "c", "load": 0.7, "rain": 1.5}
    encoded = predictor.encoder.row(request)  # type: ignore[union-attr]
    row = dict(zip(predictor.encoder.names, encoded, strict=True))  # type: ignore[union-attr]
    direct = booster.predict(np.array([[row[c] for c in columns]]))[0]
    assert predictor.predict_one(request) == pytest.approx(direct, abs=1e-12)
    entries = [e for e in project.metadata.audit_entries("model:late") if e["action"] == "model.judge"]
    assert entries and entries[0]["details"]["before"] == {"passed": False, "failed": ["imported"]}


def test_a_version_that_takes_other_inputs_is_imported_but_named_unjudgeable(
    project: Project, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, (X[:, 0] > 0).astype(int)), 5)
    with pytest.raises(RegistryError, match=r"imported 'late' v1, but it could not be judged: .*takes"):
        project.import_mlflow(_mlflow_folder(tmp_path, booster, "b"), name="late")
    assert project.registry.get_version("late", 1).gates.failed == ["imported"]
    with pytest.raises(RegistryError, match="defined as binary, not regression"):
        project.import_mlflow(_mlflow_folder(tmp_path, booster, "c"), name="late", task="regression")


def test_judge_again_gives_the_training_runs_numbers_and_is_audited(project: Project) -> None:
    trained = project.train("late", seed=2)
    result = CliRunner().invoke(app, ["judge", "late", "1", "--seed", "2", "-p", str(project.root), "--json"])
    assert result.exit_code in (0, 1), result.stderr
    judged = project.registry.get_version("late", 1)
    assert judged.metrics["test"] == trained.metrics["test"]  # same cutoff, same rows, same model
    assert judged.metrics["segments"] == trained.metrics["segments"]
    assert [v.to_dict() for v in judged.gates.verdicts] == trained.gates
    assert len(judged.lineage["judgements"]) == 1 and judged.lineage["seed"] == 2
    text = CliRunner().invoke(app, ["judge", "late", "1", "-p", str(project.root)])
    assert "late v1 judged; gates" in text.stdout and "beats_baseline" in text.stdout
    result = CliRunner().invoke(app, ["judge", "late", "7", "-p", str(project.root)])
    assert result.exit_code != 0 and "7" in result.stderr and len(result.stderr.strip().splitlines()) == 1
