"""The outbound HTTP clients of calflow, made here and nowhere else.

:func:`outbound_client` (httpx) serves provider calls (actions, fetchers, webhook
registration), the ``http.Request`` step and replay's history reads;
:func:`delivery_session` (aiohttp) serves replay's webhook deliveries
(:mod:`calflow.net.poster`), where aiohttp's lower cost per request matters
(``bench/http_ceiling.py``). For both: redirects are never
followed, proxies and certificates from the environment are not used (a proxy would
connect where the guard cannot see), timeouts and pool limits are explicit, and every
connection goes through :class:`~calflow.net.guard.GuardedBackend` with the operator's
allowance. A test's ``transport`` (``httpx.MockTransport``, an ASGI app) replaces the
network, guard included.
"""

from __future__ import annotations

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver

from calflow.net.guard import GuardedBackend, Resolver
from calflow.netpolicy import Allowance

DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose network backend is the guard."""

    def __init__(
        self,
        allowance: Allowance,
        *,
        limits: httpx.Limits,
        resolver: Resolver | None = None,
    ) -> None:
        super().__init__(trust_env=False, limits=limits)
        self.guard = GuardedBackend(allowance, resolver)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.guard,
        )


def outbound_client(
    allowance: Allowance,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_connections: int = 100,
    max_keepalive: int = 20,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> httpx.AsyncClient:
    """A client for calls to tenant-chosen hosts, guarded at connect time."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
        follow_redirects=False,
        trust_env=False,
        transport=transport or GuardedTransport(allowance, limits=limits, resolver=resolver),
    )


KEEPALIVE_S = 2.0
"""Idle delivery connections are closed sooner than receivers usually close theirs."""


def delivery_session(
    resolver: AbstractResolver, *, max_connections: int, timeout_s: float
) -> aiohttp.ClientSession:
    """An aiohttp session for deliveries to one origin; ``resolver`` is the guard's."""
    connector = aiohttp.TCPConnector(
        limit=max_connections, resolver=resolver, keepalive_timeout=KEEPALIVE_S,
        ttl_dns_cache=10,
    )  # fmt: skip
    timeout = aiohttp.ClientTimeout(
        total=timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s), sock_read=timeout_s
    )
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, trust_env=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )  # fmt: skip


__all__ = ["GuardedTransport", "delivery_session", "outbound_client"]
