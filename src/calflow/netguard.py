"""Checking outbound URLs a user gave us, so they cannot reach internal services (SSRF).

A URL is refused when its scheme is not http(s), when it carries credentials, or when
its host is, or resolves to, an address that is not globally routable: loopback,
private (RFC 1918, unique-local IPv6), link-local (including the cloud metadata address
169.254.169.254), shared (CGNAT), multicast, reserved or unspecified. IPv4-mapped and
NAT64-style IPv6 forms are unwrapped first, so ``[::ffff:127.0.0.1]`` is loopback too.
``allow_private`` turns the address check off (local receivers, the sandbox).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from calflow.errors import FieldError, ValidationError

__all__ = ["check_url", "check_url_sync", "is_public_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _unwrap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.sixtofour is not None:
            return addr.sixtofour
    return addr


def is_public_address(address: str) -> bool:
    """Whether ``address`` (an IP literal) is globally routable and not multicast."""
    try:
        addr = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return False
    return addr.is_global and not addr.is_multicast


def _refuse(field: str, url: str, why: str) -> ValidationError:
    return ValidationError(f"{field} {url!r} is refused: {why}", [FieldError(field, why, "url")])


def _parse(url: str, field: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _refuse(field, url, f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise _refuse(field, url, "only http and https URLs are allowed")
    if not parts.hostname:
        raise _refuse(field, url, "the URL has no host")
    if parts.username or parts.password:
        raise _refuse(field, url, "credentials in the URL are not allowed")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _check_addresses(url: str, field: str, host: str, addresses: list[str]) -> None:
    if not addresses:
        raise _refuse(field, url, f"host {host!r} does not resolve")
    bad = sorted({a for a in addresses if not is_public_address(a)})
    if bad:
        raise _refuse(
            field,
            url,
            f"host {host!r} is a private, loopback or link-local address ({', '.join(bad)}); "
            "pass --allow-private to send to it",
        )


def _literal(host: str) -> list[str] | None:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return None


def _resolve_error(url: str, field: str, host: str, exc: OSError) -> ValidationError:
    return _refuse(field, url, f"host {host!r} cannot be resolved ({exc})")


def _addresses(infos: list[tuple[Any, ...]]) -> list[str]:
    return [str(info[4][0]) for info in infos]


async def check_url(url: str, *, allow_private: bool = False, field: str = "url") -> str:
    """``url`` stripped, or ``ValidationError`` saying why it may not be used."""
    host, port = _parse(url, field)
    if not allow_private:
        addresses = _literal(host)
        if addresses is None:
            try:
                loop = asyncio.get_running_loop()
                addresses = _addresses(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
            except OSError as exc:
                raise _resolve_error(url, field, host, exc) from None
        _check_addresses(url, field, host, addresses)
    return url.strip()


def check_url_sync(url: str, *, allow_private: bool = False, field: str = "url") -> str:
    """:func:`check_url` for code without an event loop."""
    host, port = _parse(url, field)
    if not allow_private:
        addresses = _literal(host)
        if addresses is None:
            try:
                addresses = _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
            except OSError as exc:
                raise _resolve_error(url, field, host, exc) from None
        _check_addresses(url, field, host, addresses)
    return url.strip()
