"""Outbound HTTP against a matrix of real receivers, each a process (issue #15, item 2):
``http.server`` in HTTP/1.0 and HTTP/1.1, a threaded ``http.server``, uvicorn, aiohttp's
server, and raw servers for chunked bodies with trailers, ``100 Continue``, a server
closing idle keep-alive connections, a slow head and a truncated body. Both clients
calflow has run the matrix: replay's delivery :class:`~calflow.net.poster.Poster`
(aiohttp) and the provider client (:func:`~calflow.net.clients.outbound_client`, httpx
on aiohttp).
Errors are httpx's types, each naming what went wrong; a header with CR or LF is
refused before anything is sent."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from calflow.net.clients import outbound_client
from calflow.net.poster import Poster
from calflow.netpolicy import parse_allowance
from e2e.sandbox_process import free_port

pytestmark = pytest.mark.slow

LOCAL = parse_allowance("127.0.0.1")
SCRIPT = Path(__file__).with_name("receivers.py")
BODY = b'{"id": "evt_1", "data": "' + b"x" * 5000 + b'"}'
Post = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]


def _start(kind: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    args = [sys.executable, str(SCRIPT), kind, str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"{kind} did not start: {line!r}"
    return proc, port


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, int]]:
    kinds = ["stdlib10", "stdlib11", "threaded", "uvicorn", "aiohttp", "chunked", "continue",
             "closing", "slowhead", "truncated"]  # fmt: skip
    started = {kind: _start(kind) for kind in kinds}
    try:
        yield {kind: port for kind, (_, port) in started.items()}
    finally:
        for proc, _ in started.values():
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


class Clients:
    """One client of each kind for one URL, and a way to post through either."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.poster = Poster(url, max_connections=4, timeout_s=timeout_s, allowance=LOCAL)
        self.http = outbound_client(LOCAL, timeout_s=timeout_s)

    async def post(self, kind: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if kind == "poster":
            answer = await self.poster.post(body, headers)
            return answer.status_code, answer.content
        resp = await self.http.post(self.url, content=body, headers=headers)
        return resp.status_code, resp.content

    async def aclose(self) -> None:
        await self.poster.aclose()
        await self.http.aclose()


CLIENTS = ["poster", "httpx"]
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("server", ["stdlib10", "stdlib11", "threaded", "uvicorn", "aiohttp",
                                    "chunked", "continue"])  # fmt: skip
async def test_every_receiver_gets_every_body_whole(
    receivers: dict[str, int], server: str, client: str
) -> None:
    clients = Clients(f"http://127.0.0.1:{receivers[server]}/hook")
    try:
        answers = [await clients.post(client, BODY, JSON) for _ in range(20)]
    finally:
        await clients.aclose()
    assert {status for status, _ in answers} == {200}
    assert all(body.startswith(b"ok:") and body.endswith(f":{len(BODY)}".encode())
               for _, body in answers), answers[:3]  # fmt: skip


@pytest.mark.parametrize("client", CLIENTS)
async def test_keep_alive_connections_are_reused(receivers: dict[str, int], client: str) -> None:
    clients = Clients(f"http://127.0.0.1:{receivers['stdlib11']}/hook")
    try:
        answers = [await clients.post(client, BODY, JSON) for _ in range(10)]
    finally:
        await clients.aclose()
    assert len({body.split(b":")[1] for _, body in answers}) == 1, answers  # one connection


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_server_closing_idle_connections_costs_no_failure(
    receivers: dict[str, int], client: str
) -> None:
    clients = Clients(f"http://127.0.0.1:{receivers['closing']}/hook")
    try:
        answers = []
        for _ in range(5):
            answers.append(await clients.post(client, BODY, JSON))
            await asyncio.sleep(0.15)  # the server closes the idle connection meanwhile
    finally:
        await clients.aclose()
    assert [status for status, _ in answers] == [200] * 5


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_slow_head_is_a_timeout(receivers: dict[str, int], client: str) -> None:
    clients = Clients(f"http://127.0.0.1:{receivers['slowhead']}/hook", timeout_s=0.5)
    try:
        with pytest.raises(httpx.TimeoutException):
            await clients.post(client, BODY, JSON)
    finally:
        await clients.aclose()


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_truncated_body_is_a_protocol_error_naming_it(
    receivers: dict[str, int], client: str
) -> None:
    clients = Clients(f"http://127.0.0.1:{receivers['truncated']}/hook")
    try:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await clients.post(client, BODY, JSON)
    finally:
        await clients.aclose()
    assert any(word in str(caught.value) for word in ("truncated", "incomplete", "complete")), (
        caught.value
    )


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("bad", [{"x-evil": "a\r\nx-injected: 1"}, {"x-evil\nx": "v"}])
async def test_a_header_with_cr_or_lf_is_refused_before_sending(
    receivers: dict[str, int], client: str, bad: dict[str, str]
) -> None:
    clients = Clients(f"http://127.0.0.1:{receivers['stdlib11']}/hook")
    try:
        with pytest.raises((httpx.LocalProtocolError, ValueError)):
            await clients.post(client, BODY, {**JSON, **bad})
        status, _ = await clients.post(client, BODY, JSON)  # the client is still usable
    finally:
        await clients.aclose()
    assert status == 200
