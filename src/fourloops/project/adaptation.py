"""The adaptation loop's operations on a project: rollouts, the controller, routing history."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fourloops.errors import NotFoundError
from fourloops.project.monitoring import MonitoringOperations

if TYPE_CHECKING:
    from fourloops.adaptation.controller import TickReport
    from fourloops.adaptation.loop import Decision, Loop
    from fourloops.registry.routing_records import RoutingSpec
    from fourloops.storage.controller_state import Leases, RolloutLog

__all__ = ["AdaptationOperations"]


class AdaptationOperations(MonitoringOperations):
    """Staged rollouts, retraining triggers and the controller that runs them."""

    @cached_property
    def rollout_log(self) -> RolloutLog:
        """Every rollout of every model, in the metadata store."""
        from fourloops.storage.controller_state import RolloutLog

        return RolloutLog(self.metadata)

    @cached_property
    def leases(self) -> Leases:
        """The controller's lease (one controller acts at a time)."""
        from fourloops.storage.controller_state import Leases

        return Leases(self.metadata)

    @property
    def loop(self) -> Loop:
        """What the adaptation loop works with (:class:`fourloops.adaptation.loop.Loop`)."""
        from fourloops.adaptation.loop import Loop

        def query(sql: str, model: str) -> Any:
            return self.query_events(sql, model=model, compact=False)

        def train(name: str) -> Any:
            # A retrain fits on its own window and split where fl.Retrain gives them.
            policy = self.model(name).retrain
            if policy is None:
                return self.train(name)
            start = self.clock() - policy.window if policy.window is not None else None
            return self.train(name, start=start, split=policy.split)

        return Loop(
            registry=self.registry,
            rollouts=self.rollout_log,
            leases=self.leases,
            metadata=self.metadata,
            alerts=self.alert_log,
            models=self.models,
            query=query,
            train=train,
            clock=self.clock,
            calibration=self.calibration,
        )

    def rollout(self, name: str, version: int | str, *, reason: str = "", force: bool = False) -> Decision:
        """Start rolling ``version`` of model ``name`` out by its ``fl.Rollout`` (journaled, with its plan).

        The first stage takes effect through the registry; the controller (:meth:`tick`) moves it on.
        """
        from fourloops.adaptation import rollout

        number = self.registry.get_version(name, version).version
        self.compact_events()
        return rollout.start(self.loop, name, number, reason=reason, force=force)

    def rollout_status(self, name: str) -> dict[str, Any]:
        """The model's newest rollout: stage, status, plan, the last checks' numbers, and the routing now."""
        from fourloops.adaptation.counterfactual import check_canary
        from fourloops.definitions import Task

        model = self.model(name)
        record = self.rollout_log.latest(name)
        status = {
            "model": name,
            "rollout": None if record is None else record.to_dict(),
            "routing": self.registry.routing(name).to_dict(),
        }
        if model.task is Task.POLICY and record is not None and record.open:
            # A decision model: its off-policy estimate beside what it realises as a canary.
            status["counterfactual"] = check_canary(self.loop, model, record.version).to_dict()
        return status

    def rollout_abort(self, name: str, *, reason: str = "aborted by an operator") -> Decision:
        """Send all of model ``name``'s traffic back to its champion and end its rollout (journaled)."""
        from fourloops.adaptation import rollout
        from fourloops.storage.metadata import default_actor

        return rollout.abort(self.loop, name, reason=reason, actor=default_actor())

    def tick(self, *, holder: str | None = None, lease: timedelta = timedelta(seconds=60)) -> TickReport:
        """One step of the controller (idempotent; safe from cron); see fourloops.adaptation.controller."""
        from fourloops.adaptation import counterfactual
        from fourloops.adaptation.controller import tick

        self.compact_events()
        report = tick(self.loop, holder=holder, lease=lease)
        # Decision models in a canary: their realised reward against their off-policy estimate.
        counterfactual.watch(self.loop)
        return report

    def controller(
        self,
        *,
        interval: timedelta = timedelta(minutes=1),
        lease: timedelta = timedelta(minutes=3),
        ticks: int | None = None,
        stop: threading.Event | None = None,
        on_tick: Callable[[TickReport], None] | None = None,
    ) -> int:
        """Tick every ``interval`` until stopped (or ``ticks`` ticks); returns how many ticks ran."""
        from fourloops.adaptation.controller import run

        return run(
            self.loop,
            interval=interval,
            lease=lease,
            ticks=ticks,
            stop=stop,
            on_tick=on_tick,
            prepare=self.compact_events,
        )

    def routing_at(self, name: str, at: datetime) -> RoutingSpec:
        """How model ``name``'s traffic was routed at time ``at``: champion, canary and share, shadow, stage.

        Read from the routing journal (every change, with who, when and why).
        """
        history = [e for e in self.registry.routing_history(name) if e.at <= at]
        if not history:
            raise NotFoundError(f"model {name!r} had no routing at {at.isoformat()}")
        return history[-1].spec
