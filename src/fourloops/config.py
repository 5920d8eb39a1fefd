"""Project configuration: ``fourloops.toml`` with ``FOURLOOPS_*`` environment overrides.

Every setting has an embedded default, so a project runs with no configuration
beyond its name. Any value can be overridden by an environment variable named
``FOURLOOPS_<SECTION>_<KEY>`` (upper case), e.g. ``FOURLOOPS_STORAGE_ONLINE=redis://...``.
Relative paths (and ``sqlite:///relative.db`` URLs) are relative to the project folder.

::

    [project]
    name = "flights"
    definitions = "definitions.py"

    [storage]
    metadata = "sqlite:///.fourloops/metadata.db"   # or postgresql+psycopg://...
    offline = ".fourloops/offline"                  # validated feature data (Parquet)
    online = "sqlite:///.fourloops/online.db"       # or redis://host:6379/0
    quarantine = ".fourloops/quarantine"            # rows that broke a contract
    artifacts = ".fourloops/artifacts"
    events = ".fourloops/events"                    # prediction events; or postgresql+psycopg://...
    event_tables = ".fourloops/event-tables"        # the event log compacted to typed Parquet (by model, day)
    events_fsync = ""        # "true": survive machine crashes too (fsync per group); "": backend default
    events_hash_key = ""     # secret for hashing sensitive fields in events; "" = .fourloops/events-hash.key

    [engine]
    name = "duckdb"
    memory_limit = ""        # e.g. "8GB"; empty = DuckDB's default (80% of RAM)
    threads = 0              # 0 = all cores
    temp_directory = ".fourloops/tmp"   # where DuckDB spills when out of memory

    [server]
    host = "127.0.0.1"
    port = 8080
    workers = 1
    refresh_interval = "5s"  # how soon a promotion or rollback reaches every server
    admin_token = ""         # bearer token for /v1/admin/...; empty = admin routes refuse all
    max_body_bytes = 1048576
    max_instances = 1000
    model_rate = 0           # requests/s per model (0 = unlimited)
    client_rate = 0          # requests/s per client key (X-Client-Key header)
    rate_limit_store = ""    # "" = per process; redis://host:6379/0 = shared by all servers
    rate_limit_on_error = "allow"  # Redis unreachable: "allow" requests (counted, logged) or "reject" (503)
    request_id_window = "24h"  # a request_id a client reuses within this is refused (409); "" = never checked
    request_id_max = 1000000   # ids remembered in-process at most (~100 bytes each)
    request_id_store = ""      # "" = per process (seeded from the event log); redis://... = shared
    batching = true          # group concurrent single-instance requests into one model-service call
    batch_max_size = 32      # flush a group when this many requests wait...
    batch_max_wait_ms = 2    # ...or when the first has waited this long (a lone request never waits)
    inline_max_ms = 2        # a lone request this quick is answered on the event loop (0: never)
    max_pending = 256        # requests per model queued or running at once; beyond: 503 "overloaded"
    timeout_ms = 1000        # model-call deadline; past it the fallback answers (0 = no deadline)
    cache_ttl = ""           # prediction cache, e.g. "30s"; "" = off
    cache_max_entries = 10000
    log_format = "text"      # "json": one JSON object per log line (for log shippers)
    access_log = true        # one log line per HTTP request
    shutdown_timeout = "10s" # on SIGTERM, how long in-flight requests may take to finish

    [alerts]
    sinks = "log"            # where new monitoring alerts go: "log", "webhook" or "log,webhook"
    webhook = ""             # URL new alerts are POSTed to (JSON), retried, never blocking the monitor
    webhook_format = "json"  # "slack": a Slack-compatible message (incoming webhooks)
    webhook_timeout = "5s"
    webhook_retries = 3
    consecutive = 1          # windows in a row a condition must hold before it alerts
    max_drop = 0.05          # allowed relative drop of the primary metric before a performance alert
    min_labels = 100         # labelled rows a window (or segment) needs for a performance alert
    null_rise = 0.05         # rise of a column's null share, in points, that alerts
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fourloops.definitions.durations import parse_duration
from fourloops.errors import ConfigError, DefinitionError

__all__ = [
    "CONFIG_FILE",
    "AlertsConfig",
    "Config",
    "EngineConfig",
    "ProjectConfig",
    "ServerConfig",
    "StorageConfig",
    "find_root",
    "load_config",
    "setting_variables",
]

CONFIG_FILE = "fourloops.toml"
ENV_PREFIX = "FOURLOOPS_"
#: Batch engines a project can name (``engine.name``).
ENGINES = ("duckdb",)
#: Log line formats of ``server.log_format``.
LOG_FORMATS = ("text", "json")
#: Highest TCP port number.
MAX_PORT = 65535
#: Bytes a configured events hash key must have at least.
MIN_HASH_KEY_BYTES = 16


def _seconds(value: str, key: str) -> float:
    """A positive duration setting in seconds; ConfigError naming ``key`` otherwise."""
    try:
        return parse_duration(value, what=key).total_seconds()
    except DefinitionError as err:
        raise ConfigError(str(err)) from None


def _at_least(value: int, minimum: int, key: str, note: str = "") -> None:
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}{note}, got {value}")


def _one_of(value: str, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be {' or '.join(repr(a) for a in allowed)}, got {value!r}")


@dataclass(frozen=True)
class StorageConfig:
    metadata: str = "sqlite:///.fourloops/metadata.db"
    offline: str = ".fourloops/offline"
    online: str = "sqlite:///.fourloops/online.db"
    quarantine: str = ".fourloops/quarantine"
    artifacts: str = ".fourloops/artifacts"
    events: str = ".fourloops/events"
    event_tables: str = ".fourloops/event-tables"  # the event log compacted to typed, partitioned Parquet
    events_fsync: str = ""  # "true"/"false"; "" = off for the local store, on for PostgreSQL
    events_hash_key: str = ""  # HMAC key of sensitive fields in events; "" = a key file in .fourloops

    def __post_init__(self) -> None:
        flag = self.events_fsync.strip().lower()
        if flag not in ("", "true", "false"):
            raise ConfigError(f"storage.events_fsync must be true, false or empty, got {self.events_fsync!r}")
        if self.events_hash_key and len(self.events_hash_key.encode()) < MIN_HASH_KEY_BYTES:
            raise ConfigError(
                f"storage.events_hash_key must have at least {MIN_HASH_KEY_BYTES} bytes, "
                f"got {len(self.events_hash_key.encode())}"
            )

    @property
    def fsync(self) -> bool | None:
        """``events_fsync`` as a flag: None leaves the event store's default."""
        flag = self.events_fsync.strip().lower()
        return None if not flag else flag == "true"


@dataclass(frozen=True)
class EngineConfig:
    name: str = "duckdb"
    memory_limit: str = ""
    threads: int = 0
    temp_directory: str = ".fourloops/tmp"

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ConfigError(f"engine.name: unknown engine {self.name!r} (available: {', '.join(ENGINES)})")
        _at_least(self.threads, 0, "engine.threads", " (0 = all cores)")


#: URL schemes a Redis setting may use.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    refresh_interval: str = "5s"
    admin_token: str = ""
    max_body_bytes: int = 1_048_576
    max_instances: int = 1000
    model_rate: int = 0  # requests per second per model; 0 = unlimited
    client_rate: int = 0  # requests per second per client key; 0 = unlimited
    rate_limit_store: str = ""  # "" = in-process; redis://... = shared by every server
    rate_limit_on_error: str = "allow"  # the shared limiter failed: "allow" or "reject" (503)
    request_id_window: str = "24h"  # reused client request ids are refused within it; "" = unchecked
    request_id_max: int = 1_000_000  # in-process claims kept at most
    request_id_store: str = ""  # "" = in-process; redis://... = shared by every server
    batching: bool = True  # adaptive micro-batching with group commit of the events
    batch_max_size: int = 32
    batch_max_wait_ms: int = 2
    inline_max_ms: int = 2  # a lone request quicker than this is answered on the event loop (0: never)
    max_pending: int = 256  # requests per model queued or running; beyond them: 503 overloaded
    timeout_ms: int = 1000  # model-call deadline (0 = none); past it the fallback answers
    cache_ttl: str = ""  # prediction cache entry lifetime, e.g. "30s"; "" = no cache
    cache_max_entries: int = 10_000
    log_format: str = "text"  # "text" or "json"
    access_log: bool = True
    shutdown_timeout: str = "10s"  # graceful shutdown: time left to in-flight requests

    def __post_init__(self) -> None:
        if not 1 <= self.port <= MAX_PORT:
            raise ConfigError(f"server.port must be a TCP port in 1..{MAX_PORT}, got {self.port}")
        _at_least(self.workers, 1, "server.workers")
        _at_least(self.max_body_bytes, 1, "server.max_body_bytes")
        _at_least(self.max_instances, 1, "server.max_instances")
        _at_least(self.model_rate, 0, "server.model_rate", " (0 = unlimited)")
        _at_least(self.client_rate, 0, "server.client_rate", " (0 = unlimited)")
        _one_of(self.rate_limit_on_error, ("allow", "reject"), "server.rate_limit_on_error")
        _at_least(self.request_id_max, 2, "server.request_id_max")
        for key in ("rate_limit_store", "request_id_store"):
            url = getattr(self, key)
            if url and not url.startswith(REDIS_SCHEMES):
                raise ConfigError(
                    f"server.{key} must be a Redis URL ({', '.join(REDIS_SCHEMES)}...) or empty, got {url!r}"
                )
        _at_least(self.batch_max_size, 1, "server.batch_max_size")
        _at_least(self.batch_max_wait_ms, 0, "server.batch_max_wait_ms")
        _at_least(self.inline_max_ms, 0, "server.inline_max_ms", " (0 = always on a worker thread)")
        _at_least(self.max_pending, 1, "server.max_pending")
        _at_least(self.timeout_ms, 0, "server.timeout_ms", " (0 = no deadline)")
        _at_least(self.cache_max_entries, 1, "server.cache_max_entries")
        _one_of(self.log_format, LOG_FORMATS, "server.log_format")
        # Parsed once here so that a typo fails at load time, naming the key.
        self.refresh_seconds  # noqa: B018
        self.shutdown_seconds  # noqa: B018
        self.cache_ttl_seconds  # noqa: B018
        self.request_id_seconds  # noqa: B018

    @property
    def refresh_seconds(self) -> float:
        """``refresh_interval`` in seconds."""
        return _seconds(self.refresh_interval, "server.refresh_interval")

    @property
    def shutdown_seconds(self) -> float:
        """``shutdown_timeout`` in seconds."""
        return _seconds(self.shutdown_timeout, "server.shutdown_timeout")

    @property
    def cache_ttl_seconds(self) -> float | None:
        """``cache_ttl`` in seconds; None when the prediction cache is off."""
        return _seconds(self.cache_ttl, "server.cache_ttl") if self.cache_ttl else None

    @property
    def request_id_seconds(self) -> float | None:
        """``request_id_window`` in seconds; None when reused request ids are not checked."""
        if not self.request_id_window:
            return None
        return _seconds(self.request_id_window, "server.request_id_window")

    @property
    def timeout_seconds(self) -> float | None:
        """The model-call deadline in seconds; None when there is none."""
        return self.timeout_ms / 1000 if self.timeout_ms else None


#: Sinks an ``alerts.sinks`` list may name.
ALERT_SINKS = ("log", "webhook")


@dataclass(frozen=True)
class AlertsConfig:
    sinks: str = "log"  # comma-separated: log, webhook
    webhook: str = ""  # URL that new alerts are POSTed to
    webhook_format: str = "json"  # "json" or "slack" (a Slack-compatible message)
    webhook_timeout: str = "5s"
    webhook_retries: int = 3
    consecutive: int = 1  # the monitor's alert policy (fourloops.evaluation.alerts.AlertPolicy)
    max_drop: float = 0.05
    min_labels: int = 100
    null_rise: float = 0.05
    rejection_rate: float = 0.01  # share of requests the contract may reject before an alert
    pool: int = 8  # most windows a segment's performance is judged on together
    segment_alpha: float = 0.025  # chance per window that some unchanged segment alerts

    def __post_init__(self) -> None:
        _at_least(self.consecutive, 1, "alerts.consecutive")
        _at_least(self.min_labels, 1, "alerts.min_labels")
        _at_least(self.pool, 1, "alerts.pool")
        if not 0 < self.segment_alpha < 1:
            raise ConfigError(f"alerts.segment_alpha must lie between 0 and 1, got {self.segment_alpha}")
        for name, value in (
            ("alerts.max_drop", self.max_drop),
            ("alerts.null_rise", self.null_rise),
            ("alerts.rejection_rate", self.rejection_rate),
        ):
            if not 0 <= value < 1:
                raise ConfigError(f"{name} must be at least 0 and below 1, got {value}")
        for name in self.sink_names:
            _one_of(name, ALERT_SINKS, "alerts.sinks")
        if "webhook" in self.sink_names and not self.webhook:
            raise ConfigError("alerts.sinks names webhook, but alerts.webhook (the URL to post to) is empty")
        if self.webhook and not self.webhook.startswith(("http://", "https://")):
            raise ConfigError(f"alerts.webhook must be an http(s) URL, got {self.webhook!r}")
        _one_of(self.webhook_format, ("json", "slack"), "alerts.webhook_format")
        _seconds(self.webhook_timeout, "alerts.webhook_timeout")
        _at_least(self.webhook_retries, 0, "alerts.webhook_retries")

    @property
    def sink_names(self) -> list[str]:
        return [n.strip() for n in self.sinks.split(",") if n.strip()]

    @property
    def timeout_seconds(self) -> float:
        return _seconds(self.webhook_timeout, "alerts.webhook_timeout")


@dataclass(frozen=True)
class ProjectConfig:
    name: str = "default"
    definitions: str = "definitions.py"


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one project (paths absolute, URLs resolved)."""

    root: Path
    project: ProjectConfig = field(default_factory=ProjectConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    def path(self, value: str) -> Path:
        """Resolve a configured path against the project folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    def url(self, value: str) -> str:
        """Resolve a ``sqlite:///relative`` URL against the project folder; others unchanged."""
        prefix = "sqlite:///"
        if value.startswith(prefix) and not value.startswith(prefix + "/"):
            rest = value[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str(self.path(rest))
        return value


_SECTIONS: dict[str, type] = {
    "project": ProjectConfig,
    "storage": StorageConfig,
    "engine": EngineConfig,
    "server": ServerConfig,
    "alerts": AlertsConfig,
}


def _coerce(value: Any, expected: type, where: str) -> Any:
    if expected is bool:
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if expected is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
        if not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {type(value).__name__}")
        return value
    if expected is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
    return value


def _section(name: str, cls: type, values: Mapping[str, Any], source: str, env: Mapping[str, str]) -> Any:
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    kwargs: dict[str, Any] = {}
    origin: dict[str, str] = {}  # key -> where its value came from, for messages
    for key, value in values.items():
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"{source}: unknown key '{name}.{key}' (known keys: {known})")
        kwargs[key] = _coerce(value, _field_type(cls, key), f"{source}: key '{name}.{key}'")
        origin[key] = source
    for key in (f.name for f in fields):
        env_name = f"{ENV_PREFIX}{name}_{key}".upper()
        if env_name in env:
            kwargs[key] = _coerce(env[env_name], _field_type(cls, key), f"environment {env_name}")
            origin[key] = f"environment {env_name}"
    try:
        return cls(**kwargs)
    except ConfigError as err:  # a value of the right type that breaks its rule
        culprit = next((k for k in origin if re.search(rf"\b{name}\.{k}\b", str(err))), None)
        where = origin.get(culprit, source) if culprit else source
        raise ConfigError(f"{where}: {err}") from None


def _field_type(cls: type, key: str) -> type:
    annotation = next(f.type for f in dataclasses.fields(cls) if f.name == key)
    if annotation in (bool, "bool"):
        return bool
    if annotation in (float, "float"):
        return float
    return int if annotation in (int, "int") else str


def find_root(start: str | Path) -> Path:
    """The folder holding ``fourloops.toml``: ``start`` or the nearest parent that has one (like git).

    ``start`` itself when no folder up the tree has one (loading it then says so).
    """
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return here


def load_config(root: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read ``fourloops.toml`` in ``root`` and apply environment overrides.

    Raises :class:`ConfigError` with the file, key and problem on any mistake.
    """
    root = Path(root).resolve()
    env = os.environ if env is None else env
    file = root / CONFIG_FILE
    if not root.is_dir():
        raise ConfigError(f"{root}: no such project folder")
    if not file.is_file():
        raise ConfigError(f"{file}: not found (run 'fourloops init {root}' to create a project there)")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: invalid TOML: {err}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file}: cannot read: {err}") from err
    sections: dict[str, Any] = {}
    for name, values in data.items():
        if name not in _SECTIONS:
            known = ", ".join(_SECTIONS)
            raise ConfigError(f"{file}: unknown section [{name}] (known sections: {known})")
        if not isinstance(values, dict):
            raise ConfigError(f"{file}: '{name}' must be a [{name}] table")
    for name, cls in _SECTIONS.items():
        sections[name] = _section(name, cls, data.get(name, {}), str(file), env)
    _check_environment(env)
    return Config(root=root, **sections)


#: ``FOURLOOPS_*`` variables that are not settings (read by the command line, the audit log, tests).
OTHER_VARIABLES = frozenset(
    {"FOURLOOPS_PROJECT", "FOURLOOPS_ACTOR", "FOURLOOPS_REQUIRE_SERVICES", "FOURLOOPS_SERVE_AS_OF"}
)
_OTHER_PREFIXES = ("FOURLOOPS_TEST_", "FOURLOOPS_BENCH_")


def setting_variables() -> list[str]:
    """Every ``FOURLOOPS_<SECTION>_<KEY>`` variable that overrides a setting."""
    return sorted(
        f"{ENV_PREFIX}{section}_{f.name}".upper()
        for section, cls in _SECTIONS.items()
        for f in dataclasses.fields(cls)
    )


def _check_environment(env: Mapping[str, str]) -> None:
    """A misspelled ``FOURLOOPS_*`` variable is an error, like a misspelled key in the file."""
    known = set(setting_variables())
    for name in env:
        if not name.startswith(ENV_PREFIX) or name in known or name in OTHER_VARIABLES:
            continue
        if name.startswith(_OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(name, [*known, *OTHER_VARIABLES], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"environment {name}: not a fourloops setting{hint}")
