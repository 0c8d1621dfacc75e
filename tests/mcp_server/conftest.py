"""A calflow home with two workspaces, a Cal.com sandbox and ``calflow serve`` for MCP tests.

Workspace ``default`` has the Cal.com integration ``main`` and a reminder workflow on
``created`` bookings; workspace ``other`` has its own Cal.com integration
``other-cal``. Each has an API token. ``calflow serve`` (receiver, workflow engine and
``/mcp``) runs on the home for the whole session, so a booking made through stdio
(``calflow mcp``, another process) or HTTP is dispatched by the same engine.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from calflow.workspaces import TokenStore, WorkspaceStore
from db_fixtures import clean_calflow_env
from e2e.sandbox_process import SandboxProcess, child_env, sandbox_process
from e2e.serve_process import ServeProcess, serve_process

__all__ = ["clean_calflow_env"]

API_KEY = "cal_live_mcp_tests_7e1f"
REMINDER = "mcp-reminder"
ATTENDEE = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "timeZone": "Europe/Paris",
    "phoneNumber": "+33 6 12 34 56 78",
}


@dataclass
class Stack:
    """The home, its tokens, the sandbox and the running server."""

    home: Path
    sandbox: SandboxProcess
    server: ServeProcess
    default_token: str
    other_token: str
    other_workspace: str

    def settings(self) -> Settings:
        return Settings(home=self.home, database_url=None, secret_keys=None)

    def store(self, workspace_id: str = "default") -> IntegrationStore:
        base = IntegrationStore.default(self.settings())
        return IntegrationStore(base.engine, base.vault, workspace_id)

    def inbox(self, workspace_id: str = "default") -> Inbox:
        return Inbox(self.store().engine, workspace_id)

    def runs(self, workspace_id: str = "default") -> RunStore:
        return RunStore(self.store().engine, workspace_id)

    def workspaces(self) -> WorkspaceStore:
        return WorkspaceStore(self.store().engine)

    def expose(self, patterns: list[str] | None, workspace_id: str = "default") -> None:
        """Set (None: clear) the workspace's ``mcp.expose`` patterns."""
        value = None if patterns is None else {"expose": patterns}
        self.workspaces().update_settings(workspace_id, {"mcp": value})

    def stdio(self, workspace: str = "default") -> Client:
        """An SDK client on ``calflow mcp --workspace WORKSPACE``, a real subprocess."""
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "calflow.cli.main", "mcp", "--workspace", workspace],
            env=child_env(CALFLOW_HOME=str(self.home)),
        )
        return Client(params)

    @asynccontextmanager
    async def http(self, token: str | None = None) -> AsyncIterator[Client]:
        """An SDK client on ``<serve>/mcp`` with ``Authorization: Bearer <token>``."""
        token = token or self.default_token
        headers = {"Authorization": f"Bearer {token}"}
        timeout = httpx2.Timeout(30.0, read=120.0)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            transport = streamable_http_client(f"{self.server.url}/mcp", http_client=http)
            async with Client(transport) as client:
                yield client


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("mcp-home")
    with sandbox_process(API_KEY, seed=3) as sandbox:
        settings = Settings(home=home, database_url=None, secret_keys=None)
        store = IntegrationStore.default(settings)
        store.add("cal_com", "main", {"base_url": sandbox.calcom}, {"api_key": API_KEY})
        WorkflowStore(store.engine).apply(
            {
                "name": REMINDER,
                "trigger": {"kinds": ["created"]},
                "steps": [
                    {
                        "id": "remind",
                        "action": "cal_com.GetBooking",
                        "integration": "main",
                        "input": {"bookingUid": "{{ booking.uid }}"},
                        "at": {"before_start": "1h"},
                    }
                ],
            }
        )
        workspaces = WorkspaceStore(store.engine)
        other = workspaces.create("other")
        IntegrationStore(store.engine, store.vault, other.id).add(
            "cal_com", "other-cal", {"base_url": sandbox.calcom}, {"api_key": API_KEY}
        )
        tokens = TokenStore(store.engine)
        _, default_token = tokens.create("default", "agent")
        _, other_token = tokens.create(other.id, "agent-b")
        with serve_process({"CALFLOW_HOME": str(home)}) as server:
            yield Stack(home, sandbox, server, default_token, other_token, other.id)


@pytest.fixture
def stack_defaults(stack: Stack) -> Iterator[Stack]:
    """The stack with the default exposure, restored after the test."""
    stack.expose(None)
    try:
        yield stack
    finally:
        stack.expose(None)


def slot_window() -> dict[str, str]:
    """Tomorrow (UTC: the local date may still be today's) to a week later: the sandbox's
    event types are open then."""
    first = datetime.now(UTC).date() + timedelta(days=1)
    return {"start": first.isoformat(), "end": (first + timedelta(days=6)).isoformat()}


def structured(result: Any) -> dict[str, Any]:
    """A tool result's structured content (asserting it has one)."""
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


def future(iso: str) -> bool:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")) > datetime.now(UTC)
