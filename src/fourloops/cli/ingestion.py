"""Ingestion-loop commands: validate sources, materialise features, read them online, build datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fourloops.cli.common import (
    JsonOpt,
    ProjectOpt,
    app,
    handle_errors,
    human_duration,
    load_project,
    out,
    parse_time,
    print_json,
    progress,
)
from fourloops.errors import SchemaError

__all__ = ["dataset", "lookup", "materialize", "parse_limit", "validate"]


@app.command()
@handle_errors
def validate(
    source: Annotated[
        str | None,
        typer.Argument(help="Feature view, source name or source path (default: all views)."),
    ] = None,
    project: ProjectOpt = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Re-validate files already ingested.")] = False,
    max_quarantined: Annotated[
        str | None,
        typer.Option(
            "--max-quarantined",
            help="Fail (exit 4) when more rows than this were quarantined: a count (100) or a share (1%).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the contract on a source: valid rows to the offline store, bad rows to quarantine.

    Prints rows per outcome, failures by column and rule with examples, and
    schema drift since the previous delivery. Quarantining rows is the
    validator doing its job, not a failure: the exit code is 0 unless
    --max-quarantined is given and a delivery exceeds it (exit 4).
    """
    limit = parse_limit(max_quarantined)
    proj = load_project(project)
    with progress(quiet=as_json) as step:
        reports = proj.validate(source, force=force, progress=step)
    if as_json:
        print_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            _print_report(r)
    over = [r for r in reports if limit is not None and _exceeds(r.quarantined, r.rows, limit)]
    if over:
        if not as_json:
            names = ", ".join(f"{r.view} ({r.quarantined:,} of {r.rows:,})" for r in over)
            out.print(f"[bold red]failed delivery:[/] more quarantined rows than {max_quarantined}: {names}")
        raise typer.Exit(4)


def parse_limit(text: str | None) -> tuple[float, bool] | None:
    """``--max-quarantined``: ``(count, False)`` for ``100``, ``(share, True)`` for ``1%``."""
    if text is None:
        return None
    value = text.strip()
    share = value.endswith("%")
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        raise SchemaError(
            f"--max-quarantined {text!r}: give a number of rows (100) or a share (1%)"
        ) from None
    if number < 0 or (share and number > 100):
        raise SchemaError(f"--max-quarantined {text!r}: must be between 0 and 100% or a count >= 0")
    return (number / 100, True) if share else (number, False)


def _exceeds(quarantined: int, rows: int, limit: tuple[float, bool]) -> bool:
    value, share = limit
    return (quarantined / rows if rows else 0.0) > value if share else quarantined > value


def _print_report(report: Any) -> None:
    skipped = sum(1 for f in report.files if f.skipped)
    out.print(
        f"[bold]{report.view}[/] (contract {report.contract_version}): {report.rows:,} rows read, "
        f"[green]{report.valid:,} valid[/], [red]{report.quarantined:,} quarantined[/]"
        + (f", {skipped} file(s) unchanged since last run" if skipped else "")
    )
    failures = report.failures()
    if failures:
        table = Table("column", "rule", "rows", "examples")
        for f in failures:
            table.add_row(f["column"], f["rule"], f"{f['rows']:,}", ", ".join(map(str, f["examples"])))
        out.print(table)
    for d in report.drift:
        colour = "red" if d.get("severity") == "error" else "yellow"
        out.print(f"  [{colour}]schema drift:[/] {d.get('message')}")
    for f in report.files:
        if f.quarantine_path:
            out.print(f"  quarantine: {f.quarantine_path}")


@app.command()
@handle_errors
def materialize(
    project: ProjectOpt = Path("."),
    start: Annotated[
        str | None, typer.Option("--start", help="Only rows knowable after this time (ISO-8601).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Values as known at this time (default: now).")
    ] = None,
    view: Annotated[
        list[str] | None, typer.Option("--view", help="Only this feature view (repeatable).")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Ignore the watermark and read everything.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy the latest valid feature values into the online store (incremental by default)."""
    proj = load_project(project)
    with progress(quiet=as_json) as step:
        step("materialising features into the online store")
        results = proj.materialize(
            start=parse_time(start, "--start"),
            end=parse_time(end, "--end"),
            views=view,
            incremental=not full,
        )
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    for r in results:
        out.print(
            f"{r.view}: {r.rows_read:,} rows read, {r.written:,} keys written, "
            f"{r.skipped_older:,} skipped (store already newer); window ({r.start or '-'}, {r.end}]"
        )


@app.command()
@handle_errors
def dataset(
    model: Annotated[
        str | None,
        typer.Argument(help="Model whose features, entity rows and timestamp to use."),
    ] = None,
    entities: Annotated[
        Path | None,
        typer.Option("--entities", help="Parquet/CSV with join keys and a time column (default: MODEL's)."),
    ] = None,
    out_file: Annotated[Path, typer.Option("--out", help="Parquet file to write.")] = Path("dataset.parquet"),
    features: Annotated[
        str | None, typer.Option("--features", help="Comma-separated view:field list (default: MODEL's).")
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(
            "--timestamp", help="Time column of the entity rows (default: MODEL's, or event_timestamp)."
        ),
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Label column: run the leakage check.")] = None,
    full_names: Annotated[bool, typer.Option("--full-names", help="Name columns view__field.")] = False,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Write a point-in-time-correct training frame: each row sees only values known at its time."""
    proj = load_project(project)
    with progress(quiet=as_json) as step:
        step("joining")
        result = proj.dataset(
            entities,
            features=features,
            timestamp=timestamp,
            out=out_file,
            full_names=full_names,
            label=label,
            model=model,
        )
    if as_json:
        print_json(result.to_dict())
        return
    out.print(f"wrote {result.rows:,} rows to {out_file}")
    for view, counts in result.stats.get("views", {}).items():
        out.print(f"  {view}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items() if isinstance(v, int)))
    for finding in result.leakage:
        out.print(f"  [bold red]leakage:[/] {finding.message}")


@app.command()
@handle_errors
def lookup(
    features: Annotated[str, typer.Option("--features", help="Comma-separated view:field list.")],
    key: Annotated[list[str], typer.Option("--key", help="Join key as name=value (repeatable).")],
    at: Annotated[str | None, typer.Option("--at", help="Read as of this time (default: now).")] = None,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Read features of one entity from the online store, with their age and status."""
    row: dict[str, Any] = {}
    for item in key:
        name, sep, value = item.partition("=")
        if not sep:
            raise SchemaError(f"--key {item!r}: use name=value")
        row[name] = int(value) if value.lstrip("-").isdigit() else value
    proj = load_project(project)
    [result] = proj.online_features([row], features=features, now=parse_time(at, "--at"))
    if as_json:
        print_json(result.to_dict())
        return
    for view, status in result.status.items():
        age = result.age_seconds.get(view)
        out.print(f"{view}: {status}" + (f" (age {human_duration(age)})" if age is not None else ""))
    for name, value in result.values.items():
        out.print(f"  {name} = {value!r}")
