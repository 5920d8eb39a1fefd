"""Labels are checked against the task of the model that logged their prediction.

The rule itself is :func:`fourloops.ingestion.labels.label_problem`; here it is
checked as a table, then through ``POST /v1/labels`` and ``Project.labels``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from starlette.testclient import TestClient

from fourloops.definitions import Task
from fourloops.ingestion.labels import label_problem
from fourloops.project import Project
from fourloops.server import build_app
from trips import T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23)
ROW = {"station": "a", "load": 0.5}

FITS = {
    Task.BINARY: [0, 1, True, False, 0.0, 1.0],
    Task.REGRESSION: [0, -3, 12.5, 1e300],
    Task.MULTICLASS: [0, 7, 3.0, "cat", "0"],
}
MISFITS = {
    Task.BINARY: ["yes", "1", 2, -1, 0.5, None, [1]],
    Task.REGRESSION: [True, "3.5", float("nan"), float("inf"), None],
    Task.MULTICLASS: [True, 2.5, "", None, {"a": 1}],
}


@pytest.mark.parametrize(("task", "value"), [(t, v) for t, vs in FITS.items() for v in vs])
def test_values_that_fit_a_task(task: Task, value: object) -> None:
    assert label_problem(task, value) is None


@pytest.mark.parametrize(("task", "value"), [(t, v) for t, vs in MISFITS.items() for v in vs])
def test_values_that_do_not_fit_a_task_are_named(task: Task, value: object) -> None:
    problem = label_problem(task, value)
    assert problem is not None and task.value in problem
    assert repr(value).strip("'") in problem or "null" in problem or "boolean" in problem


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("labels") / "p")


@pytest.fixture(scope="module")
def client(served: Path) -> Iterator[tuple[TestClient, Project]]:
    project = Project.load(served, env={}, clock=lambda: NOW)
    with TestClient(build_app(project), raise_server_exceptions=False) as c:
        for i in range(3):
            answer = c.post("/v1/models/late/predict", json={"inputs": ROW, "request_id": f"lt-{i}"})
            assert answer.status_code == 200, answer.text
        yield c, project
    project.close()


def test_a_label_that_does_not_fit_the_binary_model_is_refused_and_nothing_is_recorded(
    client: tuple[TestClient, Any],
) -> None:
    c, project = client
    body = {"labels": [{"request_id": "lt-0", "value": 1}, {"request_id": "lt-1", "value": "yes"}]}
    refused = c.post("/v1/labels", json=body)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["type"] == "invalid_label"
    assert "labels[1].value" in error["message"] and "'lt-1'" in error["message"]
    assert "'late'" in error["message"] and "the string 'yes'" in error["message"]
    labelled = project.events(model="late").to_pylist()
    assert all(e["label"] is None for e in labelled if e["request_id"] in ("lt-0", "lt-1"))
    fits = c.post("/v1/labels", json={"labels": [{"request_id": "lt-0", "value": True}]})
    assert fits.json() == {"inserted": 1, "duplicates": 0, "unknown": 0}


def test_a_label_for_an_unknown_request_cannot_be_checked_and_is_kept(client: tuple[TestClient, Any]) -> None:
    c, _ = client
    answer = c.post("/v1/labels", json={"request_id": "lt-never-logged", "value": "yes"})
    assert answer.json() == {"inserted": 0, "duplicates": 0, "unknown": 1}


def test_project_labels_rejects_misfits_by_name_and_records_the_rest(
    client: tuple[TestClient, Any], tmp_path: Path
) -> None:
    _, project = client
    path = tmp_path / "labels.csv"
    pl.DataFrame({"request_id": ["lt-2", "lt-1"], "label": ["1", "maybe"]}).write_csv(path)
    report = project.labels(path)
    assert (report.inserted, report.rejected) == (0, 2)  # a CSV column with "maybe" is text: "1" is too
    pl.DataFrame({"request_id": ["lt-2", "lt-1"], "label": [1, 3]}).write_csv(path)
    report = project.labels(path)
    assert (report.inserted, report.rejected) == (1, 1)
    assert report.rejections == ("request 'lt-1' (model 'late'): a binary model's label is 0, 1, true or "
                                 "false, got the number 3",)  # fmt: skip
