"""The provider client's transport (httpx on aiohttp's pool) reports calflow's errors,
not ``httpx-aiohttp``'s: a server that closes without answering is a protocol error
naming it (``httpx-aiohttp`` 0.2.0 calls it a connect timeout), a name that does not
resolve is a connect error naming the host, a refusal is caused by the guard's."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from calflow.net.clients import outbound_client
from calflow.net.guard import TargetRefused, refused_in
from calflow.net.transport import translated
from calflow.netpolicy import NOTHING, parse_allowance

LOCAL = parse_allowance("127.0.0.1")


@pytest.fixture
async def hangs_up() -> AsyncIterator[int]:
    """A server that reads the request and closes without a word."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_server_that_hangs_up_is_a_protocol_error_naming_it(hangs_up: int) -> None:
    async with outbound_client(LOCAL, timeout_s=5) as http:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await http.post(f"http://127.0.0.1:{hangs_up}/x", content=b"{}")
    assert "connection closed without a response" in str(caught.value)
    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)


async def test_a_name_that_does_not_resolve_is_a_connect_error_naming_it() -> None:
    async def nowhere(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async with outbound_client(NOTHING, resolver=nowhere) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get("http://cal.invalid/v2/me")
    assert "'cal.invalid' cannot be resolved" in str(caught.value)
    assert refused_in(caught.value) is None  # unreachable, not refused: may be retried


async def test_a_header_with_a_newline_is_refused_before_connecting() -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError("resolved: the request was not refused first")

    async with outbound_client(NOTHING, resolver=never) as http:
        with pytest.raises(httpx.LocalProtocolError, match="x-note"):
            await http.get("http://cal.example/", headers={"X-Note": "a\r\nHost: evil"})


@pytest.mark.parametrize(
    ("raised", "expected", "words"),
    [
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError, "closed without"),
        (aiohttp.ClientPayloadError("cut"), httpx.RemoteProtocolError, "truncated"),
        (aiohttp.SocketTimeoutError(), httpx.ReadTimeout, "read timed out"),
        (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout, "connect timed out"),
        (TargetRefused("refused: loopback"), httpx.ConnectError, "refused: loopback"),
    ],
)
def test_each_error_is_translated_by_what_happened(
    raised: Exception, expected: type[Exception], words: str
) -> None:
    mapped = translated(raised)
    assert type(mapped) is expected and words in str(mapped)
    wrapped = httpx.ConnectTimeout("what httpx-aiohttp says")  # judged by its cause
    wrapped.__cause__ = raised
    assert type(translated(wrapped)) is expected


def test_an_error_that_is_its_own_cause_ends_the_search() -> None:
    error = httpx.RemoteProtocolError("response body too large")
    error.__cause__ = error
    assert refused_in(error) is None
