"""The MCP server over streamable HTTP at ``/mcp`` of ``calflow serve``.

Each request must carry ``Authorization: Bearer <workspace token>`` (``calflow``'s API
tokens); anything else is answered 401 with calflow's error JSON before the SDK sees
it. The token's workspace goes into the ASGI scope, where the server reads it, so one
endpoint serves every workspace and a token sees only its own workspace's tools. The
principal is also handed to the SDK as the request's user: an MCP session is bound to
the token that opened it, and another token cannot use its session id.

The SDK's session manager needs a running task group for its whole life, so its
``run()`` is wrapped around the app's own lifespan: uvicorn (``calflow serve``) and
test clients that run lifespans both start and stop it with the app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from calflow.integrations import IntegrationStore
from calflow.mcp.server import WORKSPACE_SCOPE_KEY, CalflowMCP
from calflow.workspaces import Principal, TokenStore

PATH = "/mcp"


async def _unauthorized(send: Send, message: str) -> None:
    body = json.dumps({"error": {"code": "UNAUTHORIZED", "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="calflow"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def bearer(scope: Scope) -> str | None:
    """The bearer token of a request, if it has one."""
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" and token.strip() else None
    return None


class TokenGate:
    """ASGI middleware: 401 without a valid workspace token; the workspace in the scope."""

    def __init__(self, app: ASGIApp, tokens: TokenStore) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer(scope)
        if token is None:
            await _unauthorized(send, "send Authorization: Bearer <calflow API token>")
            return
        principal: Principal | None = await asyncio.to_thread(self.tokens.verify, token)
        if principal is None:
            await _unauthorized(send, "the token is unknown or revoked")
            return
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


def mount_mcp(app: Any, store: IntegrationStore) -> CalflowMCP:
    """Serve MCP at ``/mcp`` of ``app`` (a FastAPI/Starlette app) on ``store``'s database.

    Adds the route and wraps the app's lifespan with the SDK session manager's.
    """
    mcp_app = CalflowMCP(store.engine, store.vault)
    manager = StreamableHTTPSessionManager(app=mcp_app.server)
    endpoint = TokenGate(manager.handle_request, TokenStore(store.engine))
    app.router.routes.append(Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    inner: Lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: Any) -> AsyncIterator[Any]:
        async with manager.run(), inner(instance) as state:
            yield state

    app.router.lifespan_context = lifespan
    return mcp_app
