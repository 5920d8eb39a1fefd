"""The event store protocol, the event and label records, and the shared scan schema.

Every prediction the server makes becomes one :class:`PredictionEvent`; ground
truth arrives later as a :class:`Label` keyed by the same ``request_id``. An
event store keeps both and gives them back joined, as one Arrow table with the
columns of :data:`SCAN_SCHEMA`. Three rules hold on every backend:

* **Acknowledged means durable against process death.** When
  :meth:`EventStore.append` returns, the events have been handed to the
  operating system (an ``os.write`` to an append-only file) or committed to
  the database. With ``fsync=True`` they also survive a machine crash; a group
  costs one flush, however many events it holds (group commit).
* **Labels are idempotent, first label wins.** Labelling a ``request_id``
  again is counted as a duplicate and changes nothing; a label for an id with
  no event yet is counted as unknown and kept, so it joins once the event is
  there.
* **Nothing is dropped silently.** A damaged record is skipped and counted
  (``corrupt_records`` in the scan table's metadata), never a reader crash.

JSON-able payloads (``features``, ``output``, label values, ``extra``) are
stored as JSON text; floats NaN and infinities become ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from fourloops.clock import require_aware
from fourloops.definitions.lifecycle import RouteKind, is_route
from fourloops.errors import SchemaError

if TYPE_CHECKING:
    from fourloops.storage.events.columnar import CompactionReport, EventSchema, EventTables

__all__ = [
    "CORRUPT_RECORDS_KEY",
    "MAX_REQUEST_ID_CHARS",
    "ROUTES",
    "SCAN_SCHEMA",
    "EventStore",
    "EventStoreBase",
    "Label",
    "LabelStats",
    "PredictionEvent",
    "check_window",
    "corrupt_records",
    "dumps_json",
    "dumps_json_bytes",
    "first_labels",
    "with_corrupt_count",
]

#: Fixed routes; A/B arms are spelled ``ab:<version>`` (:mod:`fourloops.definitions.lifecycle`).
ROUTES = frozenset(r.value for r in RouteKind)
#: The longest request id a label may name: no logged prediction has a longer one (a client's id of
#: at most 200 characters and a ``-<row>`` suffix), and PostgreSQL cannot index much longer ones.
MAX_REQUEST_ID_CHARS = 256
#: Schema metadata key of a scan table holding the number of records skipped as damaged.
CORRUPT_RECORDS_KEY = b"fourloops.corrupt_records"

_TS = pa.timestamp("us", tz="UTC")
#: Columns of :meth:`EventStore.scan`: one row per event, its label (JSON text) joined when known.
SCAN_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("unit_id", pa.string()),
        pa.field("at", _TS, nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("route", pa.string(), nullable=False),
        pa.field("features", pa.string(), nullable=False),
        pa.field("output", pa.string(), nullable=False),
        pa.field("propensity", pa.float64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("fallback", pa.bool_(), nullable=False),
        pa.field("extra", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("label_at", _TS),
    ]
)


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays, dates: what model code commonly hands over.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist"):
        return _finite(value.tolist())
    return value


# The standard library's encoder, for what orjson refuses (integers beyond 64 bits).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_json_default)
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps_json(value: Any, *, what: str = "value") -> str:
    """Compact JSON text of ``value``; NaN and infinities become ``null``.

    NumPy scalars and arrays become numbers and lists, dates ISO-8601 text.

    >>> dumps_json({"x": float("nan"), "y": [1, 2.5]})
    '{"x":null,"y":[1,2.5]}'
    """
    return dumps_json_bytes(value, what=what).decode()


def dumps_json_bytes(value: Any, *, what: str = "value") -> bytes:
    """:func:`dumps_json` as UTF-8 bytes (the event stores' hot path)."""
    try:
        return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        pass  # e.g. an integer beyond 64 bits: the standard library's slower path
    try:
        return _ENCODER.encode(_finite(value)).encode()
    except (TypeError, ValueError) as err:
        raise SchemaError(f"{what} is not JSON-able: {err}") from err


@dataclass(frozen=True)
class PredictionEvent:
    """One prediction as logged: who asked, which model version answered, with what.

    ``route`` is ``champion``, ``canary``, ``shadow`` or ``ab:<arm>``; ``at`` must
    be timezone-aware and is kept in UTC.

    >>> from datetime import UTC
    >>> e = PredictionEvent("r1", "u1", datetime(2024, 1, 1, tzinfo=UTC), "churn", 3, "canary",
    ...                     {"age": 41}, {"score": 0.8}, 0.1, 2.5)
    >>> PredictionEvent.from_dict(e.to_dict()) == e
    True
    >>> e.to_dict()["at"]
    '2024-01-01T00:00:00+00:00'
    """

    request_id: str
    unit_id: str | None
    at: datetime
    model: str
    version: int
    route: str
    features: dict[str, Any]
    output: Any
    propensity: float | None = None
    latency_ms: float = 0.0
    fallback: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", require_aware(self.at, "PredictionEvent.at"))
        if not is_route(self.route):
            raise SchemaError(f"unknown route {self.route!r}: use champion, canary, shadow or ab:<name>")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``at`` as ISO 8601 text)."""
        return {
            "request_id": self.request_id,
            "unit_id": self.unit_id,
            "at": self.at.isoformat(),
            "model": self.model,
            "version": self.version,
            "route": self.route,
            "features": self.features,
            "output": self.output,
            "propensity": self.propensity,
            "latency_ms": self.latency_ms,
            "fallback": self.fallback,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionEvent:
        """The event of a :meth:`to_dict` dict (``at`` as ISO text or datetime)."""
        try:
            return cls(
                request_id=data["request_id"],
                unit_id=data.get("unit_id"),
                at=data["at"],
                model=data["model"],
                version=int(data["version"]),
                route=data["route"],
                features=dict(data.get("features") or {}),
                output=data.get("output"),
                propensity=data.get("propensity"),
                latency_ms=float(data.get("latency_ms", 0.0)),
                fallback=bool(data.get("fallback", False)),
                extra=dict(data.get("extra") or {}),
            )
        except KeyError as err:
            raise SchemaError(f"prediction event lacks field {err.args[0]!r}") from err


@dataclass(frozen=True)
class Label:
    """Delayed ground truth for one prediction, by ``request_id``; ``at`` is when it became known.

    A label needs a non-empty ``request_id`` of at most :data:`MAX_REQUEST_ID_CHARS`
    characters and a value (``None`` is no label): SchemaError otherwise, so that no
    caller can store one by mistake.
    """

    request_id: str
    value: Any
    at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.request_id, str) or not self.request_id:
            raise SchemaError(f"no request_id (it must be a non-empty string, got {self.request_id!r})")
        if len(self.request_id) > MAX_REQUEST_ID_CHARS:
            raise SchemaError(
                f"request_id of {len(self.request_id):,} characters ({self.request_id[:20]!r}...) is longer "
                f"than any prediction's (at most {MAX_REQUEST_ID_CHARS})"
            )
        if self.value is None:
            raise SchemaError(f"no label value for {self.request_id!r}")
        object.__setattr__(self, "at", require_aware(self.at, "Label.at"))


@dataclass(frozen=True)
class LabelStats:
    """What :meth:`EventStore.add_labels` did.

    ``inserted`` labels matched a logged event; ``unknown`` were kept although no
    event with their id exists (yet); ``duplicates`` were ignored because the id
    was labelled already (earlier, or earlier in the same call).
    """

    inserted: int = 0
    duplicates: int = 0
    unknown: int = 0


@runtime_checkable
class EventStore(Protocol):
    """Durable prediction log with labels; see the module docstring for the rules."""

    url: str

    def append(self, events: Sequence[PredictionEvent]) -> None:
        """Store a group of events; on return they survive the death of this process."""
        ...

    def add_labels(self, labels: Sequence[Label]) -> LabelStats:
        """Record labels idempotently (first label per request id wins)."""
        ...

    def models_of(self, request_ids: Sequence[str]) -> dict[str, str]:
        """The model that logged each id (its first event); ids with no event are left out."""
        ...

    def scan(
        self, *, model: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pa.Table:
        """Events with ``since <= at < until`` joined with their labels (:data:`SCAN_SCHEMA`)."""
        ...

    def export(
        self,
        path: str | Path,
        *,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Write :meth:`scan` to a Parquet file; returns the number of rows."""
        ...

    def count(self) -> int:
        """Number of events stored (reads the whole log: not for probes)."""
        ...

    def request_ids(self, since: datetime) -> list[str]:
        """The request ids of the events predicted at or after ``since``, oldest first."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the store can take writes now (constant time)."""
        ...

    def compact(self, tables: EventTables, schemas: Mapping[str, EventSchema]) -> CompactionReport:
        """Append what was logged since the last compaction to ``tables`` as typed Parquet, once per id."""
        ...

    def close(self) -> None:
        """Release files and connections."""
        ...


class EventStoreBase:
    """Shared parts of the backends: export and label de-duplication."""

    url: str
    #: An append is a local write taking microseconds (no network, no fsync): a server may make
    #: it on its event loop.
    local_appends: bool = False

    def scan(
        self, *, model: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pa.Table:
        raise NotImplementedError

    def export(
        self,
        path: str | Path,
        *,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Write the scan to Parquet (zstd); returns the number of rows written."""
        table = self.scan(model=model, since=since, until=until)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target, compression="zstd")
        return int(table.num_rows)

    def __enter__(self) -> EventStoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"


def first_labels(labels: Sequence[Label]) -> tuple[list[Label], int]:
    """The first label per request id in ``labels`` and how many later ones were dropped."""
    seen: set[str] = set()
    firsts: list[Label] = []
    for label in labels:
        if label.request_id in seen:
            continue
        seen.add(label.request_id)
        firsts.append(label)
    return firsts, len(labels) - len(firsts)


def with_corrupt_count(table: pa.Table, corrupt: int) -> pa.Table:
    """``table`` cast to :data:`SCAN_SCHEMA` with the damaged-record count in its metadata."""
    table = table.cast(SCAN_SCHEMA)
    return table.replace_schema_metadata({CORRUPT_RECORDS_KEY: str(corrupt).encode()})


def corrupt_records(table: pa.Table) -> int:
    """How many damaged records the scan that produced ``table`` skipped."""
    metadata = table.schema.metadata or {}
    return int(metadata.get(CORRUPT_RECORDS_KEY, b"0"))


def check_window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` as UTC (naive times are refused)."""
    return (
        None if since is None else require_aware(since, "since"),
        None if until is None else require_aware(until, "until"),
    )
