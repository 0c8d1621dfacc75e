"""httpx on aiohttp's connection pool, guarded: the transport of every provider call.

``httpx-aiohttp``'s :class:`~httpx_aiohttp.AiohttpTransport` keeps httpx's API (auth
flows, event hooks, ``MockTransport`` in tests) over aiohttp's pool and C parser, which
cost about a fifth of httpx's own pool per request under concurrency
(``bench/http_ceiling.py``). :class:`GuardedAiohttpTransport` adds what calflow needs:

* the connection goes through the SSRF guard: aiohttp's resolver is the guard's
  (:class:`GuardedResolver`), and a literal address, which aiohttp does not resolve, is
  checked before each request;
* one set of errors, the same as the delivery path's (:func:`translated`): a refusal
  is an ``httpx.ConnectError`` caused by the guard's
  :class:`~calflow.net.guard.TargetRefused`, a server that closed without an answer
  or cut a body short is an ``httpx.RemoteProtocolError`` naming it (``httpx-aiohttp``
  0.2.0 calls the first a ``ConnectTimeout``), timeouts are ``httpx.TimeoutException``;
  errors while the body is read are translated the same way;
* a header value with CR, LF or NUL is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp import AiohttpTransport

from calflow.net.guard import Guard, GuardError, literal_address


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver interface over the guard: only checked addresses come out."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        out: list[ResolveResult] = []
        for address in await self._guard.addresses(host, port):
            kind = socket.AF_INET6 if ":" in address else socket.AF_INET
            out.append(ResolveResult(hostname=host, host=address, port=port, family=kind,
                                     proto=0, flags=socket.AI_NUMERICHOST))  # fmt: skip
        return out

    async def close(self) -> None:
        return None


def check_headers(headers: Any) -> None:
    """Refuse a header name or value holding CR, LF or NUL (``httpx.LocalProtocolError``)."""
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0"):
            raise httpx.LocalProtocolError(
                f"header {name[:40]!r} holds a CR, LF or NUL: refused before sending"
            )


_TABLE: list[tuple[Any, Any, str]] = [
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout, "connect timed out"),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout, "read timed out"),
    (asyncio.TimeoutError, httpx.ReadTimeout, "timed out"),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError, "truncated response body"),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError,
     "connection closed without a response"),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError, "malformed response"),
    (aiohttp.ClientConnectorError, httpx.ConnectError, "cannot connect"),
    # after the connection was made: the request may have reached the server
    (aiohttp.ClientOSError, httpx.ReadError, "connection failed"),
    (aiohttp.ClientError, httpx.RemoteProtocolError, "HTTP error"),
]  # fmt: skip


def translated(exc: BaseException) -> Exception:
    """aiohttp's, asyncio's and the guard's errors as the httpx type callers know.

    An httpx error raised by ``httpx-aiohttp``'s own mapping is judged by its cause, the
    aiohttp error it wrapped; any other httpx error is kept as it is."""
    if isinstance(exc, httpx.HTTPError):
        if isinstance(exc.__cause__, aiohttp.ClientError | asyncio.TimeoutError | GuardError):
            exc = exc.__cause__
        else:
            return exc
    if isinstance(exc, GuardError):  # refused by the guard, or a name that does not resolve
        return httpx.ConnectError(str(exc))
    if isinstance(exc.__cause__, GuardError):
        return httpx.ConnectError(str(exc.__cause__))
    what = str(exc) or type(exc).__name__
    for source, target, label in _TABLE:
        if isinstance(exc, source):
            return target(f"{label}: {what}")  # type: ignore[no-any-return]
    return httpx.RemoteProtocolError(f"{type(exc).__name__}: {what}")


def raise_translated(exc: BaseException) -> NoReturn:
    """Raise :func:`translated` ``exc``, caused by the error it stands for."""
    mapped = translated(exc)
    if mapped is exc:
        raise exc
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ else exc
    raise mapped from cause


class _TranslatedStream(httpx.AsyncByteStream):
    """A response body whose read errors come out as :func:`translated` ones."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as exc:
            raise_translated(exc)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except Exception as exc:
            raise_translated(exc)


class GuardedAiohttpTransport(AiohttpTransport):
    """``httpx-aiohttp``'s transport on a guarded aiohttp pool, with calflow's errors.

    ``session`` makes the pool at the first request (inside the event loop that uses
    it); its resolver must be ``guard``'s (:mod:`calflow.net.clients` makes both)."""

    def __init__(
        self, guard: Guard, session: Callable[[], aiohttp.ClientSession], tls: ssl.SSLContext
    ) -> None:
        super().__init__(verify=tls, trust_env=False, client=session)
        self.guard = guard

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_headers(request.headers)
        try:
            host = request.url.host
            if literal_address(host) is not None:  # aiohttp does not resolve a literal
                await self.guard.addresses(host, request.url.port or 0)
            response = await super().handle_async_request(request)
        except Exception as exc:
            raise_translated(exc)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _TranslatedStream(response.stream)
        return response


__all__ = [
    "GuardedAiohttpTransport", "GuardedResolver", "check_headers", "raise_translated",
    "translated",
]  # fmt: skip
