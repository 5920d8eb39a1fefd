"""``fl.monitor`` on two data sets: windows, drift, health, metrics, estimation, alerts, JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

import fourloops as fl
from fourloops.errors import ConfigError, FourloopsError, SchemaError, SourceError
from fourloops.evaluation.alerts import AlertPolicy

T0 = datetime(2024, 3, 1, tzinfo=UTC)
WINDOW_KEYS = {
    "index",
    "start",
    "end",
    "first_row",
    "last_row",
    "rows",
    "status",
    "drift",
    "prediction_drift",
    "multivariate",
    "health",
    "metrics",
    "estimated",
    "segments",
}
DRIFT_KEYS = {"method", "statistic", "p_value", "threshold", "drifted", "methods"}
ALERT_KEYS = {
    "kind",
    "severity",
    "window",
    "start",
    "end",
    "column",
    "segment",
    "evidence",
    "cause",
    "action",
}


def frame(
    n: int,
    seed: int,
    *,
    shift: float = 0.0,
    flip: bool = False,
    start: datetime = T0,
    step: timedelta = timedelta(minutes=1),
    new_city: float = 0.0,
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    z = rng.exponential(1, n)
    city = rng.choice(["ams", "bcn", "cdg"], n, p=[0.5, 0.3, 0.2]).astype(object)
    city[rng.uniform(size=n) < new_city] = "zrh"
    score = 1 / (1 + np.exp(-(1.2 * x - 0.4 * z)))
    truth = 1 / (1 + np.exp(1.2 * x - 0.4 * z)) if flip else score
    y = (rng.uniform(size=n) < truth).astype(np.int64)
    return pl.DataFrame(
        {
            "x": x,
            "z": z,
            "city": city.astype(str),
            "y": y,
            "score": score,
            "ts": [start + i * step for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def reference() -> pl.DataFrame:
    return frame(20_000, 1)


def test_json_has_every_documented_key_and_no_nan(reference: pl.DataFrame) -> None:
    current = pl.concat([frame(3000, 2), frame(3000, 3, shift=1.0, start=T0 + timedelta(minutes=3000))])
    result = fl.monitor(reference, current, window=1000, label="y", score="score", segments=["city"])
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["reference"]["rows"] == 20_000
    assert [w["index"] for w in d["windows"]] == list(range(6))
    for w in d["windows"]:
        assert WINDOW_KEYS <= set(w)
        for column in ("x", "z", "city"):
            assert DRIFT_KEYS <= set(w["drift"][column])
            assert set(w["health"][column]) == {"null_share", "default_share", "unknown_share"}
        assert DRIFT_KEYS <= set(w["prediction_drift"])
        assert {"value", "low", "high", "reference", "labelled", "maturity"} <= set(w["metrics"]["roc_auc"])
        assert {"value", "low", "high"} <= set(w["estimated"]["roc_auc"])
        assert set(w["segments"]) == {"city=ams", "city=bcn", "city=cdg"}
    assert all(ALERT_KEYS <= set(a) for a in d["alerts"])
    assert [w["drift"]["x"]["drifted"] for w in d["windows"]] == [False] * 3 + [True] * 3


def test_windows_by_rows_in_file_order_with_an_incomplete_last_one(reference: pl.DataFrame) -> None:
    result = fl.monitor(reference, frame(2530, 4), window=1000)
    got = [(w.bounds.first_row, w.bounds.last_row, w.bounds.rows, w.status.value) for w in result.windows]
    assert got == [(0, 999, 1000, "ok"), (1000, 1999, 1000, "ok"), (2000, 2529, 530, "incomplete")]
    tiny = fl.monitor(reference, frame(2010, 4), window=1000)
    assert tiny.windows[-1].status.value == "too_few_rows" and tiny.windows[-1].drift == {}


def test_windows_by_time_keep_empty_windows_and_mark_the_unfinished_one(reference: pl.DataFrame) -> None:
    day = timedelta(days=1)
    current = pl.concat(
        [
            frame(1440, 5, start=T0, step=timedelta(minutes=1)),
            frame(700, 6, start=T0 + 3 * day, step=timedelta(minutes=1)),
        ]
    )
    result = fl.monitor(reference, current, timestamp="ts", window="1d")
    got = [(w.bounds.start, w.bounds.rows, w.status.value) for w in result.windows]
    assert got == [
        (T0, 1440, "ok"),
        (T0 + day, 0, "too_few_rows"),
        (T0 + 2 * day, 0, "too_few_rows"),
        (T0 + 3 * day, 700, "incomplete"),
    ]
    assert result.windows[0].bounds.end == T0 + day and result.windows[0].bounds.first_row is None
    until = fl.monitor(reference, current, timestamp="ts", window="1d", until=T0 + 4 * day)
    assert until.windows[-1].status.value == "ok"


def test_paths_and_frames_give_the_same_json(reference: pl.DataFrame, tmp_path: Path) -> None:
    current = frame(3000, 7, shift=0.3)
    reference.write_parquet(tmp_path / "ref.parquet")
    current.write_csv(tmp_path / "cur.csv")
    args = {"window": 1000, "label": "y", "score": "score", "segments": ["city"], "timestamp": None}
    from_frames = fl.monitor(reference, current.drop("ts"), **args).to_dict()
    from_files = fl.monitor(tmp_path / "ref.parquet", tmp_path / "cur.csv", columns=None, **args).to_dict()
    drop_ts = {k: v for k, v in from_files["reference"]["columns"].items() if k != "ts"}
    assert drop_ts == from_frames["reference"]["columns"]
    for a, b in zip(from_frames["windows"], from_files["windows"], strict=True):
        assert a["drift"]["x"] == b["drift"]["x"]
        assert a["metrics"] == b["metrics"]
    pandas = fl.monitor(reference.to_pandas(), current.drop("ts").to_pandas(), **args).to_dict()
    assert pandas["windows"] == from_frames["windows"]


def test_realised_metrics_agree_with_scikit_learn_on_the_raw_rows(reference: pl.DataFrame) -> None:
    current = frame(4000, 8)
    result = fl.monitor(reference, current, label="y", score="score")
    [window] = result.windows
    y, s = current["y"].to_numpy(), current["score"].to_numpy()
    metrics = {k: v.value for k, v in window.metrics.items()}
    assert metrics["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, s), abs=2e-4)
    assert metrics["accuracy"].value == pytest.approx(skm.accuracy_score(y, s >= 0.5), abs=1e-12)
    assert metrics["f1"].value == pytest.approx(skm.f1_score(y, s >= 0.5), abs=1e-12)
    assert metrics["log_loss"].value == pytest.approx(skm.log_loss(y, s), abs=1e-3)
    assert metrics["brier"].value == pytest.approx(skm.brier_score_loss(y, s), abs=1e-4)
    roc = metrics["roc_auc"]
    assert roc.low < roc.value < roc.high and roc.rows == 4000


def test_a_fully_labelled_window_is_estimated_once(
    reference: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking the estimate against the labels needs the estimate of the labelled rows; when every
    row is labelled that is the estimate of all rows, computed once (twice when some are not)."""
    from fourloops.evaluation import assess as assess_module

    calls: list[bool] = []
    original = assess_module.estimate

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(bool(kwargs.get("labelled_only")))
        return original(*args, **kwargs)

    monkeypatch.setattr(assess_module, "estimate", counted)
    current = frame(2000, 24)
    labelled = fl.monitor(reference, current, label="y", score="score", multivariate=False)
    assert calls == [False] and labelled.windows[0].checks
    calls.clear()
    some = current.with_columns(
        pl.when(pl.int_range(2000) < 100).then(None).otherwise(pl.col("y")).alias("y")
    )
    fl.monitor(reference, some, label="y", score="score", multivariate=False)
    assert calls == [False, True]


def test_unlabelled_rows_are_pending_never_negative(reference: pl.DataFrame) -> None:
    current = frame(3000, 9).with_columns(
        y=pl.when(pl.int_range(pl.len()) < 2000).then(pl.col("y")).otherwise(None)
    )
    result = fl.monitor(reference, current, window=1000, label="y", score="score")
    roc = [w.metrics["roc_auc"] for w in result.windows]
    assert [r.maturity for r in roc] == ["mature", "mature", "pending"]
    assert roc[2].value.value is None and roc[2].value.rows == 0
    assert result.windows[2].estimated["roc_auc"].value is not None  # estimated before labels


def test_estimation_tracks_covariate_shift_and_flags_a_concept_shift(reference: pl.DataFrame) -> None:
    shifted = frame(3000, 10, shift=0.8)
    flipped = frame(3000, 11, flip=True, start=T0 + timedelta(minutes=3000))
    result = fl.monitor(reference, pl.concat([shifted, flipped]), window=1000, label="y", score="score")
    for w in result.windows[:3]:
        est, real = w.estimated["roc_auc"], w.metrics["roc_auc"].value
        assert est.low <= real.value <= est.high  # the inputs moved, P(y | x) did not: estimate holds
        assert not w.checks["roc_auc"]["outside"]
    assert all(w.checks["roc_auc"]["outside"] for w in result.windows[3:])
    concept = [a for a in result.alerts if a.kind == "performance" and "concept shift" in a.cause]
    assert [a.window for a in concept] == [3]


def test_a_drop_confined_to_one_segment_alerts_on_that_segment(reference: pl.DataFrame) -> None:
    # The labels flip for one city only: its own AUC falls from its value at training.
    current = frame(6000, 13)
    flipped = current.with_columns(
        y=pl.when(pl.col("city") == "cdg").then(1 - pl.col("y")).otherwise(pl.col("y"))
    )
    result = fl.monitor(reference, flipped, window=3000, label="y", score="score", segments=["city"])
    drops = [a for a in result.alerts if a.kind == "performance" and a.segment is not None]
    assert drops and {a.segment for a in drops} == {"city=cdg"}
    assert [a.window for a in drops] == [0]  # one episode, from its first window
    for w in result.windows:
        cdg = w.segments["city=cdg"].metrics["roc_auc"]
        assert cdg.value.high < cdg.reference
    evidence = drops[0].evidence
    assert evidence["high"] < evidence["bound"] < evidence["reference"]
    assert "segment city=cdg" in drops[0].cause
    clean = fl.monitor(reference, current, window=3000, label="y", score="score", segments=["city"])
    assert not [a for a in clean.alerts if a.kind == "performance"]


def _many_segments(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-1.5 * x))
    return pl.DataFrame(
        {
            "x": x,
            "shop": rng.choice([f"s{i:02d}" for i in range(20)], n).astype(str),
            "y": (rng.uniform(size=n) < score).astype(np.int64),
            "score": score,
        }
    )


def test_segment_performance_alerts_keep_their_error_rate_across_twenty_segments() -> None:
    # Nothing changes: each of 40 windows has 20 segments of ~200 labelled rows, judged with no
    # allowed drop against a reference large enough to be near exact. With separate 95 % intervals
    # about 40 % of the windows would alert somewhere (1 - 0.975^20); the window's segment
    # intervals are simultaneous, so at most about 5 % may.
    reference = _many_segments(400_000, 1)
    current = _many_segments(40 * 4000, 2)
    result = fl.monitor(
        reference,
        current,
        window=4000,
        label="y",
        score="score",
        segments=["shop"],
        multivariate=False,
        alerts=AlertPolicy(max_drop=0.0),
    )
    assert len(result.windows) == 40
    alerted = {a.window for a in result.alerts if a.kind == "performance" and a.segment is not None}
    assert len(alerted) <= 5, sorted(alerted)


def test_an_unseen_category_surge_and_a_missing_column_alert(reference: pl.DataFrame) -> None:
    current = frame(2000, 12, new_city=0.2).drop("z")
    result = fl.monitor(reference, current, window=1000)
    kinds = {(a.kind, a.column) for a in result.alerts}
    assert ("unknown_categories", "city") in kinds and ("data_quality", "z") in kinds
    unknown = next(a for a in result.alerts if a.kind == "unknown_categories")
    assert "zrh" in unknown.evidence["examples"]
    assert result.windows[0].health["z"]["null_share"] == 1.0
    assert any("lacks z" in note for note in result.notes)


def test_degenerate_columns_never_give_nan_or_infinity() -> None:
    n = 500
    ref = pl.DataFrame(
        {
            "constant": [1.0] * n,
            "nulls": pl.Series([None] * n, dtype=pl.Float64),
            "one_cat": ["a"] * n,
            "cat_nulls": pl.Series([None] * n, dtype=pl.String),
            "x": np.random.default_rng(0).normal(size=n),
        }
    )
    cur = pl.DataFrame(
        {
            "constant": [1.0] * 100 + [float("nan")] * 10 + [float("inf")] * 5,
            "nulls": [0.5] * 115,
            "one_cat": ["b"] * 115,
            "cat_nulls": ["x"] * 115,
            "x": [float("-inf")] * 115,
        }
    )
    result = fl.monitor(ref, cur)
    json.dumps(result.to_dict(), allow_nan=False)
    w = result.windows[0]
    assert w.health["constant"]["null_share"] == pytest.approx(15 / 115)
    assert w.drift["one_cat"].drifted  # a constant column that changed its value
    assert w.health["x"]["null_share"] == 1.0


def test_hysteresis_and_snoozing(reference: pl.DataFrame) -> None:
    current = pl.concat(
        [frame(1000, 13), frame(1000, 14, shift=1), frame(1000, 15), frame(2000, 16, shift=1)]
    )
    once = fl.monitor(reference, current, window=1000)
    assert [a.windows for a in once.alerts if a.column == "x"] == [(1,), (3, 4)]
    twice = fl.monitor(reference, current, window=1000, alerts=AlertPolicy(consecutive=2))
    assert [(a.window, a.windows) for a in twice.alerts if a.column == "x"] == [(4, (3, 4))]
    snoozed = fl.monitor(reference, current, window=1000, alerts=AlertPolicy(snoozed=(("input_drift", "x"),)))
    assert not [a for a in snoozed.alerts if a.column == "x"]


def test_bad_input_is_a_one_line_error_naming_what_is_wrong(reference: pl.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="timestamp column"):
        fl.monitor(reference, reference, window="1d")
    with pytest.raises(SchemaError, match="'nope'"):
        fl.monitor(reference, reference, segments=["nope"])
    with pytest.raises(ConfigError, match="unknown drift method 'kl'"):
        fl.monitor(reference, reference, methods=["kl"])
    with pytest.raises(ConfigError, match="window"):
        fl.monitor(reference, reference, window="soon")
    with pytest.raises(SourceError, match="no such file"):
        fl.monitor(tmp_path / "missing.parquet", reference)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        fl.monitor(tmp_path / "bad.parquet", reference)
    with pytest.raises(SchemaError, match="no label column 'yy'"):
        fl.monitor(reference, reference, label="yy", score="score")
    # a CSV file whose lines disagree on their fields (DuckDB would read it as one column of text)
    (tmp_path / "ragged.csv").write_text("x,z\n0.5,1.0\n0.25\n1.5,2.0\n")
    with pytest.raises(
        SourceError, match=r"ragged.csv: line 3 has 1 field separated by ',', the header has 2"
    ):
        fl.monitor(reference, tmp_path / "ragged.csv")
    (tmp_path / "quoted.csv").write_text('x,z\n"0.5\n",1.0\n0.25,3.0\n0.75\n')  # a record of two lines
    with pytest.raises(SourceError, match=r"quoted.csv: line 5 has 1 field"):
        fl.monitor(reference, tmp_path / "quoted.csv")
    (tmp_path / "bom.csv").write_text('\ufeff"x,z"\n0.5\n0.25\n')  # one column named "x,z"
    assert fl.monitor(reference.with_columns(pl.col("x").alias("x,z")), tmp_path / "bom.csv").windows
    (tmp_path / "semicolons.csv").write_text("x;z\n0.5;1.0\n0.25;3.0\n")
    assert fl.monitor(reference, tmp_path / "semicolons.csv").windows[0].bounds.rows == 2


def test_numbers_arriving_as_text_are_read_and_the_rest_shows_as_missing(reference: pl.DataFrame) -> None:
    """A pipeline that writes a numeric column as text, with empty strings for its nulls: the numbers
    are still read, the empty strings count as missing (the null share rises and alerts), and a note
    says how many values were not numbers; a column of another type entirely counts as missing."""
    current = frame(2000, 18)
    z = [f"{v:.17g}" for v in current["z"]]
    z[::4] = [""] * len(z[::4])
    current = current.with_columns(
        pl.Series("z", z, dtype=pl.String), pl.Series("x", current["ts"]).alias("x")
    )
    result = fl.monitor(reference, current, window=1000)
    assert result.windows[0].health["z"]["null_share"] == pytest.approx(0.25)
    assert result.windows[0].health["x"]["null_share"] == 1.0
    assert not result.windows[0].drift["z"].drifted  # the numbers that did arrive did not move
    assert {("data_quality", "z"), ("data_quality", "x")} <= {(a.kind, a.column) for a in result.alerts}
    [z_note] = [n for n in result.notes if n.startswith("'z'")]
    assert "500 values that are not a number (such as '') counted as missing" in z_note
    [x_note] = [n for n in result.notes if n.startswith("'x'")]
    assert "TIMESTAMP" in x_note and "2,000 values" in x_note
    # text that does read as numbers everywhere is read, with a note and nothing missing
    clean = frame(1000, 19)
    as_text = clean.with_columns(pl.col("z").map_elements(lambda v: f"{v:.17g}", return_dtype=pl.String))
    same = fl.monitor(reference, as_text)
    assert same.windows[0].health["z"]["null_share"] == 0.0
    assert (
        same.windows[0].drift["z"].to_dict() == fl.monitor(reference, clean).windows[0].drift["z"].to_dict()
    )
    assert any(n == "'z' is VARCHAR in the current data: read as numbers" for n in same.notes)


def test_scores_labels_and_references_that_cannot_be_read_are_one_line_errors(
    reference: pl.DataFrame,
) -> None:
    current = frame(500, 20)
    text_score = current.with_columns(
        pl.when(pl.col("x") > 1)
        .then(pl.lit("high"))
        .otherwise(pl.col("score").cast(pl.String))
        .alias("score")
    )
    with pytest.raises(
        SchemaError, match=r"the current data's column 'score' must hold numbers; .* holds 'high'"
    ):
        fl.monitor(reference, text_score, score="score", label="y")
    yes_no = current.with_columns(
        pl.when(pl.col("y") == 1).then(pl.lit("yes")).otherwise(pl.lit("no")).alias("y")
    )
    with pytest.raises(SchemaError, match=r"column 'y' must hold numbers"):
        fl.monitor(reference, yes_no, score="score", label="y")
    with pytest.raises(SchemaError, match=r"the reference's column 'y' must hold numbers"):
        fl.monitor(yes_no, current, score="score", label="y")
    # a binary model's labels are 0 or 1 and its scores probabilities: nothing is cut at 0.5 or clipped
    with pytest.raises(
        SchemaError,
        match=r"the current data's column 'y' holds a binary model's labels: 0 or 1; "
        r"it holds 2 \(1 value outside\)",
    ):
        fl.monitor(
            reference,
            current.with_columns(pl.when(pl.int_range(500) == 7).then(2).otherwise(pl.col("y")).alias("y")),
            score="score",
            label="y",
        )
    with pytest.raises(
        SchemaError,
        match=r"the reference's column 'score' holds scores of a binary model: probabilities in \[0, 1\]; "
        r"it holds 1\.\d+ \(20,000 values outside\)",
    ):
        fl.monitor(reference.with_columns(pl.col("score") + 1.5), current, score="score", label="y")
    booleans = current.with_columns(
        pl.col("y").cast(pl.Boolean),
        pl.when(pl.int_range(500) == 3).then(float("nan")).otherwise(pl.col("score")).alias("score"),
    )
    assert (
        fl.monitor(reference, booleans, score="score", label="y").windows[0].metrics["roc_auc"].value.rows
        == 499
    )
    with pytest.raises(SchemaError, match="the reference has no rows"):
        fl.monitor(reference.head(0), current)
    with pytest.raises(SchemaError, match=r"no column to monitor .* 'ts' \(TIMESTAMP"):
        fl.monitor(reference.select("ts"), current.select("ts"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_frames_give_a_result_or_a_one_line_error(data: st.DataObject) -> None:
    """Whatever the two frames hold (numbers, NaN, infinity, text, booleans, timestamps, nulls, no
    rows, types that differ between them), the monitor returns finite JSON or raises one of
    fourloops' one-line errors, never anything else."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))

    def column(kind: str, n: int) -> pl.Series:
        if kind == "number":
            return pl.Series(rng.normal(size=n))
        if kind == "odd numbers":
            return pl.Series(rng.choice([np.nan, np.inf, -np.inf, 1.0, 0.0], n))
        if kind == "text":
            return pl.Series(rng.choice(["a", "", "1.5", "nan"], n).tolist(), dtype=pl.String)
        if kind == "boolean":
            return pl.Series((rng.random(n) < 0.5).tolist(), dtype=pl.Boolean)
        if kind == "time":
            return pl.Series([T0 + timedelta(hours=int(h)) for h in rng.integers(0, 200, n)])
        return pl.Series([None] * n, dtype=pl.Float64)

    kinds = ["number", "odd numbers", "text", "boolean", "time", "nulls"]
    names = [f"c{i}" for i in range(data.draw(st.integers(1, 3)))]
    sizes = [data.draw(st.sampled_from([0, 1, 7, 60])) for _ in range(2)]
    frames = []
    for n in sizes:
        drawn = {name: column(data.draw(st.sampled_from(kinds)), n) for name in names}
        drawn["s"] = column(data.draw(st.sampled_from(["number", "odd numbers", "text", "boolean"])), n)
        drawn["y"] = column(data.draw(st.sampled_from(["number", "boolean", "text", "nulls"])), n)
        drawn["ts"] = column("time", n)
        frames.append(pl.DataFrame(drawn))
    options = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "score": st.just("s"),
                "label": st.just("y"),
                "window": st.sampled_from([5, "1d"]),
                "segments": st.sampled_from([["c0"], ["s"]]),
                "multivariate": st.booleans(),
            },
        )
    )
    if options.get("window") == "1d":
        options["timestamp"] = "ts"
    try:
        result = fl.monitor(frames[0], frames[1], **options)
    except FourloopsError as error:
        assert "\n" not in str(error)
        return
    json.dumps(result.to_dict(), allow_nan=False)


def test_values_the_monitor_never_reads_are_not_checked_and_numbers_stay_numbers(
    reference: pl.DataFrame,
) -> None:
    """A bad score after ``until`` does not refuse the run; the domain classifier compares a numeric
    column that arrives as text as numbers (not as new categories), and reads integers beyond 2**53."""
    current = frame(2000, 21, start=T0)
    late = current.with_columns(
        pl.when(pl.int_range(2000) == 1999).then(7.0).otherwise(pl.col("score")).alias("score")
    )
    until = T0 + timedelta(minutes=1500)
    result = fl.monitor(reference, late, score="score", label="y", timestamp="ts", window="1d", until=until)
    assert sum(w.bounds.rows for w in result.windows) == 1500
    with pytest.raises(SchemaError, match="it holds 7.0"):
        fl.monitor(reference, late, score="score", label="y", timestamp="ts", window="1d")
    ref = frame(3000, 22).with_columns((pl.col("x") * 2).round(0).cast(pl.Int64).alias("k"))
    cur = frame(3000, 23).with_columns((pl.col("x") * 2).round(0).cast(pl.Int64).alias("k"))
    as_text = cur.with_columns(
        pl.col("k").cast(pl.Float64).cast(pl.String)
    )  # "1.0" where the reference had 1
    [window] = fl.monitor(ref.drop("ts"), as_text.drop("ts")).windows
    assert not window.drift["k"].drifted
    assert window.multivariate is not None and not window.multivariate["drifted"]
    big = ref.with_columns((pl.lit(2**62) + pl.int_range(3000)).alias("id"))
    [window] = fl.monitor(big.drop("ts"), big.drop("ts")).windows
    assert window.multivariate is not None and not window.multivariate["drifted"]


def test_methods_pick_the_headline_and_report_every_method(reference: pl.DataFrame) -> None:
    result = fl.monitor(reference, frame(2000, 17, shift=0.5), methods=["psi", "ks", "wasserstein", "chi2"])
    x = result.windows[0].drift["x"].to_dict()
    assert x["method"] == "psi" and set(x["methods"]) == {"psi", "ks", "wasserstein", "chi2"}
    city = result.windows[0].drift["city"].to_dict()
    assert city["method"] == "psi" and set(city["methods"]) == {"psi", "chi2"}
