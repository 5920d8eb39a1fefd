"""What every command shares: the Typer app, error handling, JSON output, time parsing, progress.

Commands live in one module per loop (:mod:`fourloops.cli.ingestion`,
:mod:`~fourloops.cli.adaptation`, :mod:`~fourloops.cli.inference`,
:mod:`~fourloops.cli.project`); each parses its arguments, calls one
:class:`fourloops.Project` method and prints.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup

from fourloops.errors import FourloopsError, SchemaError

try:  # the click that typer runs on (newer typer versions carry their own copy)
    from typer._click.exceptions import UsageError as _UsageError
except ImportError:  # pragma: no cover - typer on the click package
    from click.exceptions import UsageError as _UsageError  # type: ignore[assignment]

if TYPE_CHECKING:
    from fourloops.clock import Clock
    from fourloops.project import Project

__all__ = [
    "F",
    "JsonOpt",
    "ProjectOpt",
    "app",
    "err",
    "fail",
    "handle_errors",
    "human_duration",
    "load_project",
    "out",
    "parse_time",
    "print_json",
    "progress",
    "tidy_help",
]


#: What ``--help`` shows for an option's value, by its annotation (flags show nothing).
_METAVARS: dict[Any, str] = {int: "N", float: "NUMBER", str: "TEXT", Path: "PATH", bool: ""}


def _reflow(text: str) -> str:
    """Join the lines of each paragraph of a docstring (kept: blank lines, lists, indented blocks)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    kept = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        if any(line.startswith((" ", "-", "*", "\b")) for line in lines):
            kept.append(paragraph)
        else:
            kept.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(kept)


def _no_type(ctx: Any) -> None:
    return None


def _quiet_help_option(command: Any) -> None:
    """Make ``command``'s ``--help`` option show no value type (click builds it per context)."""
    make = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


def tidy_help(group: Any) -> None:
    """Help without type noise: ``MODEL`` for an argument, ``N``/``PATH``/``TEXT`` for a value, nothing
    for a flag; docstring paragraphs reflowed to the terminal's width.

    Typer prints each parameter's Python type (``<str>``, ``<bool>``) unless it has a metavar,
    so the metavars are set here, once, on the commands Typer built.
    """
    if getattr(group, "_fl_tidy", False):
        return
    group._fl_tidy = True
    for command in [group, *group.commands.values()]:
        _quiet_help_option(command)
        if command.help:
            command.help = _reflow(command.help)
        for param in command.params:
            if param.metavar is None:
                _set_metavar(param)


def _set_metavar(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if param.param_type_name == "argument":
        param.metavar = (param.name or "value").upper()
        param.display_type_rich = _no_type  # the name says what it is
    elif getattr(param, "is_flag", False):
        param.metavar = ""
    elif descriptor is not None and not descriptor.is_choice:
        annotation = descriptor.annotation
        if descriptor.is_list:
            annotation = (getattr(annotation, "__args__", None) or (str,))[0]
        if descriptor.is_path:
            annotation = Path
        if annotation in _METAVARS:
            param.metavar = _METAVARS[annotation]


class _OneLineUsageErrors(TyperGroup):
    """The command group: a usage error (a bad option, a missing argument) is one line, like every error."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        tidy_help(self)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "fourloops"
            message = " ".join(exc.format_message().split())
            err.print(
                f"[bold red]error:[/] {message} (see '{command} --help')",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("[bold red]error:[/] interrupted", markup=True, highlight=False)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="fourloops",
    help="Run a machine-learning model in production through four loops: "
    "ingestion, inference, evaluation, adaptation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: The width of output that is not on a terminal: wide enough that nothing is cut.
UNWRAPPED_WIDTH = 10_000


def _console(*, stderr: bool = False) -> Console:
    """A console that wraps only on a terminal: piped output keeps whole lines (paths, tables).

    ``COLUMNS`` still sets the width when given.
    """
    console = Console(stderr=stderr)
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(stderr=stderr, width=UNWRAPPED_WIDTH, soft_wrap=True)


out = _console()
err = _console(stderr=True)
_state = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])

ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project", "-p", envvar="FOURLOOPS_PROJECT", help="Project folder (holds fourloops.toml)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def fail(message: str, code: int) -> None:
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
            fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:  # a bug: say so in one line, traceback with --debug
            if _state["debug"]:
                raise
            fail(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                70,
            )

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def parse_time(value: str | None, option: str) -> datetime | None:
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


def load_project(path: Path, *, clock: Clock | None = None) -> Project:
    """The project in ``path`` (imported here: ``fourloops --help`` stays fast)."""
    from fourloops.project import Project

    if clock is None:
        return Project.load(path, search_parents=True)
    return Project.load(path, search_parents=True, clock=clock)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


class progress:
    """A Rich status line for long work: ``with progress() as step: step("doing x")``.

    Shown on a terminal only (on stderr), and not with ``quiet`` (``--json``).
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet

    def __enter__(self) -> Callable[[str], None]:
        self._status = err.status("working…") if err.is_terminal and not self.quiet else None
        if self._status:
            self._status.__enter__()
        return self._update

    def _update(self, message: str) -> None:
        if self._status:
            self._status.update(message)

    def __exit__(self, *exc: object) -> None:
        if self._status:
            self._status.__exit__(None, None, None)


_UNITS = ((365.25 * 86400, "years"), (86400, "days"), (3600, "hours"), (60, "minutes"))


def human_duration(seconds: float) -> str:
    """A duration as a person reads it.

    >>> human_duration(407851056), human_duration(5400), human_duration(42)
    ('12.9 years', '1.5 hours', '42 s')
    """
    for size, unit in _UNITS:
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
