"""The SSRF guard at connect time: the connection goes to exactly the address checked.

Checking a URL's host before a request is not enough: the connection resolves the
name again, and a name can answer a public address to the check and ``127.0.0.1`` to
the connection (DNS rebinding). :class:`GuardedBackend` is the network backend of every
outbound client (:mod:`calflow.net.clients`): it resolves the name itself, refuses the
addresses the operator's :class:`~calflow.netpolicy.Allowance` does not cover when they
are not public, and connects to one of the addresses it kept, never to the name. TLS
still verifies the certificate for the name (httpcore starts TLS with the URL's host).

Not public (:func:`calflow.netguard.refusal`): loopback, private (RFC 1918,
unique-local), link-local (the metadata address 169.254.169.254), shared (CGNAT
100.64/10), multicast, reserved, unspecified; and the IPv6 forms that carry an IPv4
address, judged by that address: IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible
(``::a.b.c.d``), 6to4 (``2002::/16``), Teredo (``2001::/32``, the client address) and
NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``). ``[::127.0.0.1]`` and
``64:ff9b::a9fe:a9fe`` are loopback and link-local here.

A refused connection raises :class:`TargetRefused` (an ``httpcore.ConnectError``, so
httpx reports it as ``httpx.ConnectError``); :func:`refused_in` finds it in the cause
chain, so callers report it as a final error naming the rule and the setting, not as
an outage to retry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
from httpcore import AsyncNetworkBackend, AsyncNetworkStream
from httpcore._backends.auto import AutoBackend

from calflow.netguard import refusal
from calflow.netpolicy import SETTING, Allowance, permits

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port)`` → the addresses it resolves to (tests give one they control)."""


class TargetRefused(httpcore.ConnectError):
    """A connection the guard refused; the message names the rule and the setting."""


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class GuardedBackend(AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking before it connects."""

    def __init__(self, allowance: Allowance, resolver: Resolver | None = None) -> None:
        self.allowance = allowance
        self._resolve = resolver or _system_resolver
        self._backend = AutoBackend()

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` a connection may go to (``TargetRefused`` if none)."""
        literal = _literal(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                found = await self._resolve(host, port)
            except OSError as exc:
                raise httpcore.ConnectError(f"host {host!r} cannot be resolved ({exc})") from exc
        kept, refused = [], []
        for address in found:
            why = refusal(address)
            if why is None or permits(self.allowance, host, address):
                kept.append(address)
            else:
                refused.append(f"{address}: {why}")
        if not kept:
            detail = "; ".join(refused) or "it resolves to no address"
            raise TargetRefused(
                f"connection to {host!r} refused: {detail}. Non-public targets are the "
                f"operator's decision: {SETTING} in the server's environment allows them"
            )
        return kept

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.addresses(host, port):
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        raise TargetRefused("unix sockets are not an outbound target")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def refused_in(exc: BaseException) -> TargetRefused | None:
    """The guard's refusal behind ``exc`` (httpx wraps httpcore's errors), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


__all__ = ["GuardedBackend", "Resolver", "TargetRefused", "refusal", "refused_in"]
