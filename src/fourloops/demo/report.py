"""A self-contained HTML page for the demo summary (no scripts, no external assets)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

__all__ = ["render_report"]

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #d6dae3;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d6dae3;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b3261e;font-weight:600}.warn{color:#9a6700}.ok{color:#1a7f37}
.bar{display:inline-block;height:.7rem;background:#5470c6;vertical-align:middle}
ul.hl li{margin:.2rem 0}code{background:#f2f4f8;padding:0 .25rem}
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:,.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value:,}</td>'
    return f"<td>{escape(str(value))}</td>"


def _span_hours(window: list[str]) -> float:
    """Hours between the first and last departure of a replay window (ISO-8601 texts)."""
    first, last = (datetime.fromisoformat(w) for w in window)
    return (last - first).total_seconds() / 3600


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def render_report(summary: dict[str, Any]) -> str:
    """The demo report as one HTML document."""
    ing = summary["loops"]["ingestion"]
    ts = summary["loops"]["training_set"]
    online = summary["loops"]["online"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>fourloops demo report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>fourloops demo report</h1>",
        f"<p>{escape(summary['dataset'])}; replayed window {escape(summary['window']['start'])} → "
        f"{escape(summary['window']['end'])} ({summary['days']} days) in {summary['seconds']:.1f} s.</p>",
        '<ul class="hl">' + "".join(f"<li>{escape(h)}</li>" for h in summary["highlights"]) + "</ul>",
        "<h2>Ingestion: weather deliveries against the contract</h2>",
        _table(
            [
                "delivery",
                "rows",
                "valid",
                "quarantined",
                "failures (column:rule rows)",
                "schema drift",
            ],
            [
                [
                    d["file"] + (" (fault injected)" if d["injected_fault"] else ""),
                    d["rows"],
                    d["valid"],
                    d["quarantined"],
                    "; ".join(f"{f['column']}:{f['rule']} {f['rows']}" for f in d["failures"]) or "–",
                    "; ".join(x["message"] for x in d["drift"]) or "–",
                ]
                for d in ing["deliveries"]
            ],
        ),
    ]
    failures = [f for d in ing["deliveries"] for f in d["failures"]]
    if failures:
        parts.append("<h3>Quarantined values (examples)</h3>")
        parts.append(
            _table(
                ["column", "rule", "rows", "examples"],
                [[f["column"], f["rule"], f["rows"], ", ".join(map(str, f["examples"]))] for f in failures],
            )
        )
    if ing.get("coverage"):
        parts.append("<h3>Feature coverage (last delivery)</h3>")
        rows = []
        for name, cov in ing["coverage"].items():
            rows.append(
                [
                    name,
                    _pct(cov.get("share_present")),
                    _pct(cov.get("share_null")),
                    _pct(cov.get("share_default")),
                    _pct(cov.get("share_unknown")),
                ]
            )
        parts.append(_table(["feature", "present", "null", "at default", "unknown category"], rows))
    parts.append("<h2>Point-in-time training set</h2>")
    parts.append(
        f"<p>{ts['rows']:,} flights, {len(ts['features'])} features, joined in {ts['seconds']:.2f} s; "
        f"{ts['labelled']:,} labelled (cancelled flights never get a label); delay rate "
        f"{_pct(ts['delay_rate'])}.</p>"
    )
    views = ts["stats"].get("views", {})
    if views:
        keys = sorted({k for v in views.values() for k in v if isinstance(v.get(k), int)})
        parts.append(
            _table(
                ["view", *keys],
                [[name, *(v.get(k, "") for k in keys)] for name, v in views.items()],
            )
        )
    parts.append("<h3>Delay rate by month (the label drifts with the seasons)</h3>")
    top = max((m["rate"] for m in ts["delay_rate_by_month"]), default=1) or 1
    parts.append(
        _table(
            ["month", "flights", "delay rate", ""],
            [[m["month"], m["flights"], _pct(m["rate"]), ""] for m in ts["delay_rate_by_month"]],
        )
    )
    parts[-1] = _bars(parts[-1], [m["rate"] / top for m in ts["delay_rate_by_month"]])
    parts.append("<h3>Leakage guard</h3>")
    parts.append(
        f"<p>Each column scored alone against the label; above {ts['leakage_threshold']} it is "
        "flagged. <code>arr_delay</code> (the label's source) and <code>dep_delay</code> (known "
        "only after departure) are not features; they are scored to show what the guard sees. "
        "A statistical check cannot catch every leak (departure delay stays below the "
        "threshold), which is why point-in-time joins exclude late values by construction.</p>"
    )
    flagged = {f["feature"] for f in ts["leakage"]}
    parts.append(
        _table(
            ["column", "metric", "score", "rows", "verdict"],
            [
                [
                    f["feature"],
                    f["metric"],
                    round(f["score"], 4),
                    f["rows"],
                    "LEAKAGE SUSPECTED" if f["feature"] in flagged else "ok",
                ]
                for f in ts["single_feature_scores"]
            ],
        )
    )
    parts.append("<h2>Online store</h2>")
    parts.append(
        _table(
            ["view", "rows read", "keys written", "skipped (store newer)"],
            [[r["view"], r["rows_read"], r["written"], r["skipped_older"]] for r in online["materialized"]],
        )
    )
    parts.append(f"<p>Reads at {escape(online['as_of'])} and 6 hours later (weather ttl: 3 h):</p>")
    rows = []
    for label, reads in (("as of", online["reads_at_as_of"]), ("+6 h", online["reads_6h_later"])):
        for r in reads:
            rows.append(
                [
                    label,
                    r["entity"].get("origin"),
                    r["status"].get("weather"),
                    r["age_seconds"].get("weather"),
                    r["values"].get("temp"),
                ]
            )
    parts.append(_table(["read", "airport", "status", "age (s)", "temp"], rows))
    parts.append(
        "<p>Re-materialising January 1st afterwards skipped "
        f"{sum(r['skipped_older'] for r in online['rematerialize_old_window']):,} older values "
        "instead of overwriting newer ones (monotonic writes).</p>"
    )
    if "adaptation" in summary["loops"]:
        parts.extend(_adaptation(summary["loops"]["adaptation"]))
    if summary["loops"].get("inference", {}).get("requests"):
        parts.extend(_inference(summary["loops"]["inference"]))
    if summary["loops"].get("evaluation"):
        parts.extend(_evaluation(summary["loops"]["evaluation"]))
    if summary["loops"].get("simulation"):
        parts.extend(_simulation(summary["loops"]["simulation"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _bars(table_html: str, widths: list[float]) -> str:
    for w in widths:
        table_html = table_html.replace(
            "<td></td>",
            f'<td><span class="bar" style="width:{max(1, int(w * 200))}px"></span></td>',
            1,
        )
    return table_html


def _interval(m: dict[str, Any] | None) -> str:
    if not m or m.get("point") is None:
        return "–"
    low, high = m.get("low"), m.get("high")
    ci = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{m['point']:.3f}{ci}"


def _adaptation(ad: dict[str, Any]) -> list[str]:
    parts = ["<h2>Adaptation: training, gates, registry</h2>"]
    metrics = [
        "roc_auc",
        "average_precision",
        "log_loss",
        "brier",
        "ece",
        "f1",
        "best_threshold",
        "best_cost_per_row",
    ]
    rows = []
    for run in ad["runs"]:
        rows.append([f"v{run['version']} test", *[run["test"].get(m) for m in metrics]])
        rows.append([f"v{run['version']} do-nothing baseline", *[run["baseline"].get(m) for m in metrics]])
        if run["champion"]:
            rows.append(
                [
                    f"champion v{run['champion_version']} on v{run['version']}'s test rows",
                    *[run["champion"].get(m) for m in metrics],
                ]
            )
    parts.append(
        "<p>Metrics on each run's test rows (the newest 30 days, never seen in training), beside "
        "the do-nothing baseline (the training delay rate for every flight) and the champion "
        "scored on the same rows. The cost metrics use a false negative costing 4 false positives.</p>"
    )
    parts.append(
        _table(
            ["model", *metrics],
            [[r[0], *("–" if v is None else float(v) for v in r[1:])] for r in rows],
        )
    )
    last = ad["runs"][-1]
    parts.append(f"<h3>Gates of v{last['version']}</h3>")
    parts.append(
        _table(
            ["gate", "verdict", "numbers"],
            [[g["gate"], "pass" if g["passed"] else "FAIL", g["message"]] for g in last["gates"]],
        )
    )
    parts.append(f"<h3>Segments of v{last['version']} (ROC-AUC with 95% bootstrap interval)</h3>")
    seg_rows = []
    for seg in last["segments"]:
        label = "all" if seg["column"] is None else f"{seg['column']}={seg['value']}"
        value = "too small" if seg["too_small"] else _interval(seg["metrics"].get("roc_auc"))
        seg_rows.append(
            [
                label,
                seg["n"],
                seg.get("positives") if seg.get("positives") is not None else "–",
                value,
            ]
        )
    parts.append(_table(["segment", "rows", "delayed", "roc_auc"], seg_rows))
    calib = last["calibration"]
    parts.append(f"<h3>Calibration of v{last['version']} (ECE {calib['ece']:.4f})</h3>")
    parts.append(
        _table(
            ["bin", "flights", "mean predicted", "observed rate"],
            [
                [
                    f"{b['lower']:.1f}–{b['upper']:.1f}",
                    b["count"],
                    "–" if b["mean_score"] is None else b["mean_score"],
                    "–" if b["observed_rate"] is None else b["observed_rate"],
                ]
                for b in calib["bins"]
            ],
        )
    )
    parts.append("<h3>Decisions (the alias journal)</h3>")
    parts.append("<ul>" + "".join(f"<li>{escape(d)}</li>" for d in ad["decisions"]) + "</ul>")
    parts.append(
        _table(
            ["at", "action", "from", "to", "actor", "reason"],
            [
                [
                    e["at"],
                    e["action"],
                    e["from_version"] or "–",
                    e["to_version"] or "–",
                    e["actor"],
                    e["reason"],
                ]
                for e in ad["journal"]
            ],
        )
    )
    parts.append(
        f"<p>Artifacts verified against their SHA-256: {ad['artifacts_verified']} of {ad['artifacts']}.</p>"
    )
    return parts


def _evaluation(ev: dict[str, Any]) -> list[str]:
    """The monitoring of the served traffic: windows, alerts with their playbook, the full report."""
    windows = _table(
        ["day", "requests", "status", "drifted columns", "prediction drift", "ROC-AUC", "estimated"],
        [
            [
                (w["start"] or "")[:10],
                w["rows"],
                w["status"],
                ", ".join(w["drifted"]) or "–",
                "yes" if w["prediction_drifted"] else "–",
                "–" if w["roc_auc"] is None else round(w["roc_auc"], 3),
                "–" if w["estimated_roc_auc"] is None else round(w["estimated_roc_auc"], 3),
            ]
            for w in ev["windows"]
        ],
    )
    alerts = _table(
        ["severity", "kind", "column", "why", "what to do"],
        [[a["severity"], a["kind"], a["column"] or "–", a["cause"], a["action"]] for a in ev["alerts"]],
    )
    return [
        "<h2>Evaluation: monitoring the served traffic</h2>",
        f"<p>Each day of served predictions against the champion's reference (v{ev['version']}, "
        f"profiled on its {ev['reference_rows']:,} test rows at training). The full report, with "
        f'charts: <a href="{escape(ev["report"])}">{escape(ev["report"])}</a>.</p>',
        windows,
        "<h3>Alerts</h3>",
        alerts if ev["alerts"] else "<p>No alerts.</p>",
    ]


def _simulation(sim: dict[str, Any]) -> list[str]:
    """The four loops together: each injected incident, when it was seen, what was done, what it cost."""

    def number(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    rows = []
    for i in sim["incidents"]:
        cost = i.get("cost") or {}
        rows.append(
            [
                i["name"],
                i["kind"],
                (i["start"] or "")[:10],
                "not detected"
                if not i["detected_at"]
                else f"after {i['detection_delay_hours']:.0f} h: {i['detected_by']}",
                number(cost.get("with")),
                number(cost.get("without")),
                number(cost.get("control")),
            ]
        )
    incidents = _table(
        [
            "incident",
            "kind",
            "began",
            "seen",
            "ROC-AUC served",
            "had nobody acted",
            "with no incident",
        ],
        rows,
    )
    actions = _table(
        ["at", "action", "version", "why"],
        [[a["at"][:16], a["kind"], a["version"] or "–", a["reason"]] for a in sim["actions"]],
    )
    return [
        "<h2>All four loops together: a simulated autumn</h2>",
        f"<p>{escape(sim['start'][:10])} to {escape(sim['end'][:10])} replayed by "
        "<code>fourloops simulate</code> on a fresh copy of the example: weather delivered day by day "
        "through the contract, every flight a request through the server, labels on arrival, the "
        "monitor and the controller (retraining, shadow and canary rollouts, aborts) every day. Four "
        "incidents were injected into one run; a control run replayed the same history untouched. "
        f"{sim['requests']:,} requests ({sim['control_requests']:,} in the control run) in "
        f"{sim['seconds']:.0f} s. The full story, with charts: "
        f'<a href="{escape(sim["report"])}">{escape(sim["report"])}</a>; the incidents file: '
        f'<a href="{escape(sim["incidents_file"])}">{escape(sim["incidents_file"])}</a>.</p>',
        incidents,
        f"<p>False alarms (alerts of the control run): {sim['false_alarms']}"
        + (f" ({escape(', '.join(sim['false_alarm_kinds']))})" if sim["false_alarm_kinds"] else "")
        + ". No incident explains them; on this real history many are its own changes (autumn "
        "weather, the December rise in delays), real shifts the monitor is right to report, "
        "though not the ones injected.</p>",
        "<h3>What the controller did in the incident run</h3>",
        actions if sim["actions"] else "<p>Nothing.</p>",
    ]


def _inference(inf: dict[str, Any]) -> list[str]:
    lat = inf["latency_ms"]
    parity = inf["training_serving_parity"]
    parts = [
        "<h2>Inference: replayed traffic through the HTTP server</h2>",
        f"<p>{inf['requests']:,} flights departing {escape(inf['window'][0])} → "
        f"{escape(inf['window'][1])} sent "
        "one by one to <code>POST /v1/models/delay/predict</code> on a real server, with the server's clock "
        "at each departure and the online store materialised as weather was published.</p>",
        _table(
            ["requests", "answered", "rejected (4xx)", "fallbacks", "p50 ms", "p99 ms", "events logged"],
            [
                [
                    inf["requests"],
                    inf["statuses"].get("200", 0),
                    sum(v for k, v in inf["statuses"].items() if k.startswith("4")),
                    inf["fallbacks"],
                    lat["p50"],
                    lat["p99"],
                    inf["events_logged"],
                ]
            ],
        ),
        "<h3>Rejected requests (bad input injected on purpose)</h3>",
        _table(["field:rule", "requests"], sorted(inf["rejections"].items())),
        "<h3>Delayed labels through /v1/labels</h3>",
        _table(
            ["sent", "joined to predictions", "duplicates", "unknown request ids"],
            [
                [
                    "first delivery",
                    inf["labels"]["inserted"],
                    inf["labels"]["duplicates"],
                    inf["labels"]["unknown"],
                ],
                [
                    "re-sent (idempotent)",
                    inf["labels_resent"]["inserted"],
                    inf["labels_resent"]["duplicates"],
                    inf["labels_resent"]["unknown"],
                ],
            ],
        ),
        f"<p>ROC-AUC of the served predictions on their {inf['labelled_predictions']:,} labels: "
        f"{'–' if inf['served_roc_auc'] is None else format(inf['served_roc_auc'], '.3f')} "
        f"(flights of {_span_hours(inf['window']):.0f} hours: compare it with the offline test score "
        "only with its uncertainty, which the evaluation loop will report).</p>",
        "<h3>Where the served features came from</h3>",
        "<p>As each event logged it: <code>ok</code> (a value within its ttl), <code>expired</code> "
        "(older than the ttl: the field's default or null was used), <code>missing</code> (the key is "
        f"unknown, e.g. a tail number the planes table lacks). The replay stops with the weather data "
        f"({escape(inf.get('weather_until', '?'))}), so that no prediction is scored without it.</p>",
        _table(
            ["view", "ok", "expired", "missing"],
            [
                [view, counts.get("ok", 0), counts.get("expired", 0), counts.get("missing", 0)]
                for view, counts in sorted(inf.get("feature_status", {}).items())
            ],
        ),
        "<h3>Training/serving parity</h3>",
        f"<p>Each served prediction compared with the same flight scored offline from a point-in-time "
        f"training frame: {parity['compared']:,} compared, {parity['mismatches']} differ "
        f"(largest difference {parity['max_abs_difference']}).</p>",
    ]
    return parts
