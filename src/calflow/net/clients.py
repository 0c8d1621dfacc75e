"""The outbound HTTP clients of calflow, made here and nowhere else.

:func:`outbound_client` (httpx's API on aiohttp's pool,
:class:`~calflow.net.transport.GuardedAiohttpTransport`) serves provider calls
(actions, fetchers, webhook registration), the ``http.Request`` step and replay's
history reads; :func:`delivery_session` (aiohttp) serves replay's webhook deliveries
(:mod:`calflow.net.poster`). Both are aiohttp underneath, whose pool and C parser cost
a fraction of httpx's own per request (``bench/http_ceiling.py``). For both: redirects
are never followed, proxies and certificates from the environment are not used (a
proxy would connect where the guard cannot see), timeouts and pool limits are explicit,
and every connection's addresses come from :class:`~calflow.net.guard.Guard` with the
operator's allowance. A test's ``transport`` (``httpx.MockTransport``, an ASGI app)
replaces the network, guard included.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver

from calflow.net.guard import Guard, Resolver
from calflow.net.transport import GuardedAiohttpTransport, GuardedResolver
from calflow.netpolicy import Allowance

DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
KEEPALIVE_S = 2.0
"""Idle connections are closed sooner than servers usually close theirs (uvicorn: 5 s),
so a request seldom goes out on a connection the server is closing."""


def _session(
    resolver: AbstractResolver,
    *,
    max_connections: int,
    ssl_context: ssl.SSLContext | bool = True,
    **options: object,
) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=max_connections, resolver=resolver, keepalive_timeout=KEEPALIVE_S,
        ttl_dns_cache=10, ssl=ssl_context,
    )  # fmt: skip
    return aiohttp.ClientSession(connector=connector, trust_env=False, **options)  # type: ignore[arg-type]


def outbound_client(
    allowance: Allowance,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> httpx.AsyncClient:
    """A client for calls to tenant-chosen hosts, guarded at connect time."""
    if transport is None:
        guard = Guard(allowance, resolver)
        tls = httpx.create_ssl_context(trust_env=False)

        def session() -> aiohttp.ClientSession:  # made at the first request, in its loop
            return _session(GuardedResolver(guard), max_connections=max_connections,
                            ssl_context=tls)  # fmt: skip

        transport = GuardedAiohttpTransport(guard, session, tls)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
        follow_redirects=False,
        trust_env=False,
        transport=transport,
    )


def delivery_session(
    resolver: AbstractResolver, *, max_connections: int, timeout_s: float
) -> aiohttp.ClientSession:
    """An aiohttp session for deliveries to one origin; ``resolver`` is the guard's."""
    timeout = aiohttp.ClientTimeout(
        total=timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s), sock_read=timeout_s
    )
    return _session(
        resolver, max_connections=max_connections, timeout=timeout, auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )  # fmt: skip


__all__ = ["delivery_session", "outbound_client"]
