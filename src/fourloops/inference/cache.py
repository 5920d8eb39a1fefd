"""An optional prediction cache: a model version's answer for one feature vector, for a while.

Off by default (``[server] cache_ttl``). Worth turning on where the same
feature vectors come back often and the model is expensive; useless, and a
small cost, where every request is new. The key is the model version plus the
values the model reads, in the model's own feature order, so a promotion never
serves an answer of the old champion and two rows that differ only in fields
the model ignores share an entry. Entries expire ``ttl`` seconds after they
were stored; beyond ``max_entries`` the least recently used entry goes.

A cached answer is still a prediction: it is logged like any other (its event
says ``cached``).

    >>> now = [0.0]
    >>> cache = PredictionCache(ttl=10, max_entries=2, clock=lambda: now[0])
    >>> key = cache.key(3, {"a": 1.0, "b": "x"}, ["a", "b"])
    >>> cache.get(key)
    (False, None)
    >>> cache.put(key, 0.25); cache.get(key)
    (True, 0.25)
    >>> now[0] = 10.0; cache.get(key)
    (False, None)
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

__all__ = ["PredictionCache"]


class PredictionCache:
    """Time-limited, size-bounded LRU map of (version, feature vector) -> output; thread-safe."""

    def __init__(
        self, ttl: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"cache ttl must be > 0 seconds, got {ttl}")
        if max_entries < 1:
            raise ValueError(f"cache max_entries must be >= 1, got {max_entries}")
        self.ttl = float(ttl)
        self.max_entries = int(max_entries)
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"PredictionCache(ttl={self.ttl}, max_entries={self.max_entries}, size={len(self)})"

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(version: int, row: Mapping[str, Any], names: Sequence[str] | None) -> Hashable | None:
        """The cache key of ``row`` for ``version``; None when a value cannot be hashed (not cached)."""
        ordered = names if names is not None else sorted(row)
        values = tuple(row.get(n) for n in ordered)
        try:
            hash(values)
        except TypeError:
            return None
        return (version, values)

    def get(self, key: Hashable) -> tuple[bool, Any]:
        """``(True, output)`` for a live entry, else ``(False, None)``."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return False, None
            self._entries.move_to_end(key)
            self.hits += 1
            return True, entry[1]

    def put(self, key: Hashable, output: Any) -> None:
        """Store ``output`` for ``key`` until ``ttl`` seconds from now."""
        expires = self.clock() + self.ttl
        with self._lock:
            self._entries[key] = (expires, output)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
