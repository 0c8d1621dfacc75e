"""calflow as an MCP server: each workspace's actions and fetchers as tools for AI agents.

``calflow mcp`` serves one workspace over stdio; ``calflow serve`` serves every
workspace at ``/mcp`` over streamable HTTP, by bearer token. See ``server`` for the
tools, ``schema`` for how action schemas become tool schemas, ``exposure`` for the
workspace setting that decides which actions are tools.
"""

WORKSPACE_SCOPE_KEY = "calflow.workspace_id"
"""Where ``/mcp``'s token gate puts the token's workspace in the ASGI scope."""

__all__ = ["WORKSPACE_SCOPE_KEY"]
