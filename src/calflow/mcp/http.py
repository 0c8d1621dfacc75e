"""The MCP server over streamable HTTP at ``/mcp`` of ``calflow serve``.

Each request must carry ``Authorization: Bearer <workspace token>`` (``calflow``'s API
tokens); anything else is answered 401 with calflow's error JSON before the SDK sees
it. The token's workspace goes into the ASGI scope, where the server reads it, so one
endpoint serves every workspace and a token sees only its own workspace's tools. The
principal is also handed to the SDK as the request's user: an MCP session is bound to
the token that opened it, and another token cannot use its session id.

The SDK's session manager needs a running task group for its whole life, so it runs
within the app's own lifespan (a new manager each time): uvicorn (``calflow serve``)
and test clients that run lifespans both start and stop it. The SDK costs about half a
second of imports, so the lifespan does not wait for it: the server and the manager are
built in a thread while the app already answers, and a request to ``/mcp`` that comes
first waits for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from calflow.integrations import IntegrationStore
from calflow.mcp import WORKSPACE_SCOPE_KEY
from calflow.server.ratelimit import TokenRateLimit
from calflow.workspaces import Principal, TokenStore

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from calflow.mcp.server import CalflowMCP

PATH = "/mcp"
log = logging.getLogger("calflow.mcp")


async def error_response(
    send: Send, status: int, code: str, message: str, extra: dict[str, str] | None = None
) -> None:
    """calflow's error JSON, ``{"error": {"code", "message"}}``, with ``status`` (and the
    ``extra`` headers)."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (extra or {}).items()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="calflow"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _unauthorized(send: Send, message: str) -> None:
    await error_response(send, 401, "UNAUTHENTICATED", message)  # as the REST API


def bearer(scope: Scope) -> str | None:
    """The bearer token of a request, if it has one."""
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" and token.strip() else None
    return None


class TokenGate:
    """ASGI middleware: 401 without a valid workspace token, 429 past its rate limit
    (counted with the REST API's); the workspace in the scope."""

    def __init__(self, app: ASGIApp, tokens: TokenStore, rate: TokenRateLimit) -> None:
        self.app = app
        self.tokens = tokens
        self.rate = rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer(scope)
        if token is None:
            await _unauthorized(send, "send an API token as 'Authorization: Bearer <token>'")
            return
        principal: Principal | None = await asyncio.to_thread(self.tokens.verify, token)
        if principal is None:
            await _unauthorized(send, "the API token is invalid or revoked")
            return
        wait = self.rate.hit(principal.token_id)
        if wait is not None:
            message, headers = self.rate.refusal(wait)
            await error_response(send, 429, "RATE_LIMITED", message, headers)
            return
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
        from mcp.server.auth.provider import AccessToken

        scope = dict(scope)
        scope[WORKSPACE_SCOPE_KEY] = principal.workspace_id
        scope["user"] = AuthenticatedUser(
            AccessToken(
                token=principal.token_id, client_id=principal.token_id, scopes=[],
                subject=principal.workspace_id,
            )
        )  # fmt: skip
        await self.app(scope, receive, send)


Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


class Sessions:
    """The SDK's session manager for the app's current lifespan.

    A manager runs once; an app may be started more than once (a test client per
    test), so each lifespan gets a new one, started in a task of its own (see the
    module's docstring). Requests outside a lifespan get 503; a request during the
    start waits for it.
    """

    def __init__(self, make: Callable[[], CalflowMCP]) -> None:
        self._make = make
        self.mcp_app: CalflowMCP | None = None
        self.manager: StreamableHTTPSessionManager | None = None
        self._ready: asyncio.Event | None = None

    def _build(self) -> StreamableHTTPSessionManager:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        if self.mcp_app is None:
            self.mcp_app = self._make()
        return StreamableHTTPSessionManager(app=self.mcp_app.server)

    async def _serve(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        try:
            manager = await asyncio.to_thread(self._build)
            async with manager.run():
                self.manager = manager
                ready.set()
                await stop.wait()
        except Exception:  # /mcp answers 503; the rest of the server is unaffected
            log.exception("the MCP endpoint could not start")
        finally:
            self.manager = None
            ready.set()

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        ready, stop = asyncio.Event(), asyncio.Event()
        self._ready = ready
        task = asyncio.create_task(self._serve(ready, stop), name="calflow-mcp-sessions")
        try:
            yield
        finally:
            self._ready = None
            stop.set()
            await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._ready is not None:
            await self._ready.wait()
        if self.manager is None:
            await error_response(send, 503, "UNAVAILABLE", "the MCP endpoint is not running")
            return
        await self.manager.handle_request(scope, receive, send)


def mount_mcp(app: Any, store: IntegrationStore, rate: TokenRateLimit) -> None:
    """Serve MCP at ``/mcp`` of ``app`` (a FastAPI/Starlette app) on ``store``'s database,
    each token limited by ``rate`` (the REST API's limiter: one count per token).

    Adds the route and wraps the app's lifespan with the SDK session manager's.
    """

    def make() -> CalflowMCP:
        from calflow.mcp.server import CalflowMCP

        return CalflowMCP(store.engine, store.vault)

    sessions = Sessions(make)
    endpoint = TokenGate(sessions, TokenStore(store.engine), rate)
    app.router.routes.append(Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    inner: Lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: Any) -> AsyncIterator[Any]:
        async with sessions.run(), inner(instance) as state:
            yield state

    app.router.lifespan_context = lifespan
