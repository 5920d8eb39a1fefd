"""Inference-loop commands: the prediction server, the event log, delayed labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fourloops.cli.common import (
    JsonOpt,
    ProjectOpt,
    app,
    handle_errors,
    load_project,
    out,
    parse_time,
    print_json,
    progress,
)

__all__ = ["compact", "events", "labels", "serve"]


@app.command()
@handle_errors
def serve(
    project: ProjectOpt = Path("."),
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default: server.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Port (default: server.port, 8080).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes (default: server.workers, 1); /metrics sums them.",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format", help="'text' or 'json' (one JSON object per line; default: server.log_format)."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Serve as if it were this time (ISO-8601), the clock running on from it: "
            "features are read and predictions stamped as of then.",
        ),
    ] = None,
) -> None:
    """Run the prediction server for every model (Ctrl-C drains and stops).

    A model without a champion yet answers 503 not_ready (and /readyz says so)
    until one is promoted; the server picks it up without a restart.

    SIGTERM or Ctrl-C stops accepting connections, lets in-flight requests and
    their shadow scoring finish (up to server.shutdown_timeout, 10 s by
    default), flushes the event log and exits with status 0.

    --as-of replays a past moment: the example project's features end in
    December 2013, so on today's clock every one of them has expired (each
    answer's feature_status says so); `--as-of 2013-12-31T00:00:00Z` serves
    with the features known then.
    """
    from fourloops.clock import ReplayClock

    start = parse_time(as_of, "--as-of")
    clock = ReplayClock(start) if start is not None else None
    proj = load_project(project, clock=clock)
    proj.serve(host=host, port=port, workers=workers, log_format=log_format)


@app.command()
@handle_errors
def events(
    project: ProjectOpt = Path("."),
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only events at or after (ISO-8601).")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write Parquet here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the prediction event log, with any labels joined."""
    with load_project(project) as proj, progress(quiet=as_json) as step:
        after = parse_time(since, "--since")
        step("reading the event log")
        if out_file is not None:
            written = proj.export_events(out_file, model=model, since=after)
            out.print(f"wrote {written:,} events to {out_file}")
            return
        table = proj.events(model=model, since=after)
        if as_json:
            print_json(table.to_pylist())
            return
        out.print(
            f"{table.num_rows:,} events"
            + (f" of model {model}" if model else "")
            + "; use --out FILE.parquet or --json to export them"
        )


@app.command()
@handle_errors
def labels(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet with request_id and label columns.")],
    project: ProjectOpt = Path("."),
    column: Annotated[str, typer.Option("--column", help="Column holding the label.")] = "label",
    as_json: JsonOpt = False,
) -> None:
    """Record delayed ground truth by request id (idempotent; duplicates and unknown ids counted).

    Rows without a request id or without a label are rejected, counted and
    named (their row number), never recorded, and so are labels that do not
    fit the task of the model that logged their prediction.
    """
    with load_project(project) as proj, progress(quiet=as_json) as step:
        step(f"recording the labels of {file}")
        report = proj.labels(file, column=column)
    if as_json:
        print_json(report.to_dict())
        return
    out.print(
        f"{report.inserted:,} labels recorded, {report.duplicates:,} duplicates ignored, "
        f"{report.unknown:,} for unknown request ids (kept until their prediction arrives)"
    )
    if report.rejected:
        from fourloops.ingestion.labels import LabelBatch

        shown = LabelBatch(rejected=list(report.rejections)).rejected_summary()
        out.print(f"{report.rejected:,} rows rejected ({shown})")


@app.command()
@handle_errors
def compact(
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Compact the event log into typed Parquet by model and day (incremental; safe while serving).

    Each request id is kept once (its first event); the evaluation loop reads
    these files with the batch engine. Run it from cron, or let `monitor` do it.
    The servers' per-minute counts older than two days are rolled up by hour.
    """
    with load_project(project) as proj, progress(quiet=as_json) as step:
        step("compacting the event log")
        report = proj.compact_events()
    if as_json:
        print_json(report.to_dict())
        return
    out.print(
        f"{report.events_written:,} events and {report.labels_written:,} labels compacted into "
        f"{report.files:,} file(s); {report.events_repeated:,} repeated events and "
        f"{report.labels_repeated:,} repeated labels dropped (first wins)"
        + (f"; {report.corrupt:,} damaged records skipped" if report.corrupt else "")
        + (
            f"; {report.serving_rows_rolled_up:,} per-minute serving counts rolled up by hour"
            if report.serving_rows_rolled_up
            else ""
        )
    )
