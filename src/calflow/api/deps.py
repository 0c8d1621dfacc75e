"""What every API route depends on: the server's state, the caller, and their workspace.

:func:`require_principal` turns the ``Authorization: Bearer`` token into a
:class:`~calflow.workspaces.Principal` (401 in the error shape otherwise), and
:func:`workspace_scope` gives a route the stores of that principal's workspace and of
no other, so a route cannot reach another workspace's rows by accident: ids of other
workspaces are simply not found (404, which does not reveal that they exist).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from calflow.api.errors import (
    ApiError,
    error_response,
    from_calflow,
    log,
    note_error,
    status_for,
)
from calflow.api.replays import ReplayManager
from calflow.errors import CalflowError, FieldError
from calflow.events.inbox import Inbox
from calflow.flowapp.registry import Registry
from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore
from calflow.netpolicy import operator_allowance
from calflow.replay.jobs import JobStore
from calflow.server.access import note_workspace
from calflow.server.ratelimit import TokenRateLimit
from calflow.settings import Settings
from calflow.vault import Vault
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from calflow.workspaces import Principal, TokenStore, WorkspaceStore

__all__ = [
    "ApiRoute",
    "ApiState",
    "PrincipalDep",
    "Scope",
    "ScopeDep",
    "api_state",
    "refuse_over_rate",
    "require_principal",
    "workspace_scope",
]


@dataclass
class ApiState:
    """The API's shared objects, kept on ``app.state.api`` by ``mount_api``."""

    settings: Settings
    engine: Engine
    vault: Vault
    registry: Registry
    tokens: TokenStore
    workspaces: WorkspaceStore
    replays: ReplayManager
    rate: TokenRateLimit
    """Each token's API rate limit (``CALFLOW_API_RATE_LIMIT``), shared with MCP."""
    runners: dict[str, Runner] = field(default_factory=dict)

    def runner(self, workspace_id: str) -> Runner:
        """The workspace's runner: its integrations, and booking changes published to its
        event bus (one HTTP connection pool per workspace, reused across requests)."""
        found = self.runners.get(workspace_id)
        if found is None:
            store = IntegrationStore(self.engine, self.vault, workspace_id)
            found = Runner(
                self.registry,
                store,
                timeout_s=self.settings.http_timeout_s,
                allowance=operator_allowance(self.settings),
            )
            self.runners[workspace_id] = found
        return found

    async def aclose(self) -> None:
        await self.replays.aclose()
        for runner in list(self.runners.values()):
            await runner.aclose()
        self.runners.clear()


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


_bearer = HTTPBearer(
    auto_error=False,
    description="An API token (`calflow tokens create --workspace NAME`).",
)


def require_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller's workspace and token; 401 (error shape) without a valid bearer token,
    429 with ``Retry-After`` past the token's rate limit."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "send an API token as 'Authorization: Bearer <token>'",
            headers=challenge,
        )
    principal = api_state(request).tokens.verify(credentials.credentials)
    if principal is None:
        raise ApiError(
            401, "UNAUTHENTICATED", "the API token is invalid or revoked", headers=challenge
        )
    note_workspace(request.scope, principal.workspace_id)  # for the access log
    refuse_over_rate(api_state(request).rate, principal)
    return principal


def refuse_over_rate(rate: TokenRateLimit, principal: Principal) -> None:
    """Count one call of ``principal``'s token: ``ApiError`` 429 with ``Retry-After`` past
    its limit (the REST API and MCP share the count)."""
    wait = rate.hit(principal.token_id)
    if wait is not None:
        message, headers = rate.refusal(wait)
        raise ApiError(429, "RATE_LIMITED", message, headers=headers)


PrincipalDep = Annotated[Principal, Depends(require_principal)]


class Scope:
    """The stores of one workspace (the principal's), made on first use."""

    def __init__(self, principal: Principal, state: ApiState, base_url: str) -> None:
        self.principal = principal
        self.state = state
        self.workspace_id = principal.workspace_id
        self.base_url = base_url

    @cached_property
    def integrations(self) -> IntegrationStore:
        return IntegrationStore(self.state.engine, self.state.vault, self.workspace_id)

    @cached_property
    def inbox(self) -> Inbox:
        return Inbox(self.state.engine, self.workspace_id)

    @cached_property
    def runs(self) -> RunStore:
        return RunStore(self.state.engine, self.workspace_id)

    @cached_property
    def workflows(self) -> WorkflowStore:
        return WorkflowStore(self.state.engine, self.workspace_id, self.state.registry)

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.state.engine, self.state.vault, self.workspace_id)

    @property
    def runner(self) -> Runner:
        return self.state.runner(self.workspace_id)


def workspace_scope(request: Request, principal: PrincipalDep) -> Scope:
    """The caller's workspace: every store a route gets is bound to it."""
    state = api_state(request)
    public = state.settings.public_url
    base = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    return Scope(principal, state, base)


ScopeDep = Annotated[Scope, Depends(workspace_scope)]


MAX_BODY_BYTES = 2 * 1024 * 1024
"""Largest API request body (a workflow definition or an action's input is far smaller)."""


def _too_large() -> Response:
    return error_response(413, "TOO_LARGE", f"request bodies are limited to {MAX_BODY_BYTES} bytes")


def _has_nul(request: Request) -> bool:
    raw = request.scope.get("raw_path") or b""
    query = request.scope.get("query_string") or b""
    return b"%00" in raw or b"\x00" in raw or b"%00" in query or b"\x00" in query


class ApiRoute(APIRoute):
    """A route that answers every failure in the error shape, never with a traceback.

    NUL characters are refused up front (422): PostgreSQL cannot store them, and a
    request carrying one must be the caller's mistake, not a server error.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                return _too_large()
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                return _too_large()
            if _has_nul(request) or b"\\u0000" in body or b"\x00" in body:
                return error_response(
                    422,
                    "VALIDATION_ERROR",
                    "the request contains a NUL character",
                    [FieldError("", "NUL characters are not accepted")],
                )
            try:
                return await handler(request)
            except (StarletteHTTPException, RequestValidationError):
                raise
            except CalflowError as exc:
                note_error(request, status_for(exc), exc.code)
                return from_calflow(exc)
            except Exception as exc:
                log.error("unexpected error in %s: %s: %s", self.path, type(exc).__name__, exc)
                return error_response(
                    503, "UNAVAILABLE", "calflow could not handle this request; retry later"
                )

        return guarded
