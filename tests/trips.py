"""A small synthetic project with a trainable model, and a served process of it, for model tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl

from fourloops.testing import free_port

T0 = datetime(2013, 1, 1, tzinfo=UTC)

DEFINITIONS = """
import lightgbm
import polars as pl
import fourloops as fl

station = fl.Entity("station", join_keys=["station"])
weather = fl.FeatureView(
    "weather", entity=station,
    source=fl.FileSource("data/weather.parquet", timestamp="at"),
    ttl="2h",
    contract=fl.Contract({"rain": fl.Float(min=0)}),
)
late = fl.Model(
    "late", task="binary",
    entities=fl.FileSource("data/trips.parquet", timestamp="at"),
    request=fl.Contract({"station": fl.Category(["a", "b", "c"]), "load": fl.Float(min=0, max=1)}),
    features=["weather:rain"],
    label=fl.Label("late", expr=pl.col("minutes_late") > 10, available="arrived"),
    trainer=lightgbm.LGBMClassifier(n_estimators=30, num_leaves=7, min_child_samples=20,
                                    deterministic=True, force_row_wise=True, n_jobs=1, verbose=-1),
    segments=["station"],
    fallback=fl.Fallback(constant=0.5),
    split=fl.TimeSplit(validation=0.2, test=0.2),
    gates=[fl.gates.BeatsBaseline(min_lift=0.05), fl.gates.NoRegression(max_drop=0.02),
           fl.gates.MaxCalibrationError(0.2), fl.gates.MaxArtifactSize("5MB"), fl.gates.NoLeakage(),
           fl.gates.MaxSegmentDrop(max_drop=0.1, min_size=100)],
)
"""


def write_project(root: Path, seed: int = 0, *, trips: int = 4000) -> None:
    """The project's files in ``root``: 40 days of hourly weather at three stations, ``trips`` trips."""
    rng = np.random.default_rng(seed)
    (root / "data").mkdir(parents=True)
    (root / "fourloops.toml").write_text('[project]\nname = "trips"\n')
    (root / "definitions.py").write_text(DEFINITIONS)
    hours = 24 * 40
    stations = ["a", "b", "c"]
    weather = pl.DataFrame(
        {
            "station": [s for _ in range(hours) for s in stations],
            "at": [T0 + timedelta(hours=h) for h in range(hours) for _ in stations],
            "rain": rng.gamma(0.5, 2.0, hours * 3),
        },
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )
    weather.write_parquet(root / "data/weather.parquet")
    n = trips
    at = [T0 + timedelta(minutes=int(m)) for m in np.sort(rng.integers(60, hours * 60, n))]
    station = rng.choice(stations, n)
    load = rng.uniform(0, 1, n)
    trips = pl.DataFrame(
        {"at": at, "station": station, "load": load},
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )
    joined = trips.join_asof(weather.sort("at"), on="at", by="station", strategy="backward")
    logit = -2 + 0.8 * joined["rain"].to_numpy() + 2 * load + (station == "c") * 0.7
    late = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    minutes = np.where(late, 30.0, 0.0)
    minutes[rng.uniform(size=n) < 0.03] = np.nan  # cancelled: never labelled
    trips.with_columns(
        pl.Series("minutes_late", minutes).fill_nan(None),
        (pl.col("at") + pl.duration(hours=1)).alias("arrived"),
    ).write_parquet(root / "data/trips.parquet")


def prepare_project(
    root: Path,
    *,
    versions: int = 1,
    promote: Sequence[int] = (1,),
    materialize: bool = True,
    config: str | None = None,
    definitions: str | None = None,
) -> Path:
    """:func:`write_project`, then train ``versions`` versions of ``late`` and promote ``promote`` in order.

    v1 is the default model (seed 1); every later version is a smaller one (10 trees, seed =
    version). ``materialize`` fills the online store up to the end of the data; ``config`` and
    ``definitions`` replace fourloops.toml and definitions.py before anything runs.
    """
    write_project(root)
    if config is not None:
        (root / "fourloops.toml").write_text(config)
    if definitions is not None:
        (root / "definitions.py").write_text(definitions)
    from fourloops.project import Project

    with Project.load(root, env={}) as project:
        for version in range(1, versions + 1):
            params = None if version == 1 else {"n_estimators": 10}
            project.train("late", seed=version, params=params)
        for version in promote:
            project.promote("late", version, force=True, reason="test")
        if materialize:
            project.materialize(end=T0 + timedelta(days=40))
    return root


@contextmanager
def served_process(
    project_dir: Path,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``fourloops serve`` on a free loopback port, ready; yields the process and its base URL.

    ``args`` are extra command-line arguments (``["--workers", "2"]``), ``env`` overrides
    variables of this process's environment, and ``log`` names a file to receive the
    server's output (discarded by default). The process is stopped (SIGTERM, or left as
    it is if a test already stopped or killed it) on exit.
    """
    port = free_port()
    command = [sys.executable, "-m", "fourloops.cli", "serve", "--project", str(project_dir)]
    with open(log if log is not None else os.devnull, "wb") as output:
        proc = subprocess.Popen(
            [*command, "--port", str(port), *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with code {proc.returncode} before it was ready")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("the server did not become ready within 60 s")
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
