"""Simulation as a project operation: replay the project's own history (``fourloops simulate``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fourloops.errors import ConfigError
from fourloops.project.adaptation import AdaptationOperations

if TYPE_CHECKING:
    from fourloops.definitions import Model
    from fourloops.simulation import Incident, SimulationResult

__all__ = ["SimulationOperations"]


class SimulationOperations(AdaptationOperations):
    """``simulate``: the loops on a simulated clock, over a copy of the project."""

    def simulate(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        out: str | Path = "simulation-out",
        model: str | None = None,
        window: str | timedelta = "1d",
        incidents: str | Path | Sequence[Incident] | None = None,
        materialize_every: str | timedelta = "1h",
        seed: int = 0,
        progress: Callable[[str], None] | None = None,
        parallel: bool | None = None,
    ) -> SimulationResult:
        """Replay this project's history from ``start`` to ``end`` (see :mod:`fourloops.simulation`).

        ``end`` defaults to the midnight (UTC) after the model's newest entity row, ``start`` to
        four weeks before ``end``. Works on a copy under ``out`` (this project is not touched);
        with ``incidents`` (a TOML file or a list) a control run and an incident run are compared.
        Writes ``out/summary.json`` and ``out/report.html``. The two runs go in two processes at
        once when the machine has two cores or more (``parallel``); the results are the same.
        """
        from fourloops.definitions.durations import parse_duration
        from fourloops.simulation import SimulationSettings, load_incidents, simulate

        name = model or _only_model(self)
        definition = self.model(name)
        if end is None:
            end = _after_last_row(self, definition)
        if start is None:
            start = _utc(end) - DEFAULT_SPAN
        found: list[Incident] = []
        if isinstance(incidents, str | Path):
            found = load_incidents(incidents)
        elif incidents is not None:
            found = list(incidents)
        settings = SimulationSettings(
            model=name,
            start=_utc(start),
            end=_utc(end),
            window=window if isinstance(window, timedelta) else parse_duration(window, what="window"),
            materialize_every=(
                materialize_every
                if isinstance(materialize_every, timedelta)
                else parse_duration(materialize_every, what="materialize_every")
            ),
            seed=seed,
        )
        return simulate(self.root, Path(out).resolve(), settings, found, progress=progress, parallel=parallel)


#: How far back a simulation starts when no start is given.
DEFAULT_SPAN = timedelta(days=28)


def _after_last_row(project: SimulationOperations, model: Model) -> datetime:
    """The midnight (UTC) after the newest row of the model's entity source."""
    from fourloops.ingestion.sources import read_entities

    frame = read_entities(model.entities, project.root)
    newest = frame[model.entities.timestamp].max() if frame.height else None
    if not isinstance(newest, datetime):
        raise ConfigError(f"model {model.name!r} has no entity rows to replay: give --start and --end")
    day = _utc(newest).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _only_model(project: SimulationOperations) -> str:
    names = sorted(project.models)
    if len(names) != 1:
        raise ConfigError(
            f"the project defines {len(names)} models ({', '.join(names)}): name one with --model"
        )
    return names[0]
