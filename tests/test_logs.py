"""Structured logs: the JSON formatter, and a real server process logging JSON lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fourloops.errors import ConfigError
from fourloops.logs import JsonFormatter, logging_config
from fourloops.testing import free_port
from trips import prepare_project


def _record(msg: str, *args: object, name: str = "fourloops.server", **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_level_logger_message_and_extra_fields() -> None:
    line = JsonFormatter().format(_record("model %s: %d rows late", "m", 3, model="m", rows=3))
    out = json.loads(line)
    assert out["level"] == "warning" and out["logger"] == "fourloops.server"
    assert out["message"] == "model m: 3 rows late" and out["model"] == "m" and out["rows"] == 3
    assert out["ts"].endswith("+00:00") and "\n" not in line


def test_json_lines_keep_exceptions_and_odd_values_on_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.__dict__["where"] = Path("/tmp/a")  # not JSON: written as text
    line = JsonFormatter().format(record)
    out = json.loads(line)
    assert "ValueError: bad" in out["exception"] and out["where"] == "/tmp/a" and "\n" not in line


def test_access_lines_have_named_fields() -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", "/v1/x", "1.1", 200, name="uvicorn.access"
    )
    out = json.loads(JsonFormatter().format(record))
    assert (out["method"], out["path"], out["status"], out["client"]) == ("POST", "/v1/x", 200, "127.0.0.1:5")


def test_an_unknown_log_format_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="server.log_format"):
        logging_config("xml")
    assert logging_config("text")["loggers"]["fourloops"]["level"] == "INFO"


@pytest.mark.slow
def test_a_server_started_with_json_logs_writes_only_json_lines(tmp_path: Path) -> None:
    root = tmp_path / "p"
    prepare_project(root, materialize=False)
    port = free_port()
    cmd = [sys.executable, "-m", "fourloops.cli", "serve", "--project", str(root), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--log-format", "json"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        body = {"inputs": {"station": "a", "load": 0.5, "rain": 1.0}}
        assert httpx.post(f"{base}/v1/models/late/predict", json=body).status_code == 200
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # fails on any non-JSON line
    serving = [x for x in lines if x["message"].startswith("serving model late")]
    assert serving and serving[0]["model"] == "late" and serving[0]["routing"]["champion"] == 1
    access = [
        x for x in lines if x["logger"] == "uvicorn.access" and x.get("path") == "/v1/models/late/predict"
    ]
    assert access and access[0]["status"] == 200 and access[0]["method"] == "POST"
    assert any(x["logger"] == "uvicorn.error" for x in lines)  # uvicorn's own lines are JSON too


def test_doctests() -> None:
    import doctest

    import fourloops.logs

    assert doctest.testmod(fourloops.logs).failed == 0
