"""Evaluation-loop commands: the monitor (on the event log, or on two files) and its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fourloops.cli.common import (
    JsonOpt,
    ProjectOpt,
    app,
    handle_errors,
    load_project,
    out,
    parse_time,
    progress,
)
from fourloops.errors import ConfigError

if TYPE_CHECKING:
    from fourloops.evaluation.monitor_result import MonitorResult

__all__ = ["monitor", "report"]

#: Exit code of ``monitor --fail-on`` when an alert reached the severity.
ALERTED = 4
_SEVERITY = {"info": 0, "warning": 1, "critical": 2}


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _window(value: str | None) -> str | int | None:
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


def _print(result: MonitorResult) -> None:
    metric = result.settings.get("primary")
    table = Table(title=None, show_edge=False, pad_edge=False)
    for header in ("window", "rows", "status", "drifted", "prediction"):
        table.add_column(header)
    if metric:
        table.add_column(metric)
        table.add_column("estimated")
    for w in result.windows:
        b = w.bounds
        label = (
            b.start.strftime("%Y-%m-%d %H:%M")
            if b.start
            else (f"rows {b.first_row}-{b.last_row}" if b.first_row is not None else "all rows")
        )
        pred = w.prediction_drift
        cells = [
            label,
            f"{b.rows:,}",
            b.status.value,
            ", ".join(w.drifted()) or "-",
            "drifted" if pred is not None and pred.drifted else "-",
        ]
        if metric:
            m = w.metrics.get(metric)
            e = w.estimated.get(metric)
            if m is None or m.value.value is None:
                cells.append(m.maturity if m is not None else "-")
            else:
                cells.append(f"{m.value.value:.3f} [{m.value.low:.3f}, {m.value.high:.3f}]")
            cells.append("-" if e is None or e.value is None else f"{e.value:.3f}")
        table.add_row(*cells)
    out.print(table)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    if not result.alerts:
        out.print("no alerts")
    for a in result.alerts:
        out.print(a.line(), highlight=False)
        out.print(f"    what to do: {a.action}", highlight=False)


@app.command()
@handle_errors
def monitor(
    model: Annotated[str | None, typer.Argument(help="Model whose event log to monitor.")] = None,
    project: ProjectOpt = Path("."),
    reference: Annotated[
        Path | None, typer.Option("--reference", help="Reference data (Parquet or CSV) instead of a model.")
    ] = None,
    current: Annotated[
        Path | None, typer.Option("--current", help="Current data to judge (with --reference).")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option("--window", help="'1d', '7d', '12h' (by time) or a row count such as 5000 (by rows)."),
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only rows at or after (ISO-8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only rows before (ISO-8601).")] = None,
    segments: Annotated[
        str | None, typer.Option("--segments", help="Columns judged per value, comma-separated.")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="Model version (default: the champion).")
    ] = None,
    route: Annotated[
        str, typer.Option("--route", help="champion, canary, shadow or ab:<version>.")
    ] = "champion",
    timestamp: Annotated[
        str | None, typer.Option("--timestamp", help="Time column of the current data.")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Label column (empty: not arrived yet).")
    ] = None,
    score: Annotated[str | None, typer.Option("--score", help="Probability of the positive class.")] = None,
    prediction: Annotated[
        str | None, typer.Option("--prediction", help="Prediction column (a number or a class).")
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Columns to monitor, comma-separated.")
    ] = None,
    methods: Annotated[
        str | None,
        typer.Option(
            "--methods", help="Drift methods: ks, chi2, psi, jensen_shannon, wasserstein (first: verdict)."
        ),
    ] = None,
    alpha: Annotated[
        float | None, typer.Option("--alpha", help="False-alarm rate per window (0.05).")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the HTML report here.")] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on", help="Exit 4 when an alert is at least this severe: info, warning, critical."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift, data health, realised and estimated performance, and alerts, window by window.

    On a project: `fourloops monitor MODEL` judges the champion's served predictions (events
    deduplicated by request id, labels joined as they arrived) against the reference profiled
    from the version's test rows; a window whose labels are not all due yet is pending.

    On two files, no project needed: `fourloops monitor --reference REF --current CUR`, with
    --timestamp and --window to cut the current data by time, or --window 5000 by rows.

    A column drifts when its two-sample test is significant after the Benjamini-Hochberg
    correction over the window's tests (alpha 0.05) and its effect passes a floor (a tiny
    shift in a huge window is not drift); windows of fewer than 30 rows get no verdict.
    """
    from fourloops.evaluation.drift.policy import DriftPolicy

    if fail_on is not None and fail_on not in _SEVERITY:
        raise ConfigError(f"--fail-on must be info, warning or critical, got {fail_on!r}")
    policy = DriftPolicy(alpha=alpha) if alpha is not None else None
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with progress(quiet=as_json) as step:
        if reference is not None or current is not None:
            if reference is None or current is None or model is not None:
                raise ConfigError("give --reference and --current together, without a MODEL")
            from fourloops.evaluation.monitor import monitor as run_monitor

            step("monitoring the current data")
            result = run_monitor(
                reference,
                current,
                timestamp=timestamp,
                window=_window(window),
                label=label,
                score=score,
                prediction=prediction,
                segments=_names(segments) or (),
                columns=_names(columns),
                methods=_names(methods),
                policy=policy,
                since=start,
                until=end,
            )
        else:
            if model is None:
                raise ConfigError(
                    "give a MODEL, or --reference and --current (see 'fourloops monitor --help')"
                )
            with load_project(project) as proj:
                step("monitoring the event log")
                result = proj.monitor(
                    model,
                    window=_window(window) or "1d",
                    since=start,
                    until=end,
                    version=version,
                    route=route,
                    segments=_names(segments),
                    methods=_names(methods),
                    policy=policy,
                )
        if out_file is not None:
            step("writing the report")
            title = f"{model}: monitoring report" if model else None
            result.to_html(out_file, title=title)
    if as_json:
        import sys

        sys.stdout.write(result.to_json(indent=2) + "\n")
    else:
        _print(result)
        if out_file is not None:
            out.print(f"report written to {out_file}")
    if fail_on is not None and any(_SEVERITY[a.severity] >= _SEVERITY[fail_on] for a in result.alerts):
        raise typer.Exit(ALERTED)


@app.command()
@handle_errors
def report(
    model: Annotated[str, typer.Argument(help="Model to report on.")],
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    project: ProjectOpt = Path("."),
    window: Annotated[str | None, typer.Option("--window", help="'1d', '7d' or a row count.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only events at or after (ISO-8601).")] = None,
) -> None:
    """Write a self-contained HTML monitoring report of MODEL (opens offline; charts included)."""
    with load_project(project) as proj, progress() as step:
        step("monitoring the event log")
        result = proj.report(
            model, out_file, window=_window(window) or "1d", since=parse_time(since, "--since")
        )
    out.print(f"report written to {out_file}: {len(result.windows)} windows, {len(result.alerts)} alerts")
