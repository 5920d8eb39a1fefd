"""``fl.Project``: a project folder, and every operation of fourloops as a method.

>>> import fourloops as fl
>>> project = fl.Project.load("examples/flights")      # doctest: +SKIP
>>> project.apply()                                    # doctest: +SKIP
>>> train = project.dataset(flights, features=["weather:temp"], timestamp="sched_dep")  # doctest: +SKIP

The project is the composition root: it builds every store from the
configuration once (:mod:`fourloops.project.stores`), hands them and one
clock to each loop, and offers each loop's operations as methods
(:mod:`~fourloops.project.ingestion`, :mod:`~fourloops.project.training`,
:mod:`~fourloops.project.serving`, :mod:`~fourloops.project.evaluation`,
:mod:`~fourloops.project.monitoring`, :mod:`~fourloops.project.adaptation`,
:mod:`~fourloops.project.simulation`).
The command line is a thin layer over these methods, so notebooks and
schedulers (Airflow, Dagster, cron) can do everything it does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fourloops.clock import Clock, utcnow
from fourloops.config import Config, find_root, load_config
from fourloops.definitions.loader import Definitions, load_definitions
from fourloops.project.simulation import SimulationOperations
from fourloops.registry.definitions import ApplyPlan, apply_definitions, plan_definitions

__all__ = ["Project"]


class Project(SimulationOperations):
    """A loaded fourloops project: its configuration, definitions, stores and clock.

    Stores open lazily on first use; ``clock`` (default: the wall clock, UTC)
    is what "now" means to every loop: materialisation and online reads, the
    server's predictions and labels, the stores' records, training cutoffs.
    Give a :class:`fourloops.clock.ManualClock` to drive them all through
    simulated time.
    """

    def __init__(
        self,
        config: Config,
        definitions: Definitions,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self.config = config
        self.definitions = definitions
        self.clock = clock

    @classmethod
    def load(
        cls,
        path: str | Path = ".",
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock = utcnow,
        search_parents: bool = False,
    ) -> Project:
        """Load ``fourloops.toml`` and the definitions of the project in ``path``.

        With ``search_parents``, a folder inside a project finds it as git finds
        a repository: the nearest folder up the tree holding ``fourloops.toml``.
        """
        config = load_config(find_root(path) if search_parents else path, env=env)
        defs = load_definitions(config.path(config.project.definitions))
        return cls(config, defs, clock=clock)

    @classmethod
    def init(
        cls,
        path: str | Path,
        *,
        force: bool = False,
        env: Mapping[str, str] | None = None,
        clock: Clock = utcnow,
    ) -> Project:
        """``fourloops init``: scaffold the example project in ``path`` (named after it), then load it.

        Refuses to overwrite a project unless ``force``.
        """
        from fourloops.scaffold import init_project

        return cls.load(init_project(path, force=force), env=env, clock=clock)

    @staticmethod
    def demo(
        out: str | Path = "demo-out",
        *,
        days: int = 365,
        seed: int = 7,
        simulate_days: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """``fourloops demo``: replay the bundled data through the loops; report and summary go to ``out``.

        It runs in a fresh project of its own (``out/project``), so it needs no
        project loaded; the summary is returned (and written as ``summary.json``).
        Then the last ``simulate_days`` days (default: September to December of a full year; 0:
        none) are simulated through all four loops with one incident of each kind injected.
        """
        from fourloops.demo import run_demo
        from fourloops.demo.runner import SIMULATE_DAYS

        chosen = SIMULATE_DAYS if simulate_days is None else simulate_days
        return run_demo(out, days=days, seed=seed, simulate_days=chosen, progress=progress)

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, name={self.name!r})"

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- apply ------------------------------------------------------------------------------
    def plan(self) -> ApplyPlan:
        """What ``apply`` would change, without changing anything."""
        return plan_definitions(self.definitions, self.metadata)

    def apply(self, *, allow_breaking: bool = False, actor: str | None = None) -> ApplyPlan:
        """Register the definitions' versions; refuse breaking changes unless allowed."""
        return apply_definitions(self.definitions, self.metadata, allow_breaking=allow_breaking, actor=actor)
