"""Adaptation-loop commands: train, the registry, promote, roll back, verify, import from MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
    print_json,
    progress,
)
from fourloops.definitions.lifecycle import Alias
from fourloops.errors import ConfigError, SchemaError

__all__ = [
    "archive",
    "compare",
    "import_mlflow",
    "judge",
    "models",
    "promote",
    "rollback",
    "tag",
    "train",
    "verify",
]


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
    proj = load_project(project)
    with progress(quiet=as_json) as step:
        if reproduce is not None:
            result = proj.reproduce(model, reproduce, progress=step)
        else:
            result = proj.train(
                model,
                params=_parse_params(param, params_file),
                seed=seed,
                cutoff=parse_time(cutoff, "--cutoff"),
                progress=step,
            ).to_dict()
    if as_json:
        print_json(result)
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
    _print_judgement(proj, model, result["version"], result["metrics"], result["gates"], "registered")


def _print_judgement(
    proj: Any, model: str, version: int, metrics: dict[str, Any], gates: list[dict[str, Any]], what: str
) -> None:
    """A version's primary metric beside the baseline, and every gate with its numbers."""
    passed = all(v["passed"] for v in gates)
    out.print(
        f"[bold]{model} v{version}[/] {what}; gates " + ("[green]passed[/]" if passed else "[red]failed[/]")
    )
    test, base = metrics.get("test", {}), metrics.get("baseline", {})
    primary = proj.model(model).primary_metric
    # A decision model's baseline is the policy that logged its rounds.
    baseline = "logging policy" if "policy" in metrics else "do-nothing baseline"
    out.print(f"  {primary}: {test.get(primary)!s:.8} ({baseline} {base.get(primary)!s:.8})")
    for v in gates:
        mark = "[green]✓[/]" if v["passed"] else "[red]✗[/]"
        out.print(f"  {mark} {v['gate']}: {v['message']}")


@app.command()
@handle_errors
def judge(
    model: Annotated[str, typer.Argument(help="Model (defined in the project).")],
    version: Annotated[str, typer.Argument(help="Version number or alias.")],
    project: ProjectOpt = Path("."),
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the intervals (recorded).")] = 0,
    cutoff: Annotated[str | None, typer.Option("--cutoff", help="Judge as of this time (ISO-8601).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a registered version on the model's test rows and run its gates, as training does.

    For a version trained elsewhere (import-mlflow) or to judge one again on
    newer data. Its metrics and gate verdicts are replaced (the old ones stay
    in the audit log); a version that passes can be promoted without --force.
    """
    proj = load_project(project)
    with progress(quiet=as_json) as step:
        result = proj.judge(model, version, seed=seed, cutoff=parse_time(cutoff, "--cutoff"), progress=step)
    if as_json:
        print_json(result.to_dict())
        return
    _print_judgement(proj, model, result.version, result.metrics, result.gates, "judged")
    if not result.passed:
        raise typer.Exit(1)


@app.command()
@handle_errors
def models(
    model: Annotated[str | None, typer.Argument(help="Show one model's versions.")] = None,
    version: Annotated[
        str | None, typer.Argument(help="Show one version (a number or an alias): metrics, gates, lineage.")
    ] = None,
    project: ProjectOpt = Path("."),
    at: Annotated[
        str | None,
        typer.Option("--at", help="With MODEL: how its traffic was routed at this time (ISO-8601)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List models, one model's versions, or one version in full.

    Without arguments: every registered model. With MODEL: its versions with
    aliases, stages and gate results. With MODEL VERSION: that version's
    metrics, every gate verdict with its numbers, its lineage and artifact.
    With MODEL --at T: which version was champion, canary (at what share) and
    shadow at time T, and the journal entry (who, when, why) that made it so.
    """
    proj = load_project(project)
    if at is not None:
        if model is None:
            raise ConfigError("--at needs a MODEL")
        when = parse_time(at, "--at")
        assert when is not None
        routed = proj.routing_at(model, when)
        if as_json:
            print_json(routed.to_dict())
            return
        canary = f"v{routed.canary} at {routed.canary_share:.0%}" if routed.canary else "none"
        out.print(
            f"{model} at {when.isoformat()}: champion v{routed.champion}, canary {canary}, "
            f"shadow {f'v{routed.shadow}' if routed.shadow else 'none'}, stage {routed.stage.value} "
            f"(revision {routed.revision})",
            highlight=False,
        )
        return
    if model is not None and version is not None:
        _print_version(proj, model, version, as_json)
        return
    if model is None:
        summaries = proj.registered_models()
        if as_json:
            print_json([m.to_dict() for m in summaries])
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
    aliases = proj.aliases(model)
    if as_json:
        print_json({"model": model, "aliases": aliases, "versions": [v.to_dict() for v in versions]})
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
    results = load_project(project).verify(model)
    if as_json:
        print_json(results)
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
    change = load_project(project).promote(model, version, alias=alias, reason=reason, force=force)
    if as_json:
        print_json(change.to_dict())
        return
    out.print(f"{model}: {alias} {_v(change.previous)} -> {_v(change.current)}")


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
    change = load_project(project).rollback(model, alias=alias, reason=reason)
    if as_json:
        print_json(change.to_dict())
        return
    out.print(f"{model}: {alias} {_v(change.previous)} -> {_v(change.current)}")


@app.command("import-mlflow")
@handle_errors
def import_mlflow(
    path: Annotated[Path, typer.Argument(help="An MLflow model folder (holds an MLmodel file).")],
    name: Annotated[str, typer.Option("--name", help="Register as this model.")],
    task: Annotated[
        str | None,
        typer.Option(
            "--task", help="binary, multiclass or regression (default: the defined model's, or binary)."
        ),
    ] = None,
    allow_pickle: Annotated[
        bool,
        typer.Option("--allow-pickle", help="Accept a pickled model (runs its code: trust it)."),
    ] = False,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Register an existing MLflow model folder as a new version (re-saved in a native format).

    When NAME is a model defined in the project, the version is judged right
    away like a trained one (metrics on the model's test rows, its gates);
    otherwise it has no verdict and promoting it needs --force.
    """
    proj = load_project(project)
    with progress(quiet=as_json) as step:
        step(f"importing {path}")
        version = proj.import_mlflow(path, name=name, task=task, allow_pickle=allow_pickle)
    if as_json:
        print_json(version.to_dict())
        return
    if version.lineage.get("judgements"):
        gates = [v.to_dict() for v in version.gates.verdicts]
        _print_judgement(proj, name, version.version, version.metrics, gates, f"imported from {path}")
        return
    out.print(
        f"imported {path} as {name} v{version.version} ({version.format}); {name!r} is not defined in "
        "the project, so it has not been evaluated: promote with --force once you have checked it"
    )


def _v(version: int | None) -> str:
    return "none" if version is None else f"v{version}"


def _print_version(proj: Any, model: str, ref: str, as_json: bool) -> None:
    v = proj.version(model, ref)
    if as_json:
        print_json(v.to_dict())
        return
    aliases = [a for a, n in proj.aliases(model).items() if n == v.version]
    out.print(
        f"[bold]{model} v{v.version}[/] {v.status.value}, stage {v.stage.value}"
        + (f", aliases {', '.join(aliases)}" if aliases else "")
        + f"; created {v.created_at:%Y-%m-%d %H:%M} by {v.created_by}"
    )
    if v.failure_reason:
        out.print(f"  failed: {v.failure_reason}")
    test, base = v.metrics.get("test") or {}, v.metrics.get("baseline") or {}
    if test:
        table = Table("metric", "test", "do-nothing baseline")
        for name, value in test.items():
            if isinstance(value, int | float) and name != "n":
                other = base.get(name)
                table.add_row(name, f"{value:.4g}", "-" if other is None else f"{other:.4g}")
        out.print(table)
    for verdict in v.gates.verdicts:
        mark = "[green]✓[/]" if verdict.passed else "[red]✗[/]"
        out.print(f"  {mark} {verdict.gate}: {verdict.message}")
    lineage = v.lineage
    data = lineage.get("data", {})
    code = lineage.get("code", {})
    if data or code:
        out.print(
            f"  data {str(data.get('fingerprint', '-'))[:12]}, "
            f"rows {data.get('rows', {}).get('rows_used', '-')}, "
            f"time {' .. '.join(data.get('time_range', []) or ['-'])}, cutoff {lineage.get('cutoff', '-')}"
        )
        out.print(
            f"  code {code.get('commit') or '-'}{' (dirty)' if code.get('dirty') else ''}, "
            f"seed {lineage.get('seed', '-')}, params {v.params or {}}"
        )
    if v.artifact:
        out.print(f"  artifact {v.format} sha256 {v.artifact['sha256'][:16]}… {v.artifact['size']:,} bytes")


@app.command()
@handle_errors
def compare(
    model: Annotated[str, typer.Argument(help="Model name.")],
    a: Annotated[str, typer.Argument(help="First version (a number or an alias).")],
    b: Annotated[str, typer.Argument(help="Second version (a number or an alias).")],
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Two versions side by side: test metrics, gates, data, parameters and code."""
    result = load_project(project).compare(model, a, b)
    if as_json:
        print_json(result)
        return
    va, vb = result["versions"]
    table = Table("", f"v{va}", f"v{vb}", f"v{vb} - v{va}")
    for name, row in result["metrics"].items():
        cells = [("-" if x is None else f"{x:.4g}") for x in (row["a"], row["b"], row["b_minus_a"])]
        table.add_row(name, *cells)
    for key in ("status", "stage", "format", "data", "cutoff", "code", "params"):
        table.add_row(key, str(result[key]["a"]), str(result[key]["b"]), "")
    gates = {}
    for side in ("a", "b"):
        failed = [g["gate"] for g in result["gates"][side] if not g["passed"]]
        gates[side] = (
            ("failed: " + ", ".join(failed)) if failed else ("passed" if result["gates"][side] else "-")
        )
    table.add_row("gates", gates["a"], gates["b"], "")
    out.print(table)


@app.command()
@handle_errors
def archive(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to retire.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept as a tag, audited).")] = "",
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Retire a version (stage archived, audited); a version that serves traffic is refused."""
    archived = load_project(project).archive(model, version, reason=reason)
    if as_json:
        print_json(archived.to_dict())
        return
    out.print(f"{model} v{version}: archived")


@app.command()
@handle_errors
def tag(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int | None, typer.Argument(help="Version (default: the model itself).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="A tag as key=value (repeatable).")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A tag to remove (repeatable).")
    ] = None,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Set or remove tags of a version (or of the model); every change is audited."""
    changes: dict[str, Any] = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SchemaError(f"--set {item!r}: use key=value")
        changes[key] = value
    changes.update(dict.fromkeys(remove or []))
    if not changes:
        raise SchemaError("give --set key=value or --remove key")
    tags = load_project(project).tag(model, version, changes)
    if as_json:
        print_json(tags)
        return
    out.print(f"{model}{'' if version is None else f' v{version}'}: tags {tags}")
