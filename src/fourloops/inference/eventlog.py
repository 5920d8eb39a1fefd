"""Writing prediction events: what a prediction's event holds, and how long appends wait.

:class:`EventWriter` hands groups of events to the event store (the caller
releases the predictions only after :meth:`EventWriter.append` returned) and
keeps the start time of every append in progress: :meth:`EventWriter.lag`
is how long the oldest answered-but-unacknowledged prediction has waited for
the store, the number to watch when the store gets slow.

:func:`loggable_features` is what an event holds of the request: fields marked
``sensitive`` become a keyed hash (:func:`keyed_hash`). A plain hash of a
low-entropy value is reversed by hashing every candidate; without the key it
is not, and equal values still hash equally, so events can be grouped and
joined on them.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from fourloops.definitions import Contract
from fourloops.inference.calls import finite_or_none
from fourloops.storage.events import EventStore, PredictionEvent

__all__ = ["EventWriter", "FeatureLogger", "keyed_hash", "loggable_features"]

#: Bytes a hash key must have at least.
MIN_HASH_KEY_BYTES = 16


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


def keyed_hash(key: bytes, value: Any) -> str:
    """``hmac-sha256:`` and the first 128 bits (hex) of HMAC-SHA256 of ``str(value)`` under ``key``.

    >>> keyed_hash(b"k" * 16, "a") == keyed_hash(b"k" * 16, "a") != keyed_hash(b"j" * 16, "a")
    True
    """
    return "hmac-sha256:" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:32]


def loggable_features(row: Mapping[str, Any], contract: Contract, key: bytes) -> dict[str, Any]:
    """The features as logged: sensitive fields keyed-hashed with ``key``, non-finite floats None."""
    return FeatureLogger(contract, key)(row)


class FeatureLogger:
    """:func:`loggable_features` compiled once per contract (the request path's version).

    >>> import fourloops as fl
    >>> log = FeatureLogger(fl.Contract({"x": fl.Float(), "who": fl.String(sensitive=True)}), b"k" * 16)
    >>> logged = log({"x": float("inf"), "who": "ann"})
    >>> logged["x"], logged["who"].startswith("hmac-sha256:")
    (None, True)
    """

    def __init__(self, contract: Contract, key: bytes) -> None:
        self.key = key
        self.sensitive = tuple(name for name, f in contract.fields.items() if f.sensitive)

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(row)
        for name in self.sensitive:  # hashed as given (a string after this, which the loop keeps)
            value = out.get(name)
            if value is not None:
                out[name] = keyed_hash(self.key, value)
        for name, value in out.items():
            kind = type(value)
            if kind is float:
                if value - value != 0.0:  # NaN or an infinity: JSON has neither
                    out[name] = None
            elif kind is str or kind is int or kind is bool or value is None:
                continue
            elif isinstance(value, datetime):
                out[name] = value.isoformat()
            else:
                out[name] = finite_or_none(value)
        return out
