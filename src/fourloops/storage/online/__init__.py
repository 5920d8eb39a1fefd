"""Online feature stores: the newest feature values per entity, for serving.

``open_online_store(url)`` picks the backend from the URL scheme:

* ``sqlite:///path/online.db`` (relative), ``sqlite:////abs/online.db``,
  ``sqlite://:memory:`` -> :class:`SQLiteOnlineStore` (the embedded default);
* ``redis://host:port/db`` (or ``rediss://``) -> :class:`RedisOnlineStore`.

Every backend follows :class:`OnlineStore`: reads honour the ttl and writes are
monotonic per key (see :mod:`fourloops.storage.online.base`).
"""

from __future__ import annotations

from fourloops.errors import ConfigError
from fourloops.storage.online.base import OnlineStore, OnlineValue, Status, WriteStats
from fourloops.storage.online.redis import RedisOnlineStore
from fourloops.storage.online.sqlite import SQLiteOnlineStore

__all__ = [
    "OnlineStore",
    "OnlineValue",
    "RedisOnlineStore",
    "SQLiteOnlineStore",
    "Status",
    "WriteStats",
    "open_online_store",
]


def open_online_store(url: str, *, namespace: str = "default") -> OnlineStore:
    """Open the online store named by ``url``; ``namespace`` separates projects.

    >>> store = open_online_store("sqlite://:memory:")
    >>> type(store).__name__
    'SQLiteOnlineStore'
    >>> store.close()
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return SQLiteOnlineStore(url, namespace=namespace)
    if scheme in ("redis", "rediss", "unix"):
        return RedisOnlineStore(url, namespace=namespace)
    raise ConfigError(f"unsupported online store URL {url!r}: use sqlite:///path.db or redis://host:port/db")
