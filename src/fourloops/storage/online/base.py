"""The online store protocol and the encoding every backend shares.

An online store keeps, per feature view and entity key, the newest row of
feature values. Two rules hold on every backend:

* **Reads honour the ttl.** A row whose ``now - event_time`` exceeds the
  ttl comes back as :attr:`Status.EXPIRED` with no values; a row exactly at
  the ttl is still :attr:`Status.OK`. A row whose event time is after
  ``now`` (materialised ahead of the reader's clock) is :attr:`Status.MISSING`:
  it was not knowable at ``now``.
* **Writes are monotonic.** A row replaces the stored one only when its
  ``(event_time, created_time)`` is strictly greater (a missing created time
  is the lowest). Older rows are skipped and counted, atomically per key.

Rows are encoded once, here, so that backends only move strings:

* entity keys become the compact JSON of the key list (``["EWR",3]``);
* feature values become one compact JSON object per row, built by Polars in a
  vectorised pass (:mod:`fourloops.storage.online.encoding`). Floats NaN and
  infinities are stored as null. Timestamps, dates, durations and times are
  tagged (``{"@ts": "..."}``) so that they come back as aware
  :class:`~datetime.datetime` (UTC), :class:`~datetime.date`,
  :class:`~datetime.timedelta` and :class:`~datetime.time`. Naive timestamp
  *features* are taken to be UTC.
"""

from __future__ import annotations

import abc
import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fourloops.errors import SchemaError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from fourloops.storage.online.encoding import EncodedRows

__all__ = [
    "OnlineStore",
    "OnlineStoreBase",
    "OnlineValue",
    "Status",
    "WriteStats",
    "decode_payload",
    "encode_key",
    "from_micros",
    "to_micros",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Tags of typed feature values in a stored payload ({"@ts": "..."}).
TS_TAG, DATE_TAG, TD_TAG, TIME_TAG = "@ts", "@date", "@td", "@time"


class Status(enum.StrEnum):
    """Outcome of reading one entity key."""

    OK = "ok"
    MISSING = "missing"
    EXPIRED = "expired"


@dataclass(frozen=True)
class OnlineValue:
    """The stored feature values of one entity key, as of a read.

    ``values`` is empty unless ``status`` is OK; ``event_time`` (UTC-aware) and
    ``age`` (``now - event_time``) are set for OK and EXPIRED rows.
    """

    key: tuple[Any, ...]
    status: Status
    values: dict[str, Any]
    event_time: datetime | None
    age: timedelta | None


@dataclass(frozen=True)
class WriteStats:
    """What a write did: rows stored, and rows skipped as not newer."""

    written: int
    skipped_older: int


@runtime_checkable
class OnlineStore(Protocol):
    """Latest feature values per (view, entity key); see the module docstring."""

    url: str
    namespace: str

    def write(
        self,
        view: str,
        rows: pa.Table | pl.DataFrame,
        *,
        keys: Sequence[str],
        timestamp: str,
        features: Sequence[str],
        created: str | None = None,
    ) -> WriteStats: ...

    def read(
        self,
        view: str,
        keys: Sequence[Sequence[Any]],
        *,
        ttl: timedelta,
        now: datetime,
        features: Sequence[str] | None = None,
    ) -> list[OnlineValue]: ...

    def watermark(self, view: str) -> datetime | None: ...

    def set_watermark(self, view: str, when: datetime) -> None: ...

    def delete_view(self, view: str) -> None: ...

    def close(self) -> None: ...


# -- time ------------------------------------------------------------------


def to_micros(when: datetime, *, what: str = "time") -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise SchemaError(f"{what} must be timezone-aware, got naive {when.isoformat()}")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime ``micros`` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)


# -- keys ------------------------------------------------------------------


def encode_key(key: Sequence[Any]) -> str:
    """Deterministic text form of an entity key: compact JSON of its values.

    >>> encode_key(("EWR", 3))
    '["EWR",3]'
    """
    if isinstance(key, str | bytes):
        raise SchemaError(f"an entity key is a sequence of values, got {key!r}")
    return _KEY_ENCODER.encode(list(key))


def _key_default(value: Any) -> Any:
    # numpy integers and similar scalars expose item()
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise SchemaError(f"entity key values must be str or int, got {type(value).__name__}")


# built once: json.dumps with options builds a new encoder on every call
_KEY_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_key_default)


# -- rows ------------------------------------------------------------------
# Encoding rows for writing is vectorised with Polars, in fourloops.storage.online.encoding
# (imported by write(): a server that only reads never loads Polars).


_UNTAG: dict[str, Callable[[Any], Any]] = {
    TS_TAG: datetime.fromisoformat,
    DATE_TAG: date.fromisoformat,
    TD_TAG: lambda micros: timedelta(microseconds=int(micros)),
    TIME_TAG: time.fromisoformat,
}


def decode_payload(payload: str | bytes) -> dict[str, Any]:
    """Feature values of one stored row."""
    values: dict[str, Any] = json.loads(payload)
    for name, value in values.items():
        # only top-level values are ever tagged, as {"@ts": ...} and the like
        if type(value) is dict and len(value) == 1:
            [(tag, raw)] = value.items()
            untag = _UNTAG.get(tag)
            if untag is not None:
                values[name] = None if raw is None else untag(raw)
    return values


# -- shared behaviour ------------------------------------------------------


class OnlineStoreBase(abc.ABC):
    """Write/read logic shared by backends; they move encoded strings only.

    A backend implements ``_upsert`` (monotonic, atomic per key, returning
    the number of rows stored) and ``_fetch`` (stored ``(event_us, payload)``
    by encoded key).
    """

    url: str
    namespace: str
    #: Reads are local and take microseconds (no network): a server may make them on its event loop.
    local_reads: bool = False

    def write(
        self,
        view: str,
        rows: pa.Table | pl.DataFrame,
        *,
        keys: Sequence[str],
        timestamp: str,
        features: Sequence[str],
        created: str | None = None,
    ) -> WriteStats:
        """Store the newest row per key unless the stored one is as new or newer."""
        from fourloops.storage.online.encoding import encode_rows

        _check_view(view)
        chunks, dropped = encode_rows(
            rows, keys=keys, timestamp=timestamp, features=features, created=created
        )
        written = skipped = 0
        for chunk in chunks:
            stored = self._upsert(view, chunk)
            written += stored
            skipped += len(chunk.keys) - stored
        return WriteStats(written=written, skipped_older=skipped + dropped)

    def read(
        self,
        view: str,
        keys: Sequence[Sequence[Any]],
        *,
        ttl: timedelta,
        now: datetime,
        features: Sequence[str] | None = None,
    ) -> list[OnlineValue]:
        """Values of ``keys`` in order; rows older than ``ttl`` are EXPIRED.

        With ``features`` only those are returned, ``None`` for any absent
        from a stored row; without, every stored feature is.
        """
        _check_view(view)
        now_us = to_micros(now, what="now")
        ttl_us = ttl // timedelta(microseconds=1)
        encoded = [encode_key(k) for k in keys]
        stored = self._fetch(view, list(dict.fromkeys(encoded))) if encoded else {}
        out = []
        for key, code in zip(keys, encoded, strict=True):
            found = stored.get(code)
            if found is None:
                out.append(OnlineValue(tuple(key), Status.MISSING, {}, None, None))
                continue
            event_us, payload = found
            event_time = from_micros(event_us)
            age = timedelta(microseconds=now_us - event_us)
            if event_us > now_us:
                # Stored by a materialisation ahead of this reader's clock (a replay, a
                # backfill, clock skew): not knowable at ``now``, so never served.
                out.append(OnlineValue(tuple(key), Status.MISSING, {}, None, None))
                continue
            if now_us - event_us > ttl_us:
                out.append(OnlineValue(tuple(key), Status.EXPIRED, {}, event_time, age))
                continue
            values = decode_payload(payload)
            if features is not None:
                values = {f: values.get(f) for f in features}
            out.append(OnlineValue(tuple(key), Status.OK, values, event_time, age))
        return out

    def set_watermark(self, view: str, when: datetime) -> None:
        """Record ``when`` as the end of the latest materialisation of ``view``."""
        _check_view(view)
        self._set_watermark_us(view, to_micros(when, what="watermark"))

    def watermark(self, view: str) -> datetime | None:
        """The end of the latest materialisation of ``view``, or None."""
        _check_view(view)
        micros = self._watermark_us(view)
        return None if micros is None else from_micros(micros)

    def __enter__(self) -> OnlineStoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, namespace={self.namespace!r})"

    @abc.abstractmethod
    def _upsert(self, view: str, rows: EncodedRows) -> int: ...

    @abc.abstractmethod
    def _fetch(self, view: str, keys: list[str]) -> Mapping[str, tuple[int, str | bytes]]: ...

    @abc.abstractmethod
    def _set_watermark_us(self, view: str, micros: int) -> None: ...

    @abc.abstractmethod
    def _watermark_us(self, view: str) -> int | None: ...

    @abc.abstractmethod
    def delete_view(self, view: str) -> None:
        """Remove every row and the watermark of ``view``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""


def _check_view(view: str) -> None:
    if not isinstance(view, str) or not view:
        raise SchemaError(f"a feature view name must be a non-empty string, got {view!r}")
