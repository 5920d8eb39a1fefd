"""``fourloops events`` and ``fourloops labels``: the event log out, delayed ground truth in.

Predictions are made through the real app (so the log holds what a server
writes); the commands run through the CLI and are checked against the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from fourloops.cli import app as cli
from fourloops.project import Project
from fourloops.server import build_app
from trips import T0, prepare_project

NOW = T0 + timedelta(days=39, hours=23)
runner = CliRunner()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose log holds predictions ev-0 .. ev-5, all at NOW."""
    root = tmp_path_factory.mktemp("evcli") / "p"
    prepare_project(root, materialize=False)
    with Project.load(root, env={}, clock=lambda: NOW) as project:
        with TestClient(build_app(project)) as client:
            for i in range(6):
                body = {
                    "inputs": {"station": "abc"[i % 3], "load": 0.1 * i, "rain": 1.0},
                    "request_id": f"ev-{i}",
                }
                assert client.post("/v1/models/late/predict", json=body).status_code == 200
    return root


@pytest.fixture
def project_dir(logged: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy, so that labels recorded by one test do not leak into another."""
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(logged, copy)
    yield copy


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_events_export_to_parquet_and_json_with_filters(project_dir: Path, tmp_path: Path) -> None:
    p = str(project_dir)
    out = tmp_path / "events.parquet"
    code, stdout, stderr = run("events", "-p", p, "--model", "late", "--out", str(out))
    assert code == 0, stderr
    frame = pl.read_parquet(out)
    assert sorted(frame["request_id"]) == [f"ev-{i}" for i in range(6)]
    assert set(frame["model"]) == {"late"} and "6 events" in stdout.replace(",", "")
    code, stdout, _ = run("events", "-p", p, "--json")
    rows = json.loads(stdout)
    assert len(rows) == 6 and {"request_id", "version", "route", "features", "output", "label"} <= set(
        rows[0]
    )
    # --since filters by the prediction time; the other model name matches nothing.
    after = (NOW + timedelta(seconds=1)).isoformat()
    assert json.loads(run("events", "-p", p, "--json", "--since", after)[1]) == []
    assert json.loads(run("events", "-p", p, "--json", "--model", "nope")[1]) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO-8601 time"),
        (["--since", "2013-02-09T00:00:00"], "has no time zone"),
        (["--out", "/nonexistent-dir/events.parquet"], "cannot write /nonexistent-dir/events.parquet"),
    ],
)
def test_events_bad_input_is_one_line(project_dir: Path, args: list[str], message: str) -> None:
    code, _, stderr = run("events", "-p", str(project_dir), *args)
    assert code != 0 and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_labels_from_csv_are_joined_idempotent_and_counted(project_dir: Path, tmp_path: Path) -> None:
    p = str(project_dir)
    labels = tmp_path / "labels.csv"
    pl.DataFrame({"request_id": ["ev-0", "ev-1", "ev-1", "nobody"], "late": [1, 0, 1, 1]}).write_csv(labels)
    code, stdout, stderr = run("labels", str(labels), "-p", p, "--column", "late", "--json")
    assert code == 0, stderr
    assert json.loads(stdout) == {"inserted": 2, "duplicates": 1, "unknown": 1, "rejected": 0}
    again = json.loads(run("labels", str(labels), "-p", p, "--column", "late", "--json")[1])
    assert again["inserted"] == 0  # idempotent: the first label per request id wins
    with Project.load(project_dir, env={}) as project:
        store = project.open_event_store()
        by_id = {e["request_id"]: e["label"] for e in store.scan().to_pylist()}
        store.close()
    assert (by_id["ev-0"], by_id["ev-1"], by_id["ev-2"]) == ("1", "0", None)


def test_labels_rows_without_id_or_value_are_rejected_and_counted(project_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.parquet"
    pl.DataFrame({"request_id": ["ev-3", None, "ev-4"], "label": [1, 1, None]}).write_parquet(labels)
    code, stdout, stderr = run("labels", str(labels), "-p", str(project_dir), "--json")
    assert code == 0, stderr
    assert json.loads(stdout) == {"inserted": 1, "duplicates": 0, "unknown": 0, "rejected": 2}
    code, stdout, _ = run("labels", str(labels), "-p", str(project_dir))
    assert "2 rows rejected" in stdout and "row 2: no request_id" in stdout and "row 3: no label" in stdout


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "not found"),
        (b"request_id,label\nev-0,1\n", ["--column", "outcome"], "no column 'outcome'"),
        (b"PAR1\x00\x01garbage", [], "cannot read"),
    ],
)
def test_labels_bad_files_are_one_line_errors(
    project_dir: Path, tmp_path: Path, content: bytes | None, args: list[str], message: str
) -> None:
    path = tmp_path / ("labels.parquet" if content and content.startswith(b"PAR1") else "labels.csv")
    if content is not None:
        path.write_bytes(content)
    code, _, stderr = run("labels", str(path), "-p", str(project_dir), *args)
    assert code != 0 and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
