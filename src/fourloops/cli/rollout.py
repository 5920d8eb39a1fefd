"""Adaptation-loop commands for staged delivery: rollouts, one controller step, the controller."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fourloops.cli.common import JsonOpt, ProjectOpt, app, handle_errors, load_project, out, print_json
from fourloops.errors import ConfigError

if TYPE_CHECKING:
    from fourloops.adaptation.controller import TickReport
    from fourloops.adaptation.loop import Decision

__all__ = ["controller", "rollout", "tick"]

_ACTIONS = ("status", "abort")


def _duration(value: str, option: str) -> Any:
    from fourloops.definitions.durations import parse_duration
    from fourloops.errors import DefinitionError

    try:
        return parse_duration(value, what=option)
    except DefinitionError as err:
        raise ConfigError(str(err)) from None


def _say(decision: Decision) -> None:
    version = f" v{decision.version}" if decision.version is not None else ""
    out.print(
        f"{decision.at.isoformat()} {decision.model}{version}: {decision.kind}: {decision.reason}",
        highlight=False,
    )


def _print_plan(plan: dict[str, Any]) -> None:
    for outcome, p in (plan.get("checks") or {}).items():
        hours = p.get("hours_to_pass")
        catch = p.get("hours_to_catch")
        out.print(
            f"  {outcome}: about {p['rows_to_pass']:,} requests per arm to pass identical versions"
            + (f" (~{hours:.1f} h at {plan['requests_per_hour']:.0f} requests/h)" if hours else "")
            + f"; a regression of {p['regression']:g} caught within ~{p['rows_to_catch_regression']:,}"
            + (f" (~{catch:.1f} h)" if catch else ""),
            highlight=False,
        )


@app.command()
@handle_errors
def rollout(
    words: Annotated[
        list[str],
        typer.Argument(
            help="MODEL VERSION (start), or 'status MODEL', or 'abort MODEL'.", show_default=False
        ),
    ],
    project: ProjectOpt = Path("."),
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the journal).")] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Roll out a version that failed its gates (audited).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Staged delivery of a new version by the model's fl.Rollout: shadow, canaries, full.

    `fourloops rollout MODEL VERSION` starts it (the first stage takes effect on every server
    through the registry) and prints what each stage will need; `fourloops tick` (or the running
    `fourloops controller`) moves it on as the checks pass, and aborts it on its own when a check
    fails. `fourloops rollout status MODEL` shows the stage, the last checks' numbers and the
    routing; `fourloops rollout abort MODEL` sends every request back to the champion now.
    """
    with load_project(project) as proj:
        if words and words[0] in _ACTIONS:
            if len(words) != 2:
                raise ConfigError(f"usage: fourloops rollout {words[0]} MODEL")
            action, model = words
            if action == "status":
                status = proj.rollout_status(model)
                if as_json:
                    print_json(status)
                    return
                _print_status(status)
                return
            decision = proj.rollout_abort(model, reason=reason or "aborted by an operator")
            print_json(decision.to_dict()) if as_json else _say(decision)
            return
        if len(words) != 2:
            raise ConfigError("usage: fourloops rollout MODEL VERSION (or status MODEL, abort MODEL)")
        model, version = words
        decision = proj.rollout(
            model, int(version) if version.isdigit() else version, reason=reason, force=force
        )
    if as_json:
        print_json(decision.to_dict())
        return
    _say(decision)
    _print_plan(decision.evidence.get("plan") or {})


def _print_status(status: dict[str, Any]) -> None:
    routing, record = status["routing"], status["rollout"]
    canary = f"v{routing['canary']} at {routing['canary_share']:.0%}" if routing["canary"] else "none"
    shadow = f"v{routing['shadow']}" if routing["shadow"] else "none"
    out.print(
        f"{status['model']}: champion v{routing['champion']}, canary {canary}, shadow {shadow}, "
        f"stage {routing['stage']}",
        highlight=False,
    )
    if record is None:
        out.print("no rollout yet")
        return
    stage = record["policy"]["stages"][record["stage_index"]]
    out.print(
        f"rollout of v{record['version']}: {record['status']}, stage {record['stage_index'] + 1} of "
        f"{len(record['policy']['stages'])} ({stage['kind']}) since {record['stage_started_at']}"
        + (f"; {record['reason']}" if record["reason"] else ""),
        highlight=False,
    )
    for check in record["state"].get("last_checks", []):
        low, high = check.get("low"), check.get("high")
        interval = "" if low is None or high is None else f" ({low:.4g}, {high:.4g})"
        out.print(
            f"  {check.get('check', check['outcome'])}: {check['verdict']}{interval}; {check['reason']}",
            highlight=False,
        )
    _print_plan(record["state"].get("plan") or {})


def _report(report: TickReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    if not report.acquired:
        out.print(f"another controller holds the lease ({report.holder}); nothing done")
        return
    if not report.decisions:
        out.print("nothing to do")
    for decision in report.decisions:
        _say(decision)


def _stream(report: TickReport, as_json: bool) -> None:
    """A running controller's output: one line of JSON per tick (JSON Lines) with --json, flushed."""
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), default=str) + "\n")
        sys.stdout.flush()
    else:
        _report(report, False)


@app.command()
@handle_errors
def tick(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """One step of the adaptation controller for every model (idempotent: safe from cron or Airflow).

    Steps each running rollout (wait, next stage, promote, pause, abort), then checks each model's
    retraining triggers (fl.Retrain): trains on the newest data, records a candidate that fails its
    gates, starts the rollout of one that passes. Every decision is journaled with its evidence.
    Does nothing while another controller holds the lease.
    """
    with load_project(project) as proj:
        _report(proj.tick(), as_json)


@app.command()
@handle_errors
def controller(
    project: ProjectOpt = Path("."),
    interval: Annotated[
        str, typer.Option("--interval", help="Time between ticks, e.g. '1m' or '30s'.")
    ] = "1m",
    lease: Annotated[
        str,
        typer.Option("--lease", help="Lease length: another controller takes over this long after one dies."),
    ] = "3m",
    ticks: Annotated[int | None, typer.Option("--ticks", min=1, help="Stop after this many ticks.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the adaptation controller: a tick every --interval until Ctrl-C or SIGTERM.

    One controller acts at a time (a lease in the metadata store); a second one started beside it
    waits, and takes over within the lease time when the first dies. With --json, one line of JSON
    per tick.
    """
    every, hold = _duration(interval, "--interval"), _duration(lease, "--lease")
    if hold <= every:
        raise ConfigError(f"--lease ({lease}) must be longer than --interval ({interval})")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with load_project(project) as proj:
        done = proj.controller(
            interval=every,
            lease=hold,
            ticks=ticks,
            stop=stop,
            on_tick=lambda report: _stream(report, as_json),
        )
    if not as_json:
        out.print(f"controller stopped after {done} ticks")
