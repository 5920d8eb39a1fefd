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
    from fourloops.evaluation.ope import OPEResult

__all__ = ["monitor", "ope", "report"]

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


def _print_ope(result: OPEResult) -> None:
    table = Table(title=None, show_edge=False, pad_edge=False)
    for header in ("estimator", "value", f"{result.settings.get('confidence', 0.95):.0%} interval"):
        table.add_column(header)
    for name, e in result.estimates.items():
        value = "-" if e.value is None else f"{e.value:.6g}"
        interval = "-" if e.low is None or e.high is None else f"[{e.low:.6g}, {e.high:.6g}]"
        table.add_row(name.upper(), value, interval)
    out.print(f"{result.rounds:,} rounds; logged value (mean reward in the logs) {result.logged_value:.6g}")
    out.print(table)
    d = result.diagnostics
    out.print(
        f"effective sample size {d.ess:,.1f}; largest weight's share {d.max_weight_share:.2%}; "
        f"target mass on actions never logged {d.unsupported_mass:.2%}",
        highlight=False,
    )
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    if result.reason:
        out.print(f"verdict: [bold]{result.verdict.value}[/]: {result.reason}", highlight=False)
        out.print("    the numbers above are shown for inspection, not as an answer", highlight=False)
    else:
        out.print(f"verdict: [bold]{result.verdict.value}[/]", highlight=False)


@app.command()
@handle_errors
def ope(
    logs: Annotated[
        Path | None,
        typer.Option("--logs", help="Logged rounds (CSV or Parquet): action, reward, propensity."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Target policy, CSV/Parquet: item_id,pos0,pos1,.. or round_id,action,position,probability.",
        ),
    ] = None,
    action: Annotated[str, typer.Option("--action", help="Action column of the logs.")] = "action",
    position: Annotated[
        str | None, typer.Option("--position", help="Position column (default 'position' if present).")
    ] = None,
    reward: Annotated[
        str | None,
        typer.Option("--reward", help="Reward column (default 'reward'; with --model, 'label_number')."),
    ] = None,
    propensity: Annotated[
        str, typer.Option("--propensity", help="Logged probability of the logged action at its position.")
    ] = "propensity",
    round_id: Annotated[
        str | None, typer.Option("--round", help="Round id column (default 'round_id' if present).")
    ] = None,
    distribution: Annotated[
        str | None,
        typer.Option(
            "--distribution",
            help="Logged action distribution per round (JSON or struct; default 'distribution' if present): "
            "rows that do not sum to one or give the chosen action no probability are refused.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Evaluate on this model's event log instead of --logs.")
    ] = None,
    project: ProjectOpt = Path("."),
    since: Annotated[str | None, typer.Option("--since", help="With --model: events at or after.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="With --model: events before.")] = None,
    replicates: Annotated[int, typer.Option("--replicates", help="Bootstrap replicates.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    min_ess: Annotated[
        float, typer.Option("--min-ess", help="Below this effective sample size: inconclusive.")
    ] = 100.0,
    max_unsupported: Annotated[
        float,
        typer.Option(
            "--max-unsupported", help="Above this target mass on never-logged actions: inconclusive."
        ),
    ] = 0.05,
    as_json: JsonOpt = False,
) -> None:
    """Off-policy evaluation: what a target policy would have earned, from logs of another policy.

    Estimates the target policy's mean reward four ways (DM: a tabular reward model; IPS;
    self-normalised IPS; doubly robust), each with a seeded 95 % percentile bootstrap interval
    over rounds, beside diagnostics: the effective sample size (Σw)²/Σw², the largest weight's
    share of Σw, and the target policy's mass on (action, position) pairs the logs never contain.
    The importance weight of a round is the target probability of the logged action at its
    position over its logged propensity. Below --min-ess (or above --max-unsupported) the verdict
    is inconclusive, with the reason.

    On files: `fourloops ope --logs LOGS --policy POLICY`, one row per round in the logs. The
    policy is one row per action with a probability column per position (`item_id,pos0,pos1`;
    logs with no position 0 are read as 1-based, so position 1 is pos0), or one row per round
    (`round_id,action,position,probability`).

    Logs that carry each round's action distribution (a decision model's event log does) are
    checked first: a row whose distribution does not sum to one, gives the chosen action zero
    probability, or disagrees with its propensity is refused, and the error names the rows,
    the rule each breaks and how many break it.

    On a project's event log: `fourloops ope --model MODEL --policy POLICY`; the action is the
    route that answered (champion, canary, ab:<version>), the reward the label, and the policy
    one row per route with one probability column (`route,probability`). For a decision model
    (task "policy") the action is the action served, its propensity the probability the
    served policy gave it, and the policy one row per action (`action,probability`) or per
    request (`round_id,action,position,probability` with the request id as round id).
    """
    if policy is None:
        raise ConfigError("give the target policy: --policy FILE (see 'fourloops ope --help')")
    with progress(quiet=as_json) as step:
        if model is not None:
            if logs is not None:
                raise ConfigError("give --logs or --model, not both")
            start, end = parse_time(since, "--since"), parse_time(until, "--until")
            with load_project(project) as proj:
                step("evaluating the policy on the event log")
                result = proj.ope(
                    model,
                    policy,
                    reward=reward or "label_number",
                    since=start,
                    until=end,
                    replicates=replicates,
                    seed=seed,
                    min_ess=min_ess,
                    max_unsupported=max_unsupported,
                )
        else:
            if logs is None:
                raise ConfigError("give the logged rounds (--logs FILE) or a model (--model M)")
            if since is not None or until is not None:
                raise ConfigError("--since and --until apply to the event log (--model)")
            from fourloops.evaluation.ope import ope as run_ope

            step("evaluating the policy on the logs")
            result = run_ope(
                logs,
                policy,
                action=action,
                position=position,
                reward=reward or "reward",
                propensity=propensity,
                round_id=round_id,
                distribution=distribution,
                replicates=replicates,
                seed=seed,
                min_ess=min_ess,
                max_unsupported=max_unsupported,
            )
    if as_json:
        import sys

        sys.stdout.write(result.to_json(indent=2) + "\n")
    else:
        _print_ope(result)
