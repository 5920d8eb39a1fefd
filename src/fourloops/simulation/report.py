"""The simulation's report: a timeline of traffic, performance, alerts and actions, a section per incident.

One self-contained HTML file (Plotly inlined from its wheel, as the monitoring
report). The timeline shows the requests per window, the primary metric as
served, as it would have been had nobody acted, with no incident (the
control run) and as estimated before labels arrived, every incident's start,
and where alerts were raised and the controller acted; below it each
incident says what it was, what fourloops should show, when it began, when it
was seen and by what, what it cost and what was done; then the false alarms
(alerts of the control run) and every action.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from fourloops.evaluation.report import STYLE

__all__ = ["render"]

_ACTION_COLORS = {
    "abort": "#cf1322",
    "rollback": "#cf1322",
    "promote": "#389e0d",
    "stage": "#7cb305",
    "rollout_start": "#1d39c4",
    "retrain": "#08979c",
    "candidate_rejected": "#d46b08",
    "quarantine": "#c41d7f",
    "release": "#531dab",
}


def _metric_series(windows: list[dict[str, Any]], metric: str, key: str) -> list[float | None]:
    return [((w.get(key) or {}).get(metric) or {}).get("value") for w in windows]


def _line(x: list[Any], y: list[Any], name: str, color: str, dash: str = "solid") -> go.Scatter:
    return go.Scatter(
        x=x, y=y, name=name, mode="lines+markers", line={"color": color, "dash": dash}, marker={"size": 4}
    )


def _timeline(summary: dict[str, Any]) -> str:
    windows = summary.get("windows", [])
    if not windows:
        return "<p class=muted>No window was monitored.</p>"
    x = [w["start"] for w in windows]
    metric = "roc_auc" if any("roc_auc" in (w.get("metrics") or {}) for w in windows) else None
    if metric is None:
        for w in windows:
            if w.get("metrics"):
                metric = next(iter(w["metrics"]))
                break
    fig = go.Figure()
    traffic = {t["start"]: t["requests"] for t in summary.get("traffic", [])}
    fig.add_trace(
        go.Bar(
            x=x,
            y=[traffic.get(s, w["rows"]) for s, w in zip(x, windows, strict=True)],
            name="requests",
            marker_color="rgba(100,120,160,.25)",
            yaxis="y2",
        )
    )
    outcomes = summary.get("outcomes") or {}
    if outcomes.get("windows"):
        metric = outcomes["metric"]
        ox = [w["start"] for w in outcomes["windows"]]
        fig.add_trace(_line(ox, [w["with"] for w in outcomes["windows"]], f"{metric} served", "#2f54eb"))
        if summary.get("incidents"):
            fig.add_trace(
                _line(
                    ox,
                    [w["without"] for w in outcomes["windows"]],
                    f"{metric} had nobody acted",
                    "#cf1322",
                    "dash",
                )
            )
        control = (summary.get("control") or {}).get("outcomes") or {}
        if control.get("windows"):
            fig.add_trace(
                _line(
                    [w["start"] for w in control["windows"]],
                    [w["with"] for w in control["windows"]],
                    f"{metric} with no incident (control run)",
                    "#8c8c8c",
                    "dot",
                )
            )
    if metric:
        fig.add_trace(
            _line(
                x,
                _metric_series(windows, metric, "estimated"),
                f"{metric} estimated before labels",
                "#fa8c16",
                "dashdot",
            )
        )
    for incident in summary.get("incidents", []):
        fig.add_vline(x=incident["start"], line={"color": "#cf1322", "dash": "dash", "width": 1})
        fig.add_annotation(
            x=incident["start"],
            y=1.02,
            yref="paper",
            text=escape(incident["name"]),
            showarrow=False,
            font={"color": "#cf1322", "size": 10},
            textangle=-20,
        )
    alerts = summary.get("raised", [])
    if alerts:
        fig.add_trace(
            go.Scatter(
                x=[a["raised_at"] for a in alerts],
                y=[0.02] * len(alerts),
                yaxis="y3",
                mode="markers",
                name="alerts",
                marker={"symbol": "triangle-up", "size": 9, "color": "#faad14"},
                text=[f"{a['kind']} {a.get('column') or ''} {a.get('segment') or ''}" for a in alerts],
                hovertemplate="%{text}<extra>alert</extra>",
            )
        )
    acts = [a for a in summary.get("actions", []) if a["kind"] in _ACTION_COLORS]
    if acts:
        fig.add_trace(
            go.Scatter(
                x=[a["at"] for a in acts],
                y=[0.1] * len(acts),
                yaxis="y3",
                mode="markers",
                name="actions",
                marker={"symbol": "diamond", "size": 10, "color": [_ACTION_COLORS[a["kind"]] for a in acts]},
                text=[f"{a['kind']}: {a['reason']}" for a in acts],
                hovertemplate="%{text}<extra>action</extra>",
            )
        )
    fig.update_layout(
        height=460,
        template="plotly_white",
        margin={"l": 60, "r": 60, "t": 50, "b": 40},
        yaxis={"title": metric or "", "domain": [0.18, 1.0]},
        yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "title": "requests"},
        yaxis3={"domain": [0.0, 0.14], "showticklabels": False, "range": [0, 0.14]},
        legend={"orientation": "h", "y": -0.12},
    )
    chart: str = fig.to_html(full_html=False, include_plotlyjs=False)
    return f'<div class="chart">{chart}</div>'


#: What each kind of incident is, and what fourloops should do about it, for a newcomer.
_STORY = {
    "covariate_shift": (
        "More traffic from one segment: the inputs change, the relation between inputs and outcome does not.",
        "input drift on the segment's column, and no performance alarm: the model still works.",
    ),
    "concept_shift": (
        "The outcome changes for the same inputs in one segment (labels flipped with a probability, "
        "in the data itself): "
        "the inputs look as before, so drift cannot see it.",
        "a performance drop in that segment once its labels arrive, then a retrained model, rolled "
        "out only if it does better.",
    ),
    "broken_field": (
        "A feature source delivers a broken column for one segment.",
        "the rows quarantined by the contract at ingestion, a data-quality or coverage alert naming "
        "it, and no retraining on broken data.",
    ),
    "bad_release": (
        "A new version trained as retrains are but with one segment's labels corrupted (its test rows "
        "are corrupted too, so its offline gates may not see it) is handed to the controller, forced "
        "past any gate it fails.",
        "its canary aborted on the segment it hurts, before it reaches everyone.",
    ),
}


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _incident_chart(incident: dict[str, Any], metric: str, *, segment: bool = False) -> str:
    """The metric over the incident's windows (``segment``: on the incident's segment alone)."""
    during = [w.get("segment") if segment else w for w in incident.get("metric") or []]
    x = [w["start"] for w, s in zip(incident.get("metric") or [], during, strict=True) if s]
    during = [s for s in during if s]
    if not during:
        return ""
    fig = go.Figure(
        [
            _line(x, [w["with"] for w in during], "served", "#2f54eb"),
            _line(x, [w["without"] for w in during], "had nobody acted", "#cf1322", "dash"),
            _line(x, [w["control"] for w in during], "no incident", "#8c8c8c", "dot"),
        ]
    )
    if incident.get("detected_at"):
        fig.add_vline(x=incident["detected_at"], line={"color": "#389e0d", "width": 1})
    where = _conditions(incident.get("segment"))
    fig.update_layout(
        height=240,
        template="plotly_white",
        margin={"l": 50, "r": 20, "t": 10, "b": 30},
        yaxis={"title": f"{metric}, {where}" if segment else metric},
        legend={"orientation": "h", "y": -0.25},
    )
    chart: str = fig.to_html(full_html=False, include_plotlyjs=False)
    return f'<div class="chart">{chart}</div>'


def _told(cost: dict[str, Any], metric: str, where: str) -> str:
    """What the incident cost, in words: served, with no incident, had nobody acted."""
    if cost.get("with") is None:
        return ""
    return (
        f"<p>Over its {cost['windows']} windows, {escape(metric)}{where} served averaged "
        f"<b>{_fmt(cost['with'])}</b>; with no incident it was {_fmt(cost['control'])}, and had "
        f"nobody acted it would have been {_fmt(cost['without'])}.</p>"
    )


def _conditions(conditions: dict[str, Any] | None) -> str:
    """``column = value`` pairs of an incident's segment or ``where``, comma-separated."""
    return ", ".join(f"{k} = {v}" for k, v in (conditions or {}).items())


def _incidents(summary: dict[str, Any]) -> str:
    metric = (summary.get("outcomes") or {}).get("metric", "")
    parts = []
    for i in summary.get("incidents", []):
        seen = (
            f"seen <b>{i['detection_delay_hours']:.0f} hours</b> later ({escape(i['detected_at'])}) by "
            f"{escape(i['detected_by'] or '')}"
            if i.get("detected_at")
            else "<b>not detected</b>"
        )
        responses = "".join(f"<li>{escape(r)}</li>" for r in i["responses"][:14]) or "<li>none</li>"
        segment = _conditions(i.get("segment")) or "all rows"
        rows = _conditions(i.get("where"))
        what, expected = _STORY.get(i["kind"], ("", ""))
        if rows:  # a concept shift narrowed inside its segment
            what += f" Here only the rows where {rows} change; the segment is where it is judged."
        until = f" until {escape(i['end'])}" if i.get("end") else ""
        cost = i.get("cost") or {}
        own = cost.get("segment") or {}
        # Where the incident hurts one segment, its own numbers first: the whole traffic dilutes them.
        own_part = (
            _told(own, metric, f" in {escape(segment)}") + _incident_chart(i, metric, segment=True)
            if own.get("with") is not None
            else ""
        )
        parts.append(
            f"<h3>{escape(i['name'])} <span class=muted>({escape(i['kind'])}, {escape(segment)}"
            + (f"; where {escape(rows)}" if rows else "")
            + ")</span></h3>"
            f"<p>{escape(what)} What fourloops should show: {escape(expected)}</p>"
            f"<p>Began {escape(i['start'])}{until}; {seen}.</p>"
            + own_part
            + _told(cost, metric, " over all traffic" if own_part else "")
            + _incident_chart(i, metric)
            + f"<p>Signals and responses:</p><ul>{responses}</ul>"
        )
    return "".join(parts) or "<p class=muted>No incident was injected.</p>"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _notes(notes: list[str]) -> str:
    """The run's notes: a few shown as they are, more folded under their count."""
    shown = "".join(f"<p class=muted>{escape(n)}</p>" for n in notes)
    if len(notes) <= 3:
        return shown
    return f"<details><summary class=muted>{len(notes)} notes on the run</summary>{shown}</details>"


def render(summary: dict[str, Any], *, title: str | None = None) -> str:
    """The report as one HTML document (see the module docstring)."""
    s = summary["settings"]
    title = title or f"fourloops simulation of {s['model']}"
    incidents = summary.get("incidents", [])
    caught = sum(1 for i in incidents if i.get("detected_at"))
    cards = [
        (f"{summary.get('requests', 0):,}", "requests served"),
        (str(len(summary.get("windows", []))), f"windows ({escape(s['window'])})"),
        (f"{caught} of {len(incidents)}" if incidents else "–", "incidents detected"),
        (str(summary.get("false_alarms", "–")), "false alarms (control run)"),
        (
            str(sum(a["kind"] in ("abort", "rollback") for a in summary.get("actions", []))),
            "aborts and rollbacks",
        ),
        (f"{summary.get('seconds', 0):.0f} s", "wall time"),
    ]
    control = summary.get("control")
    false_alarms = (
        _table(
            [
                [a["raised_at"], a["kind"], a.get("column") or "", a.get("segment") or "", a["cause"]]
                for a in control["raised"]
            ],
            ["raised", "kind", "column", "segment", "why"],
        )
        if control and control.get("raised")
        else "<p class=none>None: the control run raised no alert.</p>"
    )
    actions = _table(
        [[a["at"], a["kind"], a.get("version") or "", a["reason"]] for a in summary.get("actions", [])],
        ["at", "action", "version", "why"],
    )
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return "".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            "<meta name=viewport content='width=device-width, initial-scale=1'>",
            f"<title>{escape(title)}</title><style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body><main>",
            f"<h1>{escape(title)}</h1><p class=lead>{escape(s['start'])} to {escape(s['end'])}, windows of "
            f"{escape(s['window'])}, seed {s['seed']}; requests served {escape(s['serving'])}. "
            f"Generated {generated}.</p>",
            '<div class="cards">'
            + "".join(f"<div class=card><b>{v}</b><span>{k}</span></div>" for v, k in cards)
            + "</div>",
            _notes(summary.get("notes", [])),
            "<h2>Timeline</h2>",
            _timeline(summary),
            "<h2>Incidents</h2>",
            _incidents(summary),
            "<h2>False alarms</h2>",
            "<p class=muted>Alerts of the control run, which replayed the same history with nothing "
            "injected: what this alert policy costs a team in alerts that no injected incident "
            "explains. On real history some are the data's own changes (seasons, schedules), real "
            "but not what was injected.</p>",
            false_alarms,
            "<h2>Every action</h2>",
            actions,
            "</main></body></html>",
        ]
    )
