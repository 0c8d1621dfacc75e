"""The SSRF guard at connect time: the connection goes to exactly the address checked.

Checking a URL's host before a request is not enough: the connection resolves the
name again, and a name can answer a public address to the check and ``127.0.0.1`` to
the connection (DNS rebinding). :class:`Guard` is the resolver of every outbound
connection (:mod:`calflow.net.transport`): it resolves the name itself, refuses the
addresses the operator's :class:`~calflow.netpolicy.Allowance` does not cover when they
are not public, and hands the connection only the addresses it kept. TLS still
verifies the certificate for the name (aiohttp starts TLS with the URL's host).

Not public (:func:`calflow.netguard.refusal`): loopback, private (RFC 1918,
unique-local), link-local (the metadata address 169.254.169.254), shared (CGNAT
100.64/10), multicast, reserved, unspecified; and the IPv6 forms that carry an IPv4
address, judged by that address: IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible
(``::a.b.c.d``), 6to4 (``2002::/16``), Teredo (``2001::/32``, the client address) and
NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``). ``[::127.0.0.1]`` and
``64:ff9b::a9fe:a9fe`` are loopback and link-local here.

A refused connection raises :class:`TargetRefused`, a name that does not resolve
:class:`HostUnresolved` (both :class:`GuardError`); the transport reports them as
``httpx.ConnectError`` caused by them, and :func:`refused_in` finds a refusal in the
cause chain, so callers report it as a final error naming the rule and the setting,
not as an outage to retry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from calflow.netguard import refusal
from calflow.netpolicy import SETTING, Allowance, permits

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port)`` → the addresses it resolves to (tests give one they control)."""


class GuardError(Exception):
    """The guard found no address a connection may go to."""


class TargetRefused(GuardError):
    """A connection the guard refused; the message names the rule and the setting."""


class HostUnresolved(GuardError):
    """The name resolves to nothing (the resolver's error is the cause)."""


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def literal_address(host: str) -> str | None:
    """``host`` as a normalized IP address if it is one (``[::1]`` too), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class Guard:
    """Resolves a name and keeps the addresses a connection may go to."""

    def __init__(self, allowance: Allowance, resolver: Resolver | None = None) -> None:
        self.allowance = allowance
        self._resolve = resolver or _system_resolver

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` a connection may go to (``TargetRefused`` if none)."""
        literal = literal_address(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                found = await self._resolve(host, port)
            except OSError as exc:
                raise HostUnresolved(f"host {host!r} cannot be resolved ({exc})") from exc
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


def refused_in(exc: BaseException) -> TargetRefused | None:
    """The guard's refusal behind ``exc`` (the transport's errors are caused by it), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return seen
        after = seen.__cause__ or seen.__context__
        seen = None if after is seen else after
    return None


__all__ = [
    "Guard", "GuardError", "HostUnresolved", "Resolver", "TargetRefused", "literal_address",
    "refusal", "refused_in",
]  # fmt: skip
