"""uvicorn's httptools protocol with the timeouts and the connection limit it lacks.

uvicorn has ``timeout_keep_alive`` (between requests, reset by every byte received) but
no deadline for receiving a request, so a client that trickles a header byte by byte,
or a body, holds its connection for ever (uvicorn issue #157; h11 and httptools only
bound sizes). ASGI middleware cannot help with headers: the app is called once they are
complete. So :class:`GuardedProtocol` subclasses the protocol and keeps one timer per
connection:

- **header timeout**: the request line and headers must be complete within
  ``header_timeout_s`` of the connection's opening (first request) or of the request's
  first byte (later ones); else 408 and the connection is closed. A connection that
  sends nothing at all is closed at the same deadline.
- **body timeout**: the whole body must arrive within ``body_timeout_s`` of the end of
  the headers; else 408 (if no response was started), closed, and the app sees the
  client disconnect. Time the server itself stopped reading (flow control) is not held
  against the client.
- **connection limit**: past ``max_connections`` open connections, the one idle longest
  (keep-alive, or still sending its first headers) is closed to make room; when every
  connection has a request in flight, the new one is held for ``GET /healthz`` only
  (``health_reserve`` such connections), and past those answered 503 with
  ``Retry-After`` at once.

The requests-in-flight limit is ASGI middleware (:class:`~calflow.server.admission.InFlightGate`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from calflow.server.access import AccessLog
from calflow.server.admission import (
    HEALTH_PATH,
    InFlightGate,
    ServeLimits,
    busy_message,
    error_body,
    send_busy,
)

__all__ = ["GuardedProtocol", "guarded_protocol", "server_config"]

log = logging.getLogger("calflow.server")
_REFUSED_LINGER_S = 1.0
"""How long a connection refused at once keeps reading (and discarding) after its 503,
so that closing it does not reset it before the client has read the answer."""


def _response(status: int, code: str, message: str, retry_after_s: int | None = None) -> bytes:
    body = error_body(code, message)
    head = [
        STATUS_LINE[status],
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
    ]
    if retry_after_s is not None:
        head.append(b"retry-after: %d\r\n" % retry_after_s)
    return b"".join([*head, b"connection: close\r\n\r\n", body])


class GuardedProtocol(HttpToolsProtocol):
    """An httptools protocol with header and body timeouts and a connection limit
    (``limits``, set on the subclass :func:`guarded_protocol` makes)."""

    limits: ClassVar[ServeLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._idle_since = time.monotonic()
        self._in_header = False
        self._refused = False

    # the connection ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, self._header_expired)
        if len(self.connections) <= self.limits.max_connections:
            return
        open_now = [c for c in self.connections if not c.transport.is_closing()]
        if len(open_now) <= self.limits.max_connections or self._evict_one(open_now):
            return
        if len(open_now) <= self.limits.max_connections + self.limits.health_reserve:
            self.app = self._health_only  # every connection is busy: keep this for probes
            return
        self._refuse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:  # a refused connection's request is read and dropped
            super().data_received(data)

    def _evictable(self) -> bool:
        idle = self.cycle is None or self.cycle.response_complete
        return idle and not self.pipeline and not self._refused

    def _evict_one(self, open_now: list[Any]) -> bool:
        """Close the connection idle longest (keep-alive, or sending headers); False if
        every other one has a request in flight."""
        idle = [c for c in open_now if c is not self and isinstance(c, GuardedProtocol)]
        idle = [c for c in idle if c._evictable()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c._idle_since)
        log.debug("connection limit: closing the connection idle longest, %s", oldest.client)
        oldest._close(408 if oldest._in_header else None, "closed for a new connection")
        return True

    def _refuse(self) -> None:
        self._refused = True
        retry_after_s = self.limits.busy_retry_after_s
        self.transport.write(_response(503, "BUSY", self._connections_message(), retry_after_s))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(_REFUSED_LINGER_S, self.transport.close)

    async def _health_only(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == HEALTH_PATH:
            await self.config.loaded_app(scope, receive, send)
            return
        await send_busy(send, self._connections_message(), self.limits.busy_retry_after_s)

    def _connections_message(self) -> str:
        limits = self.limits
        return busy_message(
            "connections",
            limits.max_connections,
            "CALFLOW_MAX_CONNECTIONS",
            limits.busy_retry_after_s,
        )

    # the request --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_header = True
        if self._timer is None:  # the first request's deadline runs from the connection
            self._arm(self.limits.header_timeout_s, self._header_expired)

    def on_headers_complete(self) -> None:
        self._in_header = False
        super().on_headers_complete()
        self._arm(self.limits.body_timeout_s, self._body_expired)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._idle_since = time.monotonic()

    # the timers ---------------------------------------------------------------------

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_expired(self) -> None:
        self._timer = None
        seconds = f"{self.limits.header_timeout_s:g}"
        self._close(
            408 if self._in_header else None,
            f"the request's headers did not arrive within {seconds} s (CALFLOW_HEADER_TIMEOUT_S)",
        )

    def _body_expired(self) -> None:
        self._timer = None
        if self.flow.read_paused:  # the server is not reading: not the client's delay
            self._arm(self.limits.body_timeout_s, self._body_expired)
            return
        seconds = f"{self.limits.body_timeout_s:g}"
        answered = self.cycle is not None and self.cycle.response_started
        self._close(
            None if answered else 408,
            f"the request's body did not arrive within {seconds} s (CALFLOW_BODY_TIMEOUT_S)",
        )

    def _close(self, status: int | None, message: str) -> None:
        """Answer ``status`` (None: nothing) and close the connection."""
        self._disarm()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if status is not None:
            self.transport.write(_response(status, "REQUEST_TIMEOUT", message))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app reads a disconnect; its answer is dropped
            cycle.message_event.set()
        self.transport.close()


def guarded_protocol(limits: ServeLimits) -> type[GuardedProtocol]:
    """A :class:`GuardedProtocol` subclass bound to ``limits`` (uvicorn makes one
    protocol instance per connection from a class)."""

    class Bound(GuardedProtocol):
        pass

    Bound.limits = limits
    return Bound


def server_config(app: ASGIApp, host: str, port: int, limits: ServeLimits) -> uvicorn.Config:
    """uvicorn's configuration of ``calflow serve``: ``app`` behind the in-flight gate,
    on the guarded protocol, with ``limits``' keep-alive timeout and no WebSockets
    (calflow has no WebSocket route; MCP streams over plain HTTP). uvicorn leaves logging
    alone (``log_config=None``: its messages go to the handler ``calflow.logs`` set) and
    writes no access log of its own: :class:`~calflow.server.access.AccessLog`, outside
    the gate, logs and counts every request, the 503s of the in-flight limit too."""
    return uvicorn.Config(
        AccessLog(InFlightGate(app, limits)),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        log_level="warning",
        http=guarded_protocol(limits),
        ws="none",
        timeout_keep_alive=limits.keep_alive_s,
    )
