"""Log output of long-running commands (``fourloops serve``): plain text or one JSON object per line.

JSON lines are what log shippers (Fluent Bit, Vector, Loki, CloudWatch) parse
without a grok pattern. Every line has ``ts`` (UTC, ISO 8601), ``level``,
``logger`` and ``message``; fields passed with ``extra=`` (``model``,
``version``, ``request_id``, ...) become keys of their own; an exception
adds ``exception``. Access lines of the HTTP server carry ``client``,
``method``, ``path``, ``http_version`` and ``status``.

    >>> import logging
    >>> args = ("fourloops.server", logging.INFO, __file__, 1, "model %s ready", ("m",), None)
    >>> record = logging.LogRecord(*args)
    >>> record.version = 3
    >>> line = JsonFormatter().format(record)
    >>> import json; {k: v for k, v in json.loads(line).items() if k != "ts"}
    {'level': 'info', 'logger': 'fourloops.server', 'message': 'model m ready', 'version': 3}
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from fourloops.errors import ConfigError

__all__ = ["LOG_FORMATS", "JsonFormatter", "logging_config"]

LOG_FORMATS = ("text", "json")

# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """Format a record as one compact JSON object (no newlines inside)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            out.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def logging_config(log_format: str, *, level: str = "info") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for the server (uvicorn's loggers and fourloops')."""
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"server.log_format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    if log_format == "json":
        formatters: dict[str, Any] = {"default": {"()": JsonFormatter}, "access": {"()": JsonFormatter}}
    else:
        formatters = {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(asctime)s %(levelname)s %(client_addr)s "%(request_line)s" %(status_code)s',
                "use_colors": False,
            },
        }
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": upper, "propagate": False},
            "fourloops": {"handlers": ["default"], "level": upper, "propagate": False},
        },
    }
