"""Counting what the event log cannot hold: contract rejections and the server's CPU time.

:class:`ServingTally` counts, per model, the requests answered and the
requests its contract rejected (by field and rule); :meth:`ServingTally.take`
returns the counts since the previous call as
:class:`~fourloops.storage.serving_periods.ServingPeriod` rows, with the
process's CPU seconds of the period shared among the models by their answers
(CPU spent while nothing was answered belongs to no prediction and is left
out). The server's refresher takes and stores them every refresh interval and
at shut-down, so the monitor can report rejections by rule and CPU per 1,000
predictions per window, and alert on them.

>>> from datetime import UTC, datetime
>>> tally = ServingTally(clock=lambda: datetime(2024, 1, 1, tzinfo=UTC), cpu=lambda: 2.0)
>>> tally.served("m", 3); tally.rejected("m", {"instances[1].age": "min", "plan": "allowed"})
>>> [(p.model, p.predictions, p.requests_rejected, dict(p.rejections)) for p in tally.take()]
[('m', 3, 1, {'age': {'min': 1}, 'plan': {'allowed': 1}})]
>>> tally.take()  # nothing since
[]
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping

from fourloops.clock import Clock, utcnow
from fourloops.storage.serving_periods import ServingPeriod

__all__ = ["ServingTally"]

#: A multi-instance request's violation names the instance: ``instances[3].age`` is field ``age``.
_INSTANCE = re.compile(r"^instances\[\d+\]\.?")


class ServingTally:
    """Answers and rejections per model, and CPU time, between two :meth:`take` calls."""

    def __init__(
        self,
        *,
        clock: Clock = utcnow,
        cpu: Callable[[], float] = time.process_time,
        process: str | None = None,
    ) -> None:
        self.clock = clock
        self.cpu = cpu
        self.process = process or f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._served: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self._rules: dict[str, dict[str, dict[str, int]]] = {}
        self._since = clock()
        self._cpu_since = cpu()

    def __repr__(self) -> str:
        return f"ServingTally(process={self.process!r})"

    def served(self, model: str, n: int = 1) -> None:
        """``n`` predictions of ``model`` were answered (and logged)."""
        with self._lock:
            self._served[model] = self._served.get(model, 0) + n

    def rejected(self, model: str, violations: Mapping[str, str]) -> None:
        """One request to ``model`` broke its contract: ``violations`` maps each field to its rule."""
        with self._lock:
            self._rejected[model] = self._rejected.get(model, 0) + 1
            fields = self._rules.setdefault(model, {})
            for name, rule in violations.items():
                rules = fields.setdefault(_INSTANCE.sub("", name) or "(instance)", {})
                rules[rule] = rules.get(rule, 0) + 1

    def take(self) -> list[ServingPeriod]:
        """The counts since the previous call, one period per model that answered or rejected."""
        now, cpu = self.clock(), self.cpu()
        with self._lock:
            served, rejected, rules = self._served, self._rejected, self._rules
            self._served, self._rejected, self._rules = {}, {}, {}
            start, cpu_start = self._since, self._cpu_since
            self._since, self._cpu_since = now, cpu
        answered = sum(served.values())
        spent = max(cpu - cpu_start, 0.0)
        return [
            ServingPeriod(
                model=model,
                process=self.process,
                start=start,
                end=now,
                predictions=served.get(model, 0),
                rejections=rules.get(model, {}),
                cpu_seconds=spent * served.get(model, 0) / answered if answered else 0.0,
                rejected=rejected.get(model, 0),
            )
            for model in sorted(set(served) | set(rejected))
        ]
