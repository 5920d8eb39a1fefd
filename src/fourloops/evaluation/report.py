"""The monitoring report: one self-contained HTML file, with charts, that opens offline.

Charts are drawn by Plotly, whose JavaScript ships inside its wheel and is
inlined once into the page (no CDN, nothing fetched). The page reads top
down: what needs attention (alerts with their evidence and playbook), then
performance (realised beside estimated, immature windows shaded), drift over
time (features sorted by importance times drift), the segments, and the
data's health.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

if TYPE_CHECKING:
    from fourloops.evaluation.alerts import Alert
    from fourloops.evaluation.monitor_result import MonitorResult, WindowResult
    from fourloops.evaluation.pooling import PooledMetric

__all__ = ["STYLE", "render"]

STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#fafbfc}
main{max-width:76rem;margin:0 auto;padding:1.5rem 1.25rem 4rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{margin-top:2.4rem;border-bottom:1px solid #d6dae3;padding-bottom:.25rem}
p.lead{color:#4a5263;margin:.2rem 0 1rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{background:#fff;border:1px solid #d6dae3;border-radius:8px;padding:.6rem .9rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}.card span{color:#4a5263;font-size:.85rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem;background:#fff;width:100%}
th,td{border:1px solid #d6dae3;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sev{font-weight:600;border-radius:4px;padding:0 .35rem;font-size:.8rem;white-space:nowrap}
.critical{background:#fde2e1;color:#8c1d18}.warning{background:#fff4d6;color:#7a5200}.info{background:#e8eefc;color:#24418f}
.none{color:#1a7f37;font-weight:600}.muted{color:#6b7385}
.chart{background:#fff;border:1px solid #d6dae3;border-radius:8px;margin:.6rem 0}
details summary{cursor:pointer;color:#24418f}code{background:#f2f4f8;padding:0 .25rem}
"""
_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "legend": {"orientation": "h", "y": -0.2},
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def _label(window: WindowResult) -> str:
    b = window.bounds
    if b.start is not None:
        return (
            b.start.strftime("%Y-%m-%d %H:%M")
            if b.start.hour or b.start.minute
            else b.start.strftime("%Y-%m-%d")
        )
    if b.first_row is not None:
        return f"rows {b.first_row:,}–{(b.last_row if b.last_row is not None else b.first_row):,}"
    return f"window {b.index}"


def _head(*names: str) -> str:
    return "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"


def _chart(fig: go.Figure, height: int = 360) -> str:
    fig.update_layout(height=height, **_LAYOUT)
    html: str = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
    return f'<div class="chart">{html}</div>'


def _alert_row(a: Alert, labels: dict[int, str]) -> str:
    evidence = ", ".join(f"{k}={_fmt(v)}" for k, v in a.evidence.items() if not isinstance(v, dict | list))
    where = " · ".join(x for x in (a.column, a.segment) if x) or "model"
    more = f" (+{len(a.windows) - 1})" if len(a.windows) > 1 else ""
    return (
        f'<tr><td><span class="sev {a.severity}">{a.severity}</span></td><td>{escape(a.kind)}</td>'
        f"<td>{escape(where)}</td><td>{escape(labels.get(a.window, str(a.window)))}{more}</td>"
        f"<td>{escape(a.cause)}<details><summary>evidence</summary><code>{escape(evidence)}</code></details></td>"
        f"<td>{escape(a.action)}</td></tr>"
    )


def _alerts(result: MonitorResult, labels: dict[int, str]) -> str:
    """Alerts, most severe first and, within a severity, the strongest (importance × effect) first;
    informational ones folded away."""
    if not result.alerts:
        return '<p class="none">No alerts: nothing crossed a rule in any window.</p>'
    order = {"critical": 0, "warning": 1, "info": 2}
    importance = result.settings.get("importance") or {}

    def strength(a: Alert) -> float:
        effect = a.evidence.get("effect")
        weight = float(importance.get(a.column, 1.0)) if a.column else 1.0
        return -(float(effect) * weight) if isinstance(effect, int | float) else 0.0

    ranked = sorted(
        result.alerts, key=lambda a: (order.get(a.severity, 3), a.segment is not None, strength(a))
    )
    head = f"<thead>{_head('severity', 'kind', 'where', 'first window', 'why', 'what to do')}</thead>"
    main = [_alert_row(a, labels) for a in ranked if a.severity != "info"]
    info = [_alert_row(a, labels) for a in ranked if a.severity == "info"]
    parts = [f"<table>{head}<tbody>{''.join(main)}</tbody></table>"] if main else []
    if info:
        parts.append(
            f"<details><summary>{len(info)} informational alert{'s' if len(info) > 1 else ''} "
            "(drift on less important features, per-segment changes, the domain classifier)</summary>"
            f"<table>{head}<tbody>{''.join(info)}</tbody></table></details>"
        )
    return "".join(parts)


def _performance(result: MonitorResult, labels: list[str]) -> str:
    metric = result.settings.get("primary")
    windows = result.windows
    if not metric or not any(metric in w.metrics or metric in w.estimated for w in windows):
        return '<p class="muted">No model output was given: performance is not monitored.</p>'
    fig = go.Figure()
    real = [w.metrics.get(metric) for w in windows]
    est = [w.estimated.get(metric) for w in windows]
    for i, r in enumerate(real):
        if r is not None and r.maturity == "pending":
            fig.add_vrect(
                x0=i - 0.5, x1=i + 0.5, fillcolor="#e6e8ee", opacity=0.6, line_width=0, layer="below"
            )
    xs = list(range(len(windows)))
    if any(e is not None for e in est):
        lo = [e.low if e else None for e in est]
        hi = [e.high if e else None for e in est]
        fig.add_trace(
            go.Scatter(
                x=xs + xs[::-1],
                y=hi + lo[::-1],
                fill="toself",
                fillcolor="rgba(250,140,22,.15)",
                line={"width": 0},
                name="estimated interval",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[e.value if e else None for e in est],
                name=f"estimated {metric}",
                line={"color": "#fa8c16", "dash": "dash"},
            )
        )
    if any(r is not None and r.value.value is not None for r in real):
        values = [r.value.value if r else None for r in real]
        err_hi = [
            (r.value.high - r.value.value)
            if r and r.value.high is not None and r.value.value is not None
            else None
            for r in real
        ]
        err_lo = [
            (r.value.value - r.value.low)
            if r and r.value.low is not None and r.value.value is not None
            else None
            for r in real
        ]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=values,
                name=f"realised {metric}",
                mode="lines+markers",
                line={"color": "#2f54eb"},
                error_y={"type": "data", "array": err_hi, "arrayminus": err_lo, "thickness": 1},
            )
        )
    reference = result.reference.get("metrics", {}).get(metric, {}).get("value")
    if reference is not None:
        fig.add_hline(
            y=reference,
            line={"color": "#52c41a", "dash": "dot"},
            annotation_text=f"reference {reference:.3g}",
            annotation_position="top left",
        )
    fig.update_xaxes(tickvals=xs, ticktext=labels, title="window")
    fig.update_yaxes(title=metric)
    note = (
        '<p class="muted">Shaded windows are <b>pending</b>: their labels have not matured, so only the '
        "estimate (from the scores alone) is shown. Bars and the band are 95% intervals: the realised "
        "value's from its labelled rows (wider where rows of one hour moved together), the estimate's "
        "where the realised value should fall if only the inputs changed.</p>"
    )
    return _chart(fig) + note


def _drift(result: MonitorResult, labels: list[str]) -> str:
    windows = [w for w in result.windows if w.drift]
    if not windows:
        return '<p class="muted">No window had enough rows to test.</p>'
    columns = list(windows[0].drift)
    importance = result.settings.get("importance") or {}

    def score(column: str) -> float:
        effects = [
            w.drift[column].headline.effect / max(w.drift[column].headline.threshold, 1e-9)
            for w in windows
            if column in w.drift
        ]
        return max(effects or [0.0]) * float(importance.get(column, 1.0))

    columns.sort(key=score, reverse=True)
    z, text = [], []
    for column in columns:
        row, row_text = [], []
        for w in windows:
            d = w.drift.get(column)
            ratio = None if d is None or d.note else d.headline.effect / max(d.headline.threshold, 1e-9)
            row.append(None if ratio is None else min(ratio, 3.0))
            row_text.append(
                "" if d is None else ("drifted" if d.drifted else ("negligible" if d.significant else ""))
            )
        z.append(row)
        text.append(row_text)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[labels[result.windows.index(w)] for w in windows],
            y=columns,
            text=text,
            texttemplate="%{text}",
            zmin=0,
            zmax=3,
            colorscale=[[0, "#f6f8fb"], [0.33, "#ffe58f"], [1, "#cf1322"]],
            colorbar={"title": "effect / floor"},
            hovertemplate="%{y} · %{x}<br>effect / floor %{z:.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(type="category")  # window labels, not a time axis
    height = max(260, 26 * len(columns) + 120)
    intro = (
        "<p>Each cell is a column's effect size in a window divided by its floor (1 or more and significant "
        "after the correction over all tests: <b>drifted</b>). Columns are sorted by importance × drift.</p>"
    )
    return intro + _chart(fig, height)


def _segments(result: MonitorResult) -> str:
    metric = result.settings.get("primary")
    keys = sorted({k for w in result.windows for k in w.segments})
    if not keys:
        return '<p class="muted">No segments were asked for.</p>'
    rows = []
    for key in keys:
        present = [(w, w.segments[key]) for w in result.windows if key in w.segments]
        total = sum(s.rows for _, s in present)
        drifted = sorted({c for _, s in present for c, d in s.drift.items() if d.drifted})
        drift_windows = sum(any(d.drifted for d in s.drift.values()) for _, s in present)
        mature = [
            (w, s.metrics[metric])
            for w, s in present
            if metric and metric in s.metrics and s.metrics[metric].value.value is not None
        ]
        latest = _interval(mature[-1][1].value) if mature else "–"
        worst = "–"
        if mature and metric:
            better_high = metric not in {"log_loss", "brier", "mae", "rmse", "ece"}
            w, m = (min if better_high else max)(mature, key=lambda pair: pair[1].value.value or 0.0)
            worst = f"{_interval(m.value)} <span class=muted>({escape(_label(w))})</span>"
        estimated = [s.estimated[metric] for _, s in present if metric and metric in s.estimated]
        last_estimate = _interval(estimated[-1]) if estimated else "–"
        pools = [s.pooled[metric].pools for _, s in present if metric and metric in s.pooled]
        pooled = _pooled(pools[-1][-1]) if pools and pools[-1] else "–"
        reference = next((m.reference for _, m in mature if m.reference is not None), None)
        span = f" ({drift_windows} windows)" if drift_windows else ""
        rows.append(
            f"<tr><td>{escape(key)}</td><td class=num>{total:,}</td>"
            f"<td>{escape(', '.join(drifted)) or '–'}{span}</td>"
            f"<td class=num>{latest}</td><td class=num>{worst}</td><td class=num>{pooled}</td>"
            f"<td class=num>{last_estimate}</td>"
            f"<td class=num>{_fmt(reference)}</td></tr>"
        )
    name = metric or "metric"
    head = _head(
        "segment",
        "rows",
        "drifted columns",
        f"{name}, latest window",
        f"{name}, worst window",
        f"{name}, latest pool",
        "estimated, latest",
        "reference",
    )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _pooled(p: PooledMetric) -> str:
    """A segment's metric on its longest pool of windows: value, standard error, windows and labels."""
    if p.value is None:
        return "–"
    spread = f" ± {p.se:.3f}" if p.se is not None else ""
    count = f"{len(p.windows)} window{'s' if len(p.windows) > 1 else ''}, {p.rows:,} labels"
    return f"{p.value:.3f}{spread} <span class=muted>({count})</span>"


def _interval(v: Any) -> str:
    if v is None or v.value is None:
        return "–"
    return f"{v.value:.3f} [{_fmt(v.low)}, {_fmt(v.high)}]"


def _health(result: MonitorResult) -> str:
    ref = result.reference.get("health", {})
    columns = sorted({c for w in result.windows for c in w.health})
    rows = []
    for column in columns:
        shares = [w.health[column] for w in result.windows if column in w.health and w.bounds.rows]
        worst = {
            k: max((s.get(k, 0.0) for s in shares), default=0.0)
            for k in ("null_share", "default_share", "unknown_share")
        }
        r = ref.get(column, {})
        rows.append(
            f"<tr><td>{escape(column)}</td>"
            + "".join(
                f"<td class=num>{r.get(k, 0.0):.2%} → {worst[k]:.2%}</td>"
                for k in ("null_share", "default_share", "unknown_share")
            )
            + "</tr>"
        )
    head = _head("column", "null (reference → worst window)", "default value", "unseen category")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def render(result: MonitorResult, *, title: str | None = None) -> str:
    """The report as one HTML document (see the module docstring)."""
    labels = [_label(w) for w in result.windows]
    by_index = {w.index: labels[i] for i, w in enumerate(result.windows)}
    settings = result.settings
    title = title or "fourloops monitoring report"
    counts = {s: sum(a.severity == s for a in result.alerts) for s in ("critical", "warning", "info")}
    drifted_windows = sum(bool(w.drifted()) for w in result.windows)
    cards = [
        (f"{len(result.windows):,}", f"windows ({escape(str(settings.get('window') or 'all rows'))})"),
        (f"{result.reference.get('rows', 0):,}", "reference rows"),
        (f"{sum(w.bounds.rows for w in result.windows):,}", "current rows"),
        (str(drifted_windows), "windows with drift"),
        (str(counts["critical"]), "critical alerts"),
        (str(counts["warning"]), "warnings"),
    ]
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.notes)
    drift = settings.get("drift", {})
    method_note = (
        f"Drift: {escape(', '.join(drift.get('methods') or ['ks (numbers)', 'chi2 (categories)']))}; "
        f"alpha {drift.get('alpha')} after Benjamini–Hochberg over each window's tests; "
        f"at least {drift.get('min_rows')} rows per verdict."
    )
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return "".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            "<meta name=viewport content='width=device-width, initial-scale=1'>",
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body><main>",
            f"<h1>{escape(title)}</h1><p class=lead>{method_note} Generated {generated}.</p>",
            '<div class="cards">'
            + "".join(f"<div class=card><b>{v}</b><span>{k}</span></div>" for v, k in cards)
            + "</div>",
            f"<ul>{notes}</ul>" if notes else "",
            "<h2>Alerts</h2>",
            _alerts(result, by_index),
            "<h2>Performance</h2>",
            _performance(result, labels),
            "<h2>Drift over time</h2>",
            _drift(result, labels),
            "<h2>Segments</h2>",
            _segments(result),
            "<h2>Data health</h2>",
            _health(result),
            "</main></body></html>",
        ]
    )
