"""What every command shares: the Typer app, error handling, JSON output, time parsing, progress.

Commands live in one module per loop (:mod:`fourloops.cli.ingestion`,
:mod:`~fourloops.cli.adaptation`, :mod:`~fourloops.cli.inference`,
:mod:`~fourloops.cli.project`); each parses its arguments, calls one
:class:`fourloops.Project` method and prints.
"""

from __future__ import annotations

import functools
import json
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
]


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


def load_project(path: Path) -> Project:
    """The project in ``path`` (imported here: ``fourloops --help`` stays fast)."""
    from fourloops.project import Project

    return Project.load(path, search_parents=True)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


class progress:
    """A Rich status line for long work: ``with progress() as step: step("doing x")``."""

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
