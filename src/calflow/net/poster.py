"""Webhook deliveries (replay's ``--to``): POST a body to one URL, fast, on aiohttp.

A replay sends thousands of POSTs to one origin. httpx costs 1.5-3 ms of CPU per
request under concurrency (``bench/http_ceiling.py``); aiohttp's client, a maintained
HTTP/1.1 implementation in C (its parser) over keep-alive connections, costs a fraction
of that and handles what real receivers do: HTTP/1.0 answers without a length (read
to the close), chunked bodies with trailers, a server closing an idle keep-alive
connection, slow heads (the read timeout), truncated bodies.

:class:`Poster` keeps the delivery path's contract: a :class:`PostResponse` (status,
headers, at most ``MAX_BODY_BYTES`` of body) or one of httpx's exception types, so the
target's retry rules see one set of errors: ``httpx.TimeoutException`` (connect or
read), ``httpx.ConnectError`` (refused, unreachable, or the SSRF guard's refusal as
its cause: :func:`calflow.net.guard.refused_in`), ``httpx.RemoteProtocolError`` (the
server closed without an answer, a truncated body, a malformed answer, each named).
A header value with CR or LF is refused before anything is sent
(``httpx.LocalProtocolError``). Redirects are never followed.

The connection goes through the same guard as every outbound call: the resolver is
:class:`~calflow.net.guard.Guard`'s (a literal IP is checked before the
first request), so a delivery reaches only an address that was checked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import httpx
from yarl import URL

from calflow.net.clients import delivery_session
from calflow.net.guard import Guard, Resolver
from calflow.net.transport import GuardedResolver, check_headers, raise_translated
from calflow.netpolicy import Allowance

MAX_BODY_BYTES = 1024 * 1024
START_WINDOW = 4
"""Deliveries in flight at first; one more after each answered one, up to the limit."""


@dataclass(frozen=True)
class PostResponse:
    """A delivery's answer: status, headers, at most ``MAX_BODY_BYTES`` of body."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _Window:
    """How many deliveries may be in flight: ``START_WINDOW`` at first, one more after
    each answer, up to the limit. An ordinary server listens with a short backlog
    (``http.server``: 5): opening every connection at once overflows it, and a dropped
    connection attempt is retried by the kernel a second later (then 3 s, 7 s), which is
    what made deliveries to such a server take seconds. Growing one connection at a time
    never overflows it, and reaches the limit after a few dozen answers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = min(START_WINDOW, limit)
        self.busy = 0
        self._changed = asyncio.Condition()

    async def enter(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.busy < self.size)
            self.busy += 1

    async def leave(self, answered: bool) -> None:
        async with self._changed:
            self.busy -= 1
            if answered and self.size < self.limit:
                self.size += 1
            self._changed.notify_all()


class Poster:
    """POSTs to one URL over at most ``max_connections`` keep-alive connections, opened
    one more at a time as answers come back (:class:`_Window`)."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int,
        timeout_s: float,
        allowance: Allowance,
        resolver: Resolver | None = None,
    ) -> None:
        self._url = URL(url, encoded=False)
        if self._url.scheme not in ("http", "https") or not self._url.host:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._guard = Guard(allowance, resolver)
        self._limit = max(1, max_connections)
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._checked_literal = False
        self._window = _Window(self._limit)

    async def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = delivery_session(
                GuardedResolver(self._guard), max_connections=self._limit,
                timeout_s=self._timeout_s,
            )  # fmt: skip
        if not self._checked_literal:  # aiohttp does not resolve a literal address
            host = self._url.host or ""
            await self._guard.addresses(host, self._url.port or 0)
            self._checked_literal = True
        return self._session

    async def post(self, body: bytes, headers: dict[str, str]) -> PostResponse:
        check_headers(headers)
        await self._window.enter()
        answered = False
        try:
            session = await self._open()
            try:
                response = await self._exchange(session, body, headers)
            except aiohttp.ServerDisconnectedError:
                # an idle keep-alive connection the server had closed: once more, anew
                response = await self._exchange(session, body, headers)
            answered = True
            return response
        except Exception as exc:
            raise_translated(exc)
        finally:
            await self._window.leave(answered)

    async def _exchange(
        self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]
    ) -> PostResponse:
        async with session.post(
            self._url, data=body, headers=headers, allow_redirects=False
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise httpx.RemoteProtocolError("response body too large")
                chunks.append(chunk)
            raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
            return PostResponse(response.status, httpx.Headers(raw), b"".join(chunks))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["MAX_BODY_BYTES", "PostResponse", "Poster"]
