"""``fourloops simulate``: replay the project's own history through all four loops, incidents injected."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fourloops.cli.common import ProjectOpt, app, handle_errors, load_project, out, parse_time, progress

__all__ = ["simulate"]


@app.command()
@handle_errors
def simulate(
    start: Annotated[
        str | None,
        typer.Option("--start", help="Start of the replay (ISO-8601; default: four weeks before --end)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="End of the replay (ISO-8601; default: the day after the newest row)."),
    ] = None,
    project: ProjectOpt = Path("."),
    model: Annotated[
        str | None, typer.Option("--model", help="The model (needed when the project has several).")
    ] = None,
    window: Annotated[
        str, typer.Option("--window", help="Monitoring and controller cadence, e.g. '1d'.")
    ] = "1d",
    incidents: Annotated[
        Path | None,
        typer.Option("--incidents", help="TOML file of incidents to inject (see --help of the docs)."),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for summary.json, report.html and the run copies.")
    ] = Path("simulation-out"),
    materialize_every: Annotated[
        str, typer.Option("--materialize-every", help="Online-store materialisation cadence.")
    ] = "1h",
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of every random choice (same seed, same run).")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Replay the project's history on a simulated clock through all four loops.

    Works on a copy of the project under --out (this project is not touched): if the model has no
    champion one is trained on the data before --start; feature rows are delivered as they arrived
    and validated; every entity row in the period becomes a request at its timestamp, sent in
    process through the same ASGI app as `fourloops serve`; labels arrive at their availability
    time (posted in hourly batches); at each window the monitor runs and the controller ticks
    (alerts, retraining, rollouts, aborts), with the project's own fl.Retrain and fl.Rollout.

    With --incidents, a control run and an incident run are compared: for each incident, when it
    began, when fourloops first detected it and every response; alerts of the control run are
    counted as false alarms. Incident kinds: covariate_shift, concept_shift, broken_field,
    bad_release. Same seed, same results (but the latency the events record).
    """
    first = parse_time(start, "--start") if start else None
    last = parse_time(end, "--end") if end else None
    with load_project(project) as proj, progress(quiet=as_json) as step:
        result = proj.simulate(
            start=first,
            end=last,
            out=out_dir,
            model=model,
            window=window,
            incidents=incidents,
            materialize_every=materialize_every,
            seed=seed,
            progress=step,
        )
    summary = result.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
        return
    out.print(
        f"{summary['requests']:,} requests over {len(summary['windows'])} windows "
        f"in {summary['seconds']:.0f} s; "
        f"{len(summary['raised'])} alerts, {len(summary['actions'])} actions"
        + (
            f"; {summary['false_alarms']} false alarms in the control run"
            if "false_alarms" in summary
            else ""
        ),
        highlight=False,
    )
    for incident in summary.get("incidents", []):
        seen = (
            f"detected after {incident['detection_delay_hours']:.0f} h by {incident['detected_by']}"
            if incident["detected_at"]
            else "NOT detected"
        )
        out.print(
            f"  {incident['name']} ({incident['kind']}, from {incident['start']}): {seen}", highlight=False
        )
    out.print(f"report: {out_dir / 'report.html'}; summary: {out_dir / 'summary.json'}")
