"""Alert commands of the evaluation loop: the alerts the monitor kept, and snoozing them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fourloops.cli.common import JsonOpt, ProjectOpt, app, handle_errors, load_project, out, print_json

__all__ = ["alerts", "snooze"]


@app.command()
@handle_errors
def alerts(
    model: Annotated[str | None, typer.Argument(help="Only this model's alerts.")] = None,
    project: ProjectOpt = Path("."),
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The alerts `fourloops monitor` kept (one per episode), newest first, with cause and action."""
    with load_project(project) as proj:
        rows = proj.alerts(model, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no alerts kept" + (f" for model {model}" if model else ""))
        return
    table = Table(show_edge=False, pad_edge=False)
    for header in ("first seen", "model", "severity", "kind", "where", "window", "cause"):
        table.add_column(header)
    for r in rows:
        where = " · ".join(str(x) for x in (r["column"], r["segment"]) if x) or "model"
        start = r["window_start"].strftime("%Y-%m-%d %H:%M") if r["window_start"] else "-"
        table.add_row(
            r["first_seen_at"].strftime("%Y-%m-%d %H:%M"),
            r["model"],
            r["severity"],
            r["kind"],
            where,
            f"{start} (+{r['windows'] - 1})" if r["windows"] > 1 else start,
            r["cause"],
        )
    out.print(table)


@app.command()
@handle_errors
def snooze(
    model: Annotated[str, typer.Argument(help="The model.")],
    kind: Annotated[
        str, typer.Argument(help="Alert kind: input_drift, performance, data_quality, budget, ...")
    ],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. '3d' or '12h'.")],
    column: Annotated[str | None, typer.Option("--column", help="Only this column's alerts.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    project: ProjectOpt = Path("."),
) -> None:
    """Silence one kind of alert of MODEL (one column, or all) for a while; audited.

    A snoozed alert is left out of `fourloops monitor`'s alerts and sinks until the snooze ends;
    the drift and metrics behind it are still computed and shown.
    """
    with load_project(project) as proj:
        until = proj.snooze(model, kind, duration=duration, column=column, reason=reason)
    scope = f" of column {column}" if column else ""
    out.print(f"{kind} alerts{scope} of {model} snoozed until {until.isoformat()}")
