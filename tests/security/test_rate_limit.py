"""Each API token's rate limit on ``calflow serve`` as a real process (issue #16, item 4):
429 with ``Retry-After`` past it, for the REST API and MCP together; another token, of
the same or another workspace, is unaffected; signed webhooks are not counted."""

from __future__ import annotations

from pathlib import Path

import httpx

from calflow.db.engine import reset_engines
from calflow.workspaces import TokenStore, WorkspaceStore
from db_fixtures import clean_calflow_env

from .support import guarded_server, signed_delivery

__all__ = ["clean_calflow_env"]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "test", "version": "0"}},
}  # fmt: skip


def test_a_token_past_its_rate_gets_429_with_retry_after_and_others_do_not(
    tmp_path: Path,
) -> None:
    with guarded_server(tmp_path, api_rate_limit="5/minute") as g:
        engine = g.home.store().engine
        tokens = TokenStore(engine)
        default = g.home.store().workspace_id
        beta = WorkspaceStore(engine).create("beta")
        _, first = tokens.create(default, "first")
        _, second = tokens.create(default, "second")
        _, other = tokens.create(beta.id, "beta")
        reset_engines()

        def get(token: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.get(f"{g.server.url}/api/v1/workspace", headers=headers, timeout=10)

        allowed = [get(first).status_code for _ in range(4)]
        mcp = httpx.post(
            f"{g.server.url}/mcp", json=INITIALIZE, timeout=10,
            headers={"Authorization": f"Bearer {first}",
                     "Accept": "application/json, text/event-stream"},
        )  # fmt: skip
        refused = get(first)
        mcp_refused = httpx.post(
            f"{g.server.url}/mcp", json=INITIALIZE, timeout=10,
            headers={"Authorization": f"Bearer {first}"},
        )  # fmt: skip
        same_workspace = get(second)
        other_workspace = get(other)
        deliveries = []
        for _ in range(8):
            body, headers = signed_delivery()
            deliveries.append(
                httpx.post(
                    f"{g.server.url}{g.hook_path}", content=body, headers=headers
                ).status_code
            )

    assert allowed == [200] * 4
    assert mcp.status_code == 200, mcp.text  # the 5th call of the token, over MCP
    for resp in (refused, mcp_refused):
        assert resp.status_code == 429, resp.text
        assert 1 <= int(resp.headers["retry-after"]) <= 60
        error = resp.json()["error"]
        assert error["code"] == "RATE_LIMITED"
        assert "5 per 1 minute (CALFLOW_API_RATE_LIMIT)" in error["message"]
    assert same_workspace.status_code == 200
    assert other_workspace.status_code == 200
    assert other_workspace.json()["name"] == "beta"
    assert deliveries == [200] * 8  # signed deliveries are not token calls
