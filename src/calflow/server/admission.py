"""What ``calflow serve`` admits: its limits, the requests in flight, and the 503 past them.

:class:`ServeLimits` holds the server's timeouts and limits (``CALFLOW_*`` settings,
``calflow serve`` flags; ``docs/security.md`` lists them). :class:`InFlightGate` is the
ASGI middleware that counts requests in flight (webhooks, API, MCP, console) and answers
503 with ``Retry-After`` past ``max_requests``; ``GET /healthz`` is counted apart, with
``health_reserve`` requests of its own, so a load balancer's probe is answered while
everything else is refused. The connection-level half (header and body timeouts, the
connection limit) is :mod:`calflow.server.protocol`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from starlette.types import ASGIApp, Receive, Scope, Send

from calflow.settings import Settings

__all__ = ["HEALTH_PATH", "InFlightGate", "ServeLimits", "busy_message", "error_body", "send_busy"]

HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class ServeLimits:
    """The timeouts and limits of one ``calflow serve`` (defaults: :class:`Settings`)."""

    header_timeout_s: float
    body_timeout_s: float
    keep_alive_s: int
    max_connections: int
    max_requests: int
    health_reserve: int
    busy_retry_after_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ServeLimits:
        """The settings of the same names."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


def error_body(code: str, message: str) -> bytes:
    """calflow's error JSON (``{"error": {"code", "message"}}``) as bytes."""
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def busy_message(what: str, limit: int, setting: str, retry_after_s: int) -> str:
    """The message of a 503 at a limit: which limit, its value, the setting, the wait."""
    return f"calflow is at its limit of {limit} {what} ({setting}); retry after {retry_after_s} s"


async def send_busy(send: Send, message: str, retry_after_s: int) -> None:
    """Answer 503 ``BUSY`` with ``Retry-After`` and close the connection."""
    body = error_body("BUSY", message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after_s).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class InFlightGate:
    """ASGI middleware: at most ``max_requests`` requests in flight (``/healthz`` apart,
    at most ``health_reserve`` of its own); past them 503 with ``Retry-After``.
    """

    def __init__(self, app: ASGIApp, limits: ServeLimits) -> None:
        self.app = app
        self.limits = limits
        self.in_flight = 0
        self.health_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        health = scope["path"] == HEALTH_PATH
        if health and self.health_in_flight >= limits.health_reserve:
            what, limit, setting = "health checks", limits.health_reserve, "CALFLOW_HEALTH_RESERVE"
        elif not health and self.in_flight >= limits.max_requests:
            what, limit, setting = "requests in flight", limits.max_requests, "CALFLOW_MAX_REQUESTS"
        else:
            await self._run(health, scope, receive, send)
            return
        message = busy_message(what, limit, setting, limits.busy_retry_after_s)
        await send_busy(send, message, limits.busy_retry_after_s)

    async def _run(self, health: bool, scope: Scope, receive: Receive, send: Send) -> None:
        if health:
            self.health_in_flight += 1
        else:
            self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            if health:
                self.health_in_flight -= 1
            else:
                self.in_flight -= 1
