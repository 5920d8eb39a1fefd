"""Writing prediction events: what a prediction's event holds, and how long appends wait.

:class:`EventWriter` hands groups of events to the event store (the caller
releases the predictions only after :meth:`EventWriter.append` returned) and
keeps the start time of every append in progress: :meth:`EventWriter.lag`
is how long the oldest answered-but-unacknowledged prediction has waited for
the store, the number to watch when the store gets slow.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from fourloops.definitions import Contract
from fourloops.inference.calls import finite_or_none
from fourloops.storage.events import EventStore, PredictionEvent

__all__ = ["EventWriter", "loggable_features"]


class EventWriter:
    """Append prediction events to ``store``, measuring the appends."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        #: Told the seconds of every append (the server's metrics histogram).
        self.on_append: Callable[[float], None] | None = None
        self._appending: dict[int, float] = {}  # appends in progress -> start (monotonic)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EventWriter({self.store!r})"

    def append(self, events: Sequence[PredictionEvent]) -> None:
        """Hand ``events`` to the store as one group; raises what the store raises."""
        started = time.monotonic()
        token = object()
        with self._lock:
            self._appending[id(token)] = started
        try:
            self.store.append(events)
        finally:
            with self._lock:
                del self._appending[id(token)]
            if self.on_append is not None:
                self.on_append(time.monotonic() - started)

    def lag(self) -> float:
        """Seconds the oldest append in progress has waited for the store (0 when none is)."""
        with self._lock:
            started = min(self._appending.values(), default=None)
        return 0.0 if started is None else time.monotonic() - started


def loggable_features(row: Mapping[str, Any], contract: Contract) -> dict[str, Any]:
    """The features as logged: sensitive fields replaced by a hash, non-finite floats by None."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        f = contract.fields.get(name)
        if f is not None and f.sensitive and value is not None:
            out[name] = "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()[:16]
        elif isinstance(value, datetime):
            out[name] = value.isoformat()
        else:
            out[name] = finite_or_none(value)
    return out
