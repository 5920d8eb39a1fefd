"""The HTML report opens offline (nothing fetched), and renders in a real browser; the files door's CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import fourloops as fl
from fourloops.cli import app as cli

from .test_monitor import frame


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("report")
    frame(10_000, 1).write_parquet(folder / "ref.parquet")
    pl.concat([frame(2000, 2), frame(2000, 3, shift=1.0), frame(2000, 4, new_city=0.2)]).write_parquet(
        folder / "cur.parquet"
    )
    return folder / "ref.parquet", folder / "cur.parquet"


def test_the_report_is_self_contained(files: tuple[Path, Path], tmp_path: Path) -> None:
    result = fl.monitor(*files, window=1000, label="y", score="score", segments=["city"])
    html = result.to_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == html
    # Nothing is loaded from elsewhere: no tag that fetches a script, style, image, frame or font.
    assert not re.search(r"<(script|link|img|iframe|source|object)\b[^>]*\b(src|href|data)\s*=", html, re.I)
    assert "@import" not in html and "url(http" not in html
    assert "Plotly" in html and html.count("<script") == 3  # the library, inlined, and two charts
    for section in ("Alerts", "Performance", "Drift over time", "Segments", "Data health"):
        assert f"<h2>{section}</h2>" in html
    assert "concept shift" not in html and "unknown_categories" in html


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_the_report_renders_in_headless_chromium(files: tuple[Path, Path], tmp_path: Path) -> None:
    result = fl.monitor(*files, window=1000, label="y", score="score", segments=["city"])
    page = tmp_path / "r.html"
    result.to_html(page)
    shot = tmp_path / "r.png"
    command = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2000",
        "--virtual-time-budget=8000",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert image.shape[0] >= 1000
    # Charts drew: the band where the performance chart sits is far from a blank page.
    assert image.std() > 20


def test_monitor_command_on_two_files(files: tuple[Path, Path], tmp_path: Path) -> None:
    ref, cur = files
    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            "monitor",
            "--reference",
            str(ref),
            "--current",
            str(cur),
            "--window",
            "2000",
            "--label",
            "y",
            "--score",
            "score",
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    d = json.loads(done.stdout)
    assert [w["drift"]["x"]["drifted"] for w in d["windows"]] == [False, True, False]
    text = runner.invoke(cli, ["monitor", "--reference", str(ref), "--current", str(cur), "--window", "2000"])
    assert text.exit_code == 0 and "what to do:" in text.stdout and "input_drift" in text.stdout
    failing = runner.invoke(
        cli, ["monitor", "--reference", str(ref), "--current", str(cur), "--fail-on", "warning"]
    )
    assert failing.exit_code == 4
    bad = runner.invoke(cli, ["monitor", "--reference", str(ref), "--current", str(cur), "--window", "1d"])
    assert bad.exit_code != 0 and "timestamp column" in bad.output and "Traceback" not in bad.output
    alone = runner.invoke(cli, ["monitor", "--reference", str(ref)])
    assert alone.exit_code != 0 and "--current" in alone.output
