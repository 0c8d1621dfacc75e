"""The SSRF guard at connect time (issue #15, item 3): every non-public form of an
address is refused, the connection goes to exactly the address that was checked (a
name that answers a public address to the check and 127.0.0.1 to the connection does
not reach 127.0.0.1), redirects are not followed, and a refusal is a final error
naming the rule and the setting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from calflow.errors import ConfigError
from calflow.flowapp.http import ProviderClient
from calflow.net.clients import outbound_client
from calflow.net.guard import refused_in
from calflow.netguard import refusal
from calflow.netpolicy import NOTHING, SETTING, parse_allowance

REFUSED = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "224.0.0.1", "0.0.0.0", "240.0.0.1", "::1", "::", "fc00::1", "fe80::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "::10.0.0.1",
    "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:7f00:1::1",
    "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:80ff:fffe",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize("address", REFUSED)
def test_every_non_public_form_is_refused(address: str) -> None:
    assert refusal(address) is not None, address


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None, (address, refusal(address))


def test_embedded_forms_say_what_they_carry() -> None:
    assert refusal("64:ff9b::a9fe:a9fe") == (
        "a link-local address (as the cloud metadata address is), inside an IPv6 form "
        "(64:ff9b::a9fe:a9fe)"
    )


@dataclass
class Receiver:
    """A plain HTTP server on 127.0.0.1 that counts the requests it got."""

    port: int = 0
    requests: list[bytes] = field(default_factory=list)
    answer: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        writer.write(self.answer)
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found


class Rebinding:
    """Answers a public address to the first lookup, 127.0.0.1 to the later ones."""

    def __init__(self) -> None:
        self.lookups = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups += 1
        return ["93.184.216.34"] if self.lookups == 1 else ["127.0.0.1"]


async def test_a_rebinding_name_cannot_reach_loopback(receiver: Receiver) -> None:
    rebinding = Rebinding()
    assert await rebinding("rebind.example", receiver.port) == ["93.184.216.34"]  # the check
    async with outbound_client(NOTHING, resolver=rebinding) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(f"http://rebind.example:{receiver.port}/")
    refused = refused_in(caught.value)
    assert refused is not None and "127.0.0.1: a loopback address" in str(refused)
    assert SETTING in str(refused)
    assert rebinding.lookups == 2 and receiver.requests == []


async def test_the_connection_goes_to_the_checked_address(receiver: Receiver) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # the system cannot resolve the name: only this can

    allowed = parse_allowance("127.0.0.1")
    async with outbound_client(allowed, resolver=resolver) as client:
        resp = await client.get(f"http://calflow-guard.invalid:{receiver.port}/path")
    assert resp.status_code == 200 and resp.text == "ok"
    (head,) = receiver.requests
    assert head.startswith(b"GET /path HTTP/1.1") and b"host: calflow-guard.invalid" in head.lower()


async def test_a_literal_address_is_checked_too_and_ipv6_forms_of_it(receiver: Receiver) -> None:
    async with outbound_client(NOTHING) as client:
        port = receiver.port
        for url in (f"http://127.0.0.1:{port}/", f"http://[::ffff:127.0.0.1]:{port}/"):
            with pytest.raises(httpx.ConnectError) as caught:
                await client.get(url)
            assert refused_in(caught.value) is not None
    assert receiver.requests == []


async def test_redirects_are_never_followed(receiver: Receiver) -> None:
    receiver.answer = (b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest\r\n"
                       b"Content-Length: 0\r\nConnection: close\r\n\r\n")  # fmt: skip
    async with outbound_client(parse_allowance("127.0.0.1")) as client:
        resp = await client.get(f"http://127.0.0.1:{receiver.port}/")
    assert resp.status_code == 302 and len(receiver.requests) == 1


async def test_a_provider_call_refused_at_connect_is_a_final_error(receiver: Receiver) -> None:
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with outbound_client(NOTHING, resolver=loopback) as http:
        client = ProviderClient(http, f"http://cal.example:{receiver.port}")
        client.provider_name = "Cal.com"
        with pytest.raises(ConfigError) as caught:
            await client.request("GET", "/v2/bookings")
    assert "Cal.com: connection to 'cal.example' refused" in caught.value.message
    assert SETTING in caught.value.message and receiver.requests == []
