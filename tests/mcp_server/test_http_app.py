"""``/mcp`` inside the ASGI app: the session manager lives and dies with the app's lifespan."""

from __future__ import annotations

from pathlib import Path

import httpx

from calflow.integrations import IntegrationStore
from calflow.server.app import create_app
from calflow.settings import Settings
from calflow.workspaces import TokenStore

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
ACCEPT = "application/json, text/event-stream"


async def test_mcp_starts_with_each_lifespan_and_refuses_outside_one(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=None, secret_keys=None)
    store = IntegrationStore.default(settings)
    _, token = TokenStore(store.engine).create("default", "test")
    app = create_app(store, settings)
    auth = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for _ in range(2):  # a second start gets a new session manager
            async with app.router.lifespan_context(app):
                resp = await client.post("/mcp", json=INITIALIZE, headers=auth)
                assert resp.status_code == 200, resp.text
                assert '"serverInfo"' in resp.text and '"calflow"' in resp.text
                anonymous = await client.post("/mcp", json=INITIALIZE, headers={"Accept": ACCEPT})
                assert anonymous.status_code == 401
                assert anonymous.json()["error"]["code"] == "UNAUTHENTICATED"

        outside = await client.post("/mcp", json=INITIALIZE, headers=auth)
        assert outside.status_code == 503
        assert outside.json()["error"]["code"] == "UNAVAILABLE"
