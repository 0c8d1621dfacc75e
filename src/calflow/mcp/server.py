"""The MCP server: a workspace's actions and fetchers as tools, on the official SDK.

The SDK's low-level ``Server`` is used (not FastMCP) because the tool list is not
fixed: it is read on every ``tools/list`` and ``tools/call`` from the workspace's
integrations and its ``mcp.expose`` setting, so an integration added or an action
opted in shows at the next call, and one server answers every workspace over HTTP.
The workspace is fixed for stdio (``calflow mcp --workspace``) and comes from the
bearer token for HTTP (see :mod:`calflow.mcp.http`).

Every action call goes through ``run_action_recorded``: the Runner validates input,
decrypts credentials and publishes booking changes to the workspace's event bus (so
an agent's booking starts the same workflows as a web booking), and the call is kept
as a run (``calflow runs list``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import mcp.types as mt
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from sqlalchemy import Engine

from calflow.errors import CalflowError, InternalError, NotFoundError
from calflow.flowapp.registry import Registry, default_registry
from calflow.flowapp.runner import Runner, mask_secrets
from calflow.integrations import IntegrationStore
from calflow.mcp import WORKSPACE_SCOPE_KEY
from calflow.mcp.catalogue import ToolEntry, build_catalogue
from calflow.mcp.results import action_result, error_result, options_result
from calflow.mcp.schema import to_action_input
from calflow.vault import Vault
from calflow.workflows.adhoc import run_action_recorded
from calflow.workspaces import WorkspaceStore

log = logging.getLogger("calflow.mcp")


INSTRUCTIONS = (
    "calflow: scheduling actions of this workspace's integrations (Cal.com, SavvyCal…). "
    "Find open times with a *get_slots* or *fetch_slots* tool, book with *book_meeting*, "
    "move with *reschedule_booking*. Each result has a port (success, conflict, "
    "not_found…) and a one-sentence summary to tell the caller; on 'conflict' offer "
    "another time. Tools named *__fetch_* list the options of a field."
)


class CalflowMCP:
    """The tools of calflow's workspaces behind one SDK ``Server``.

    ``workspace_id`` fixes the workspace (stdio); without it each request must carry
    one in its ASGI scope (HTTP), and a request without one sees no tools.
    """

    def __init__(
        self,
        engine: Engine,
        vault: Vault,
        *,
        workspace_id: str | None = None,
        registry: Registry | None = None,
        runner_factory: Callable[[IntegrationStore], Runner] | None = None,
    ) -> None:
        self.engine = engine
        self.vault = vault
        self.workspace_id = workspace_id
        self.registry = registry or default_registry()
        self._runner_factory = runner_factory or (lambda store: Runner(self.registry, store=store))
        self._runners: dict[str, Runner] = {}
        self._workspaces = WorkspaceStore(engine)
        self.server: Server[dict[str, Any]] = Server(
            "calflow",
            version=_version(),
            title="calflow",
            instructions=INSTRUCTIONS,
            lifespan=self._lifespan,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    @asynccontextmanager
    async def _lifespan(self, _: Server[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {}
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the runners' HTTP connections."""
        runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            await runner.aclose()

    def runner(self, workspace_id: str) -> Runner:
        """The runner of one workspace: its integrations, its event bus."""
        found = self._runners.get(workspace_id)
        if found is None:
            store = IntegrationStore(self.engine, self.vault, workspace_id)
            found = self._runners[workspace_id] = self._runner_factory(store)
        return found

    def workspace_of(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        """The workspace a request acts for (None: unauthenticated, no tools)."""
        if self.workspace_id is not None:
            return self.workspace_id
        request = ctx.request
        scope = getattr(request, "scope", None)
        value = scope.get(WORKSPACE_SCOPE_KEY) if isinstance(scope, dict) else None
        return value if isinstance(value, str) else None

    def catalogue(self, workspace_id: str) -> dict[str, ToolEntry]:
        """The workspace's tools now (blocking: database reads)."""
        settings = self._workspaces.get(workspace_id).settings
        integrations = IntegrationStore(self.engine, self.vault, workspace_id).list()
        return build_catalogue(self.registry, integrations, settings)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], _: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        workspace_id = self.workspace_of(ctx)
        if workspace_id is None:
            return mt.ListToolsResult(tools=[])
        tools = await asyncio.to_thread(self.catalogue, workspace_id)
        return mt.ListToolsResult(tools=[entry.to_tool() for entry in tools.values()])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: mt.CallToolRequestParams
    ) -> mt.CallToolResult:
        workspace_id = self.workspace_of(ctx)
        try:
            if workspace_id is None:
                raise NotFoundError("no workspace: this connection is not signed in")
            tools = await asyncio.to_thread(self.catalogue, workspace_id)
            entry = tools.get(params.name)
            if entry is None:
                raise NotFoundError(
                    f"no tool {params.name!r} in this workspace (list the tools to see what "
                    "is available; destructive actions must be opted in with `calflow mcp "
                    "expose`)"
                )
            return await self._run(workspace_id, entry, dict(params.arguments or {}))
        except CalflowError as exc:
            return error_result(exc)

    async def _run(
        self, workspace_id: str, entry: ToolEntry, arguments: dict[str, Any]
    ) -> mt.CallToolResult:
        runner = self.runner(workspace_id)
        try:
            if entry.fetcher is not None:
                options = await runner.fetch_options(
                    entry.app.key, entry.fetcher.key, entry.integration, arguments
                )
                return options_result(options)
            assert entry.action is not None
            data = to_action_input(arguments, entry.schema)
            result, run_id = await run_action_recorded(
                runner, workspace_id, entry.integration, entry.action.key, data, source="mcp"
            )
            return action_result(entry.action, result, run_id)
        except CalflowError:
            raise
        except Exception as exc:  # a bug must be a tool error, never a dropped connection
            message = mask_secrets(f"{type(exc).__name__}: {exc}", entry.integration)
            log.error("tool %s crashed: %s", entry.name, message)
            raise InternalError(f"{entry.name} failed: {message}") from exc


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("calflow")
    except PackageNotFoundError:
        return "0"
