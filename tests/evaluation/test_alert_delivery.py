"""Alerts kept once per episode, snoozed, and delivered to a real webhook with retries, never blocking."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import fourloops as fl
from fourloops.config import load_config
from fourloops.errors import ConfigError
from fourloops.evaluation.alerts import Alert
from fourloops.evaluation.sinks import Dispatcher, LogSink, WebhookSink

from .test_monitor import frame

T = datetime(2024, 1, 1, tzinfo=UTC)


def _alert(kind: str = "input_drift", column: str | None = "x") -> Alert:
    return Alert(
        kind, "warning", 2, T, T + timedelta(days=1), column, None, {"effect": 0.3}, "cause", "action", (2,)
    )


def test_a_webhook_gets_the_alerts_after_a_failed_try(hook: tuple[str, Any]) -> None:
    url, handler = hook
    handler.fail_first = 2
    sink = WebhookSink(url, retries=3, backoff=0.01)
    dispatcher = Dispatcher([sink])
    dispatcher.submit("delay", [_alert()])
    assert dispatcher.close(timeout=30)
    assert dispatcher.failures == 0 and dispatcher.sent == 1
    [body] = handler.bodies
    assert body["model"] == "delay" and body["alerts"][0]["kind"] == "input_drift"
    assert body["alerts"][0]["evidence"] == {"effect": 0.3}


def test_slack_format_and_a_webhook_that_never_answers_well(hook: tuple[str, Any]) -> None:
    url, handler = hook
    slack = Dispatcher([WebhookSink(url, format="slack", backoff=0.01)])
    slack.submit("delay", [_alert(), _alert("performance", None)])
    assert slack.close(timeout=30)
    [body] = handler.bodies
    assert set(body) == {"text"} and "delay" in body["text"] and "performance" in body["text"]
    handler.fail_first = 100
    failing = Dispatcher([WebhookSink(url, retries=1, backoff=0.01), LogSink()])
    failing.submit("delay", [_alert()])
    assert failing.close(timeout=30)
    assert failing.failures == 1 and failing.sent == 1  # the log still took it


def test_submitting_never_waits_for_a_slow_sink() -> None:
    release = threading.Event()
    seen: list[str] = []

    class Slow:
        def send(self, model: str, alerts: object) -> None:
            release.wait(30)
            seen.append(model)

    dispatcher = Dispatcher([Slow()])
    dispatcher.submit("a", [_alert()])
    dispatcher.submit("b", [_alert()])  # returned although the sink is still stuck on "a"
    assert seen == []
    release.set()
    assert dispatcher.close(timeout=30)
    assert seen == ["a", "b"]


def test_alert_settings_are_checked_when_the_project_loads(tmp_path: Path) -> None:
    def config(text: str) -> None:
        (tmp_path / "fourloops.toml").write_text('[project]\nname = "x"\n' + text)
        load_config(tmp_path, env={})

    config(
        '[alerts]\nsinks = "log,webhook"\nwebhook = "https://example.invalid/h"\nwebhook_format = "slack"\n'
    )
    with pytest.raises(ConfigError, match="alerts.sinks"):
        config('[alerts]\nsinks = "pager"\n')
    with pytest.raises(ConfigError, match="alerts.webhook"):
        config('[alerts]\nsinks = "webhook"\n')
    with pytest.raises(ConfigError, match="alerts.webhook_format"):
        config('[alerts]\nwebhook_format = "xml"\n')
    config("[alerts]\nconsecutive = 2\nmax_drop = 0.1\nmin_labels = 50\nnull_rise = 0.2\npool = 4\n")
    with pytest.raises(ConfigError, match="alerts.pool"):
        config("[alerts]\npool = 0\n")
    with pytest.raises(ConfigError, match="alerts.segment_alpha"):
        config("[alerts]\nsegment_alpha = 1.0\n")
    with pytest.raises(ConfigError, match="alerts.consecutive"):
        config("[alerts]\nconsecutive = 0\n")
    with pytest.raises(ConfigError, match="alerts.max_drop"):
        config("[alerts]\nmax_drop = 1.5\n")
    with pytest.raises(ConfigError, match="alerts.max_drop.*expected a number"):
        config('[alerts]\nmax_drop = "a lot"\n')
    with pytest.raises(ConfigError, match="finite"):
        config("[alerts]\nnull_rise = nan\n")


def test_a_bad_sink_setting_is_refused_in_code_too() -> None:
    with pytest.raises(ConfigError, match="http"):
        WebhookSink("ftp://x")
    assert fl.monitor(frame(500, 1), frame(500, 2)).alerts == []  # and monitoring alone needs no sink


def test_the_log_sink_writes_one_line_per_alert(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="fourloops.alerts"):
        LogSink().send("delay", [_alert(), _alert("performance", None)])
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
    assert "input_drift" in caplog.records[0].getMessage()


def test_frames_monitor_json_has_no_sink_side_effects() -> None:
    shifted = pl.concat([frame(1000, 3), frame(1000, 4, shift=1.0)])
    result = fl.monitor(frame(5000, 5), shifted, window=1000)
    assert [a.kind for a in result.alerts if a.column == "x"] == ["input_drift"]
