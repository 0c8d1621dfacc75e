"""One log line and one metric sample per HTTP request ``calflow serve`` answers.

:class:`AccessLog` is the outermost ASGI middleware: it times each request from its
arrival to the end of its answer and logs, on ``calflow.access`` at INFO, the method,
the path (never the query string, which may carry a secret), the status, the time in
milliseconds and the workspace when a route learnt it (:func:`note_workspace`: the API
and MCP from the caller's token, the webhook receiver from the integration). The
request's route group, method and status are counted and its time observed
(``calflow.metrics``). Bodies, headers and tokens are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calflow.logs import fields
from calflow.mcp import WORKSPACE_SCOPE_KEY
from calflow.metrics import HTTP_REQUESTS, REQUEST_SECONDS, route_group

__all__ = ["WORKSPACE_KEY", "AccessLog", "note_workspace"]

log = logging.getLogger("calflow.access")
WORKSPACE_KEY = WORKSPACE_SCOPE_KEY
"""Where a route leaves the request's workspace in the ASGI scope (MCP's key too)."""
_PATH_MAX = 200


def note_workspace(scope: MutableMapping[str, Any], workspace_id: str) -> None:
    """Record ``workspace_id`` as the workspace of the request of ``scope``."""
    scope[WORKSPACE_KEY] = workspace_id


class AccessLog:
    """ASGI middleware: the access log line and request metrics (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float) -> None:
        path = str(scope.get("path") or "/")
        method = str(scope.get("method") or "?")
        group = route_group(path)
        shown = status or 500  # no answer started: the client left or the app failed
        HTTP_REQUESTS.labels(group, method, str(shown)).inc()
        REQUEST_SECONDS.labels(group).observe(seconds)
        if not log.isEnabledFor(logging.INFO):
            return
        if len(path) > _PATH_MAX:
            path = path[:_PATH_MAX] + "…"
        ms = round(seconds * 1000, 1)
        log.info(
            "%s %s %s %.1f ms",
            method,
            path,
            status or "-",
            ms,
            extra=fields(
                method=method, path=path, status=status or None, ms=ms,
                workspace=scope.get(WORKSPACE_KEY),
            ),
        )  # fmt: skip
