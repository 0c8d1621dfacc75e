"""The caller's workspace and its API tokens.

- ``GET /api/v1/workspace``: id, name and settings.
- ``PATCH /api/v1/workspace/settings``: merge top-level keys into the settings (a key
  set to null is removed); other surfaces keep their options there (``mcp.expose``).
- ``GET /api/v1/tokens``, ``POST /api/v1/tokens`` (the token's text is in the answer
  once, never again), ``DELETE /api/v1/tokens/{id}`` (revoke: it stops working at once).
  A token manages the tokens of its own workspace only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from calflow.api.deps import ApiRoute, ScopeDep
from calflow.api.errors import ERROR_RESPONSES
from calflow.api.models import TokenCreate, TokenCreated, TokenList, TokenOut, WorkspaceOut

router = APIRouter(route_class=ApiRoute, responses=ERROR_RESPONSES)


@router.get("/workspace", tags=["workspace"])
def get_workspace(scope: ScopeDep) -> WorkspaceOut:
    """The workspace the token belongs to."""
    return WorkspaceOut(**scope.state.workspaces.get(scope.workspace_id).public())


@router.patch("/workspace/settings", tags=["workspace"])
def patch_settings(
    scope: ScopeDep, patch: Annotated[dict[str, Any], Body(examples=[{"mcp": {"expose": []}}])]
) -> WorkspaceOut:
    """Merge ``patch`` into the settings (top-level keys; null removes a key)."""
    updated = scope.state.workspaces.update_settings(scope.workspace_id, patch)
    return WorkspaceOut(**updated.public())


@router.get("/tokens", tags=["tokens"])
def list_tokens(scope: ScopeDep) -> TokenList:
    """The workspace's tokens (never their text), newest first."""
    tokens = scope.state.tokens.list(scope.workspace_id)
    return TokenList(items=[TokenOut(**t.public()) for t in tokens])


@router.post("/tokens", status_code=201, tags=["tokens"])
def create_token(scope: ScopeDep, body: TokenCreate | None = None) -> TokenCreated:
    """A new token of this workspace; ``secret`` is shown in this answer only."""
    info, secret = scope.state.tokens.create(scope.workspace_id, body.name if body else "")
    return TokenCreated(token=TokenOut(**info.public()), secret=secret)


@router.delete("/tokens/{token_id}", tags=["tokens"])
def revoke_token(scope: ScopeDep, token_id: str) -> TokenOut:
    """Revoke a token (the calling one too, if asked)."""
    return TokenOut(**scope.state.tokens.revoke(scope.workspace_id, token_id).public())
