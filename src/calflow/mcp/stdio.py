"""``calflow mcp``: the MCP server of one workspace over stdin/stdout.

An MCP host (Claude Desktop, an IDE, a voice-agent runtime) starts this as a child
process. stdout carries only JSON-RPC: the SDK points file descriptor 1 at stderr
while serving, so a stray print or a library's warning cannot corrupt the stream.
"""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from calflow.db.engine import open_engine
from calflow.mcp.server import CalflowMCP
from calflow.settings import Settings, get_settings
from calflow.vault import Vault
from calflow.workspaces import WorkspaceStore


async def serve_stdio(workspace: str, settings: Settings | None = None) -> None:
    """Serve the tools of ``workspace`` (name or id) until stdin closes."""
    settings = settings or get_settings()
    engine = open_engine(settings)
    found = WorkspaceStore(engine).find(workspace)
    app = CalflowMCP(engine, Vault.from_settings(settings), workspace_id=found.id)
    async with stdio_server() as (read, write):
        await app.server.run(read, write, app.server.create_initialization_options())
