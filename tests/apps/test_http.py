"""The http app against a real local HTTP server (loopback allowed by the integration)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from calflow.errors import ConfigError, ValidationError
from calflow.flowapp import ActionResult
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration
from e2e.sandbox_process import free_port

from .savvycal._support import make_integration

BIG = b"x" * (300 * 1024)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]

    def _answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, **headers: str) -> None:
        self._answer(status, json.dumps(data).encode(), "application/json", **headers)

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.seen.append({"method": self.command, "path": parts.path})
        route = parts.path
        if route == "/echo":
            self._json(
                200,
                {
                    "method": self.command,
                    "query": parse_qs(parts.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(),
                },
                X_Trace="t1",
            )
        elif route == "/redirect":
            self._answer(302, b"", "text/plain", Location="/echo?from=redirect")
        elif route == "/missing":
            self._json(404, {"error": "no such thing"})
        elif route == "/boom":
            self._answer(500, b"<h1>oops</h1>", "text/html; charset=utf-8")
        elif route == "/big.json":
            self._answer(200, b'{"a": "' + BIG + b'"}', "application/json")
        elif route == "/binary":
            self._answer(200, b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image/png")
        elif route == "/slow":
            time.sleep(1.0)
            self._json(200, {"late": True})
        elif route == "/drop":
            self.close_connection = True
            self.wfile.flush()
            self.connection.close()
        else:
            self._json(200, {"ok": True})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _route

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client gave up on /slow: a broken pipe is the point


@dataclasses.dataclass
class Server:
    url: str
    seen: list[dict[str, Any]]


@pytest.fixture
def server() -> Iterator[Server]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def http_integration(secrets: dict[str, str] | None = None, **config: str) -> Integration:
    found = make_integration({"allow_private": "true", "base_url": "", **config}, secrets or {})
    return dataclasses.replace(found, app_key="http", name="http test")


async def call(data: dict[str, Any], integration: Integration | None = None) -> ActionResult:
    async with Runner(publish=False) as runner:
        found = integration if integration is not None else http_integration()
        return await runner.run_action("http", "Request", data, found)


async def test_get_json_is_success_with_parsed_body(server: Server) -> None:
    result = await call({"url": f"{server.url}/echo"})
    assert (result.success, result.port) == (True, "success")
    data = result.data
    assert (data["status"], data["reason"], data["method"]) == (200, "OK", "GET")
    assert data["body"]["method"] == "GET" and data["content_type"] == "application/json"
    assert data["headers"]["x-trace"] == "t1" and data["truncated"] is False
    assert data["elapsed_ms"] >= 0


async def test_post_json_query_and_headers(server: Server) -> None:
    result = await call(
        {
            "url": f"{server.url}/echo?keep=1",
            "method": "POST",
            "query": {"tag": ["a", "b"], "n": 3, "flag": True},
            "headers": {"X-Step": "s1"},
            "json": {"booking": "bk_1", "n": [1, 2]},
        }
    )
    echoed = result.data["body"]
    assert echoed["method"] == "POST"
    assert echoed["query"] == {"keep": ["1"], "tag": ["a", "b"], "n": ["3"], "flag": ["true"]}
    assert echoed["headers"]["content-type"] == "application/json"
    assert echoed["headers"]["x-step"] == "s1"
    assert json.loads(echoed["body"]) == {"booking": "bk_1", "n": [1, 2]}


async def test_raw_body_with_its_content_type(server: Server) -> None:
    data = {"url": f"{server.url}/echo", "method": "PUT", "body": "<a/>"}
    plain = await call(data)
    assert plain.data["body"]["headers"]["content-type"] == "text/plain; charset=utf-8"
    xml = await call({**data, "content_type": "application/xml"})
    assert xml.data["body"]["headers"]["content-type"] == "application/xml"
    assert xml.data["body"]["body"] == "<a/>"


@pytest.mark.parametrize(
    "secret",
    [
        '{"Authorization": "Bearer tok-123456", "X-Team": "ops"}',
        "Authorization: Bearer tok-123456\nX-Team: ops\n",
    ],
)
async def test_integration_headers_are_sent_and_never_shown(server: Server, secret: str) -> None:
    found = http_integration({"headers": secret})
    result = await call({"url": f"{server.url}/echo", "headers": {"x-team": "dev"}}, found)
    sent = result.data["body"]["headers"]
    assert sent["authorization"] == "Bearer tok-123456"
    assert sent["x-team"] == "dev"  # the step's header wins
    assert "Authorization" not in found.public_view()["config"]
    assert found.public_view()["secrets"] == {"headers": "********"}


async def test_integration_headers_stay_on_the_base_urls_origin(server: Server) -> None:
    found = http_integration({"headers": "Authorization: Bearer tok-123456"},
                             base_url=f"{server.url}/api")  # fmt: skip
    under = await call({"url": f"{server.url}/echo"}, found)  # same origin, other path
    assert under.data["body"]["headers"]["authorization"] == "Bearer tok-123456"
    port = server.url.rsplit(":", 1)[1]
    before = len(server.seen)
    with pytest.raises(ValidationError, match="not under the integration's base_url") as caught:
        await call({"url": f"http://localhost:{port}/echo"}, found)  # same server, other host
    assert caught.value.errors[0].path == "url" and "tok-123456" not in str(caught.value)
    assert len(server.seen) == before  # nothing was sent
    # without secret headers, any allowed URL may be called
    plain = http_integration(base_url=f"{server.url}/api")
    assert (await call({"url": f"http://localhost:{port}/echo"}, plain)).success


async def test_redirect_is_not_followed(server: Server) -> None:
    result = await call({"url": f"{server.url}/redirect"})
    assert (result.port, result.data["status"]) == ("redirect", 302)
    assert result.data["location"] == "/echo?from=redirect"
    assert [s["path"] for s in server.seen] == ["/redirect"]


async def test_client_and_server_errors_are_ports(server: Server) -> None:
    missing = await call({"url": f"{server.url}/missing"})
    assert (missing.success, missing.port) == (True, "client_error")
    assert missing.data["body"] == {"error": "no such thing"}
    boom = await call({"url": f"{server.url}/boom", "method": "DELETE"})
    assert (boom.success, boom.port, boom.data["status"]) == (True, "server_error", 500)
    assert boom.data["body"] == "<h1>oops</h1>"


async def test_big_body_is_truncated_and_binary_only_sized(server: Server) -> None:
    big = await call({"url": f"{server.url}/big.json"})
    assert big.data["truncated"] is True and big.data["body_bytes"] == 256 * 1024
    assert isinstance(big.data["body"], str) and len(big.data["body"]) == 256 * 1024
    binary = await call({"url": f"{server.url}/binary"})
    assert binary.data["body"] is None and binary.data["body_bytes"] == 264


async def test_head_and_options(server: Server) -> None:
    head = await call({"url": f"{server.url}/echo", "method": "HEAD"})
    assert (head.port, head.data["body"], head.data["body_bytes"]) == ("success", "", 0)
    options = await call({"url": f"{server.url}/", "method": "OPTIONS"})
    assert options.data["body"] == {"ok": True}


async def test_relative_url_under_base_url(server: Server) -> None:
    result = await call({"url": "echo"}, http_integration(base_url=f"{server.url}/"))
    assert result.data["url"] == f"{server.url}/echo"
    with pytest.raises(ValidationError, match="base_url"):
        await call({"url": "echo"})


@pytest.mark.parametrize(
    ("url", "hint"),
    [  # the tests' operator allows loopback only (db_fixtures.LOCAL_TARGETS)
        ("http://127.0.0.1:9/x", "pass allow_private=true to call it"),
        ("http://169.254.169.254/latest/meta-data", "adding '169.254.169.254' or its network"),
        ("http://[::1]/", "pass allow_private=true to call it"),
        ("http://10.1.2.3/", "to CALFLOW_ALLOW_PRIVATE, with allow_private=true"),
    ],
)
async def test_private_addresses_are_refused_by_default(url: str, hint: str) -> None:
    with pytest.raises(ValidationError, match="refused") as caught:
        await call({"url": url}, http_integration(allow_private="false"))
    assert hint in str(caught.value)
    assert caught.value.errors[0].path == "url"
    assert caught.value.errors[0].rule == "private_address"
    assert "--allow-private" not in str(caught.value)
    async with Runner(publish=False) as runner:  # no integration at all: refused too
        with pytest.raises(ValidationError, match="refused"):
            await runner.run_action("http", "Request", {"url": url})


async def test_timeouts_get_is_retryable_post_is_maybe_sent(server: Server) -> None:
    slow = {"url": f"{server.url}/slow", "timeout_s": 0.2}
    got = await call(slow)
    assert (got.success, got.code) == (False, "UNAVAILABLE")
    posted = await call({**slow, "method": "POST", "json": {}})
    assert (posted.success, posted.code) == (False, "MAYBE_SENT")
    assert "may have acted" in str(posted.message)


async def test_dropped_connection(server: Server) -> None:
    got = await call({"url": f"{server.url}/drop"})
    assert got.code == "UNAVAILABLE"
    patched = await call({"url": f"{server.url}/drop", "method": "PATCH", "json": {}})
    assert patched.code == "MAYBE_SENT"


async def test_nothing_listening_is_unavailable_even_for_post() -> None:
    result = await call({"url": f"http://127.0.0.1:{free_port()}/", "method": "POST"})
    assert (result.success, result.code) == (False, "UNAVAILABLE")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"url": ""},
        {"url": "ftp://example.com/file"},
        {"url": "http://user:pw@example.com/"},
        {"url": "https://example.com", "method": "TRACE"},
        {"url": "https://example.com", "json": {}, "body": "x"},
        {"url": "https://example.com", "headers": {"X-A": "a\r\nB: b"}},
        {"url": "https://example.com", "headers": {"Bad Name": "x"}},
        {"url": "https://example.com", "timeout_s": 0},
        {"url": "https://example.com", "query": {"a": {"b": 1}}},
    ],
)
async def test_bad_input_is_a_validation_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        await call(data)


async def test_bad_integration_headers_are_a_config_error(server: Server) -> None:
    for secret in ("[1, 2]", "{not json", "no colon here"):
        with pytest.raises(ConfigError, match="headers") as caught:
            await call({"url": f"{server.url}/"}, http_integration({"headers": secret}))
        assert secret not in str(caught.value)
