"""Following the registry: every server re-reads each model's routing and swaps versions live.

:class:`Refresher` runs for the server's lifetime. Every ``interval``
seconds it asks each service to re-read its routing from the registry;
a service loads any new version *before* switching, so a promotion, a
canary share, an A/B split or a rollback reaches every server within one
interval, without a restart and without a failed request. A refresh that
fails (the registry is unreachable, a version cannot load) is logged and
the server keeps serving what it has. With several workers the gauges are
also sampled into the shared metric files. With a
:class:`~fourloops.inference.tally.ServingTally` and somewhere to keep its
periods, the first round a minute (:data:`STORE_EVERY_S`) after the last
store (and the shut-down) also stores what the server counted since then:
answers, contract rejections, CPU time (a row per model and minute, not per
refresh).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from fourloops.inference.metrics import SAMPLE_INTERVAL_S, ServerMetrics
from fourloops.inference.service import ModelService
from fourloops.inference.tally import ServingTally
from fourloops.storage.serving_periods import ServingPeriods

__all__ = ["Refresher"]

log = logging.getLogger("fourloops.server")

#: Seconds between two stores of the server's counts (rounds in between keep counting).
STORE_EVERY_S = 60.0


class Refresher:
    """Re-read every service's routing every ``interval`` seconds (see the module docstring)."""

    def __init__(
        self,
        services: Mapping[str, ModelService],
        metrics: ServerMetrics,
        *,
        interval: float,
        tally: ServingTally | None = None,
        periods: ServingPeriods | None = None,
        store_every: float = STORE_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = services
        self.metrics = metrics
        self.interval = interval
        self.tally = tally
        self.periods = periods
        self.store_every = store_every
        self.monotonic = monotonic
        self._stored_at = monotonic()

    def store_due(self) -> bool:
        """Whether a round now should store the counts (a minute since the last store)."""
        return (
            self.tally is not None
            and self.periods is not None
            and (self.monotonic() - self._stored_at >= self.store_every)
        )

    def store_counts(self) -> int:
        """Store what the tally counted since the last call (blocking I/O); returns the rows stored.

        A failure is logged, never raised: the counts of that period are lost, serving goes on.
        """
        if self.tally is None or self.periods is None:
            return 0
        self._stored_at = self.monotonic()
        rows = self.tally.take()
        try:
            self.periods.record(rows)
        except Exception as err:  # the metadata store is down: serving must not stop for a statistic
            log.warning("could not store the serving counts of %d models: %s", len(rows), err)
            return 0
        return len(rows)

    async def refresh_once(self) -> None:
        """One round over the services; a failure is logged and the old state kept."""
        for service in self.services.values():
            try:
                if await asyncio.to_thread(service.refresh):
                    log.info("model %s: routing now %s", service.name, service.state and service.state.table)
            except Exception as err:  # keep serving the state we have
                log.warning("model %s: refresh failed: %s", service.name, err)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.refresh_once()
            if self.store_due():
                await asyncio.to_thread(self.store_counts)

    async def sample(self) -> None:
        """Several workers: their gauges go to the shared files every sample interval."""
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            self.metrics.sample()

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """The app's lifespan: log what is served, refresh (and sample) until shutdown."""
        for service in self.services.values():
            table = service.state.table if service.state is not None else None
            log.info(
                "serving model %s: %s",
                service.name,
                table,
                extra={"model": service.name, "routing": table.to_dict() if table is not None else None},
            )
        tasks = [asyncio.create_task(self.run())]
        if self.metrics.multiprocess:
            tasks.append(asyncio.create_task(self.sample()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            self.store_counts()  # the last period: what was counted since the last round
            self.metrics.close()
