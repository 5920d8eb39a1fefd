"""Where new alerts go: a log line, a webhook (JSON, or a Slack-compatible message).

Sending never blocks monitoring and never fails it: a :class:`Dispatcher`
hands each batch of alerts to a background thread, which posts it with a
timeout and retries with exponential backoff; a delivery that still fails is
logged and counted (``Dispatcher.failures``), and the alerts stay in the
metadata store whatever happens. ``close(timeout)`` waits, at most that long,
for what is queued (the command line calls it before it exits).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fourloops.errors import ConfigError
from fourloops.evaluation.alerts import Alert

__all__ = ["AlertSink", "Dispatcher", "LogSink", "WebhookSink", "sinks_from"]

logger = logging.getLogger("fourloops.alerts")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_SLACK_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


class AlertSink(Protocol):
    """Something that takes new alerts of a model."""

    def send(self, model: str, alerts: Sequence[Alert]) -> None: ...


@dataclass(frozen=True)
class LogSink:
    """One log line per alert on the ``fourloops.alerts`` logger, at the alert's severity."""

    def send(self, model: str, alerts: Sequence[Alert]) -> None:
        for a in alerts:
            logger.log(
                _LEVELS.get(a.severity, logging.WARNING), "model %s: %s -- %s", model, a.line(), a.action
            )


def _post(url: str, body: bytes, timeout: float) -> None:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - the user's own URL
            status = answer.status
    except urllib.error.HTTPError as err:
        err.close()  # it holds the connection open otherwise
        raise OSError(f"{url} answered {err.code}") from None
    if status >= 300:
        raise OSError(f"{url} answered {status}")


@dataclass(frozen=True)
class WebhookSink:
    """POST the alerts to ``url``: as JSON (``{"model", "alerts": [...]}``) or a Slack-compatible message.

    Retried ``retries`` times after the first try, waiting ``backoff`` seconds, doubled each time.
    """

    url: str
    format: str = "json"
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    post: Callable[[str, bytes, float], None] = field(default=_post, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"alerts webhook must be an http(s) URL, got {self.url!r}")
        if self.format not in ("json", "slack"):
            raise ConfigError(f"alerts webhook format must be 'json' or 'slack', got {self.format!r}")

    def payload(self, model: str, alerts: Sequence[Alert]) -> dict[str, Any]:
        if self.format == "slack":
            lines = [f"*fourloops: {len(alerts)} new alert(s) on model `{model}`*"]
            for a in alerts:
                lines.append(f"{_SLACK_ICON.get(a.severity, '')} *{a.kind}* — {a.cause}\n> {a.action}")
            return {"text": "\n".join(lines)}
        return {"model": model, "alerts": [a.to_dict() for a in alerts]}

    def send(self, model: str, alerts: Sequence[Alert]) -> None:
        body = json.dumps(self.payload(model, alerts), default=str).encode()
        wait = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self.post(self.url, body, self.timeout)
                return
            except (OSError, urllib.error.URLError) as err:
                if attempt == self.retries:
                    raise
                logger.info(
                    "alerts webhook: attempt %d failed (%s); retrying in %.1fs", attempt + 1, err, wait
                )
                time.sleep(wait)
                wait *= 2


class Dispatcher:
    """Sends batches of alerts to sinks on a background thread (see the module docstring)."""

    def __init__(self, sinks: Sequence[AlertSink]) -> None:
        self.sinks = list(sinks)
        self.failures = 0
        self.sent = 0
        self._queue: queue.Queue[tuple[str, list[Alert]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Dispatcher(sinks={self.sinks!r})"

    def submit(self, model: str, alerts: Sequence[Alert]) -> None:
        """Queue ``alerts`` for every sink; returns at once."""
        if not alerts or not self.sinks:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fourloops-alerts", daemon=True)
            self._thread.start()
        self._queue.put((model, list(alerts)))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                model, alerts = item
                for sink in self.sinks:
                    try:
                        sink.send(model, alerts)
                        self.sent += len(alerts)
                    except Exception as err:  # a sink must never take monitoring down
                        self.failures += 1
                        logger.error(
                            "alerts: %s failed to take %d alert(s): %s", type(sink).__name__, len(alerts), err
                        )
            finally:
                self._queue.task_done()

    def close(self, timeout: float = 10.0) -> bool:
        """Wait up to ``timeout`` seconds for queued alerts; True when everything was handed over."""
        if self._thread is None:
            return True
        self._queue.put(None)
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        self._thread = None if done else self._thread
        return done


def sinks_from(
    names: Sequence[str],
    *,
    webhook: str = "",
    webhook_format: str = "json",
    timeout: float = 5.0,
    retries: int = 3,
) -> list[AlertSink]:
    """The sinks named in configuration (``log``, ``webhook``)."""
    out: list[AlertSink] = []
    for name in names:
        if name == "log":
            out.append(LogSink())
        elif name == "webhook":
            if not webhook:
                raise ConfigError("alerts.sinks names 'webhook' but alerts.webhook (its URL) is empty")
            out.append(WebhookSink(webhook, webhook_format, timeout, retries))
        else:
            raise ConfigError(f"alerts.sinks: unknown sink {name!r}; choose from log, webhook")
    return out
