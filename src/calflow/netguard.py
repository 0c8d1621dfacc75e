"""Checking outbound URLs a user gave us, so they cannot reach internal services (SSRF).

A URL is refused when its scheme is not http(s), when it carries credentials, or when
its host is, or resolves to, an address that is not globally routable: loopback,
private (RFC 1918, unique-local IPv6), link-local (including the cloud metadata address
169.254.169.254), shared (CGNAT), multicast, reserved or unspecified. The IPv6 forms
that carry an IPv4 address (mapped, compatible, 6to4, Teredo, NAT64) are judged by that
address, so ``[::ffff:127.0.0.1]``, ``[::127.0.0.1]`` and ``64:ff9b::a9fe:a9fe`` are
refused too (:func:`refusal`, which the connect-time guard of :mod:`calflow.net.guard`
shares).
``allow_private`` turns the address check off (local receivers, the sandbox).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from calflow.errors import FieldError, ValidationError

__all__ = ["check_url", "check_url_sync", "check_url_syntax", "is_public_address", "refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_COMPAT = ipaddress.IPv6Network("::/96")


def _embedded(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries, if it is one of those forms."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if any(addr in net for net in _NAT64):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr in _COMPAT and int(addr) > 1:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def refusal(address: str) -> str | None:
    """Why ``address`` (an IP literal) is not public, or None when it is."""
    try:
        addr: IPAddress = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return "not an IP address"
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded(addr)
        if inner is not None:
            why = refusal(str(inner))
            return f"{why}, inside an IPv6 form ({address})" if why else None
    for test, why in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (as the cloud metadata address is)"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "the unspecified address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(addr, test):
            return why
    if not addr.is_global:
        return "not a public address (shared or reserved)"
    return None


def is_public_address(address: str) -> bool:
    """Whether ``address`` (an IP literal) is globally routable and not multicast."""
    return refusal(address) is None


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


def check_url_syntax(url: str, field: str = "url") -> None:
    """``ValidationError`` unless ``url`` follows the syntax rules of every checked URL
    (http or https, a host, no credentials); no name is resolved."""
    _parse(url, field)


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
