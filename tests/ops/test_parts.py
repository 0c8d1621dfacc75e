"""The operator parts in one process: log formatters, the serve lock, the listening
socket, route labels, the outbound-error counter and what ``demo --fresh`` may wipe."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from calflow.cli.demo_cmd import _foreign_files
from calflow.errors import CalflowError, ConfigError
from calflow.flowapp.http import ProviderClient, RetryPolicy
from calflow.logs import JsonFormatter, TextFormatter, configure, fields
from calflow.metrics import route_group
from calflow.server.listen import listen
from calflow.server.serve_lock import ServeLock, ServeLockHeld, holder


def _record(text: str, **values: object) -> logging.LogRecord:
    record = logging.LogRecord("calflow.test", logging.INFO, __file__, 1, text, (), None)
    record.fields = fields(**values)["fields"]
    return record


def test_json_lines_keep_their_own_keys_and_drop_none() -> None:
    line = JsonFormatter().format(_record("hello", msg="spoof", run="run_1", port=None))
    data = json.loads(line)
    assert data["msg"] == "hello" and data["run"] == "run_1" and "port" not in data
    assert data["level"] == "info" and data["logger"] == "calflow.test"
    assert data["ts"].endswith("Z")


def test_text_lines_quote_values_with_spaces() -> None:
    line = TextFormatter().format(_record("GET /", path="/a b", status=200))
    assert line.endswith('INFO calflow.test GET /  path="/a b" status=200')


def test_other_libraries_stay_at_warning_even_at_debug() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (root.level, logging.getLogger("calflow").level, list(root.handlers))
    try:
        configure("debug", "text", stream)
        logging.getLogger("httpx").info("HTTP Request: GET https://x.test/?apiKey=secret")
        logging.getLogger("calflow.x").debug("kept")
    finally:
        for handler in root.handlers:
            if handler not in before[2]:
                root.removeHandler(handler)
        root.setLevel(before[0])
        logging.getLogger("calflow").setLevel(before[1])
    assert "kept" in stream.getvalue() and "apiKey" not in stream.getvalue()


def test_the_serve_lock_is_one_per_home_and_names_its_holder(tmp_path: Path) -> None:
    assert holder(tmp_path) is None
    with ServeLock(tmp_path) as first:
        first.record("http://127.0.0.1:8123")
        found = holder(tmp_path)
        assert found is not None and found.pid == os.getpid()
        assert found.url == "http://127.0.0.1:8123"
        with pytest.raises(ServeLockHeld) as refused:
            ServeLock(tmp_path).acquire()  # another open file: flock refuses it
        assert str(tmp_path) in refused.value.message
        assert f"pid {os.getpid()}, http://127.0.0.1:8123" in refused.value.message
    assert holder(tmp_path) is None  # released
    assert (tmp_path / "serve.lock").stat().st_mode & 0o777 == 0o600
    with ServeLock(tmp_path):
        pass


def test_listen_names_a_busy_port_and_an_unknown_host() -> None:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # listening at once
        with pytest.raises(ConfigError) as busy:
            listen("127.0.0.1", port)
    finally:
        sock.close()
    assert f"127.0.0.1:{port}: address already in use" in busy.value.message
    assert "--port" in busy.value.message
    with pytest.raises(ConfigError) as unknown:
        listen("no-such-host.invalid", 8000)
    assert "--host" in unknown.value.message


@pytest.mark.parametrize(
    ("path", "group"),
    [("/", "console"), ("/hooks/int_1", "hooks"), ("/api/v1/events", "api"),
     ("/healthz", "healthz"), ("/wp-admin/x", "other"), ("/assets/a.js", "assets")],
)  # fmt: skip
def test_route_labels_are_bounded(path: str, group: str) -> None:
    assert route_group(path) == group


async def test_a_failed_provider_call_is_counted_by_kind() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"message": "down"})

    labels = {"provider": "provider", "kind": "server"}
    name = "calflow_outbound_http_errors_total"
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = ProviderClient(http, "https://p.test", policy=RetryPolicy(max_retries=1))
        with pytest.raises(CalflowError):
            await client.request("GET", "/x")
    assert REGISTRY.get_sample_value(name, labels) == before + 2  # the call and its retry


def test_demo_fresh_wipes_what_calflow_made_only(tmp_path: Path) -> None:
    for name in ("calflow.db", "calflow.db-wal", "calflow.db-writer.lock",
                 "calflow.db-writer-queue.lock", "dbos.sqlite", "dispatch.lock",
                 "secret.key", "serve.lock"):  # fmt: skip
        (tmp_path / name).write_text("")
    assert _foreign_files(tmp_path) == []
    (tmp_path / "notes.txt").write_text("mine")
    assert _foreign_files(tmp_path) == ["notes.txt"]
