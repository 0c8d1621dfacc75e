"""``calflow tokens`` and ``calflow workspaces``: a token printed once works against the API."""

from __future__ import annotations

from pathlib import Path

import httpx

from calflow.db.engine import reset_engines
from calflow.server.app import create_app
from calflow.settings import Settings

from .conftest import run_calflow


async def _workspace_of(home: Path, token: str) -> httpx.Response:
    app = create_app(settings=Settings(home=home))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://calflow.test") as c:
            return await c.get("/api/v1/workspace", headers={"Authorization": f"Bearer {token}"})
    finally:
        await app.state.api.aclose()
        reset_engines()


async def test_tokens_create_list_revoke_and_workspaces(tmp_path: Path) -> None:
    made = run_calflow(tmp_path, "tokens", "create", "--workspace", "acme", "--name", "ci")
    assert made.code == 0, str(made)
    token = made.stdout.strip()
    assert token.startswith("cfk_") and "\n" not in token
    assert "shown once" in made.err
    resp = await _workspace_of(tmp_path, token)
    assert resp.status_code == 200 and resp.json()["name"] == "acme"

    listed = run_calflow(tmp_path, "tokens", "list", "--workspace", "acme", "--json")
    assert listed.code == 0 and token not in listed.stdout
    (info,) = listed.json
    assert info["name"] == "ci" and token.startswith(info["prefix"])
    as_json = run_calflow(tmp_path, "tokens", "create", "-w", "acme", "--json")
    assert as_json.json["secret"].startswith("cfk_") and as_json.json["workspace"]["name"] == "acme"

    revoked = run_calflow(tmp_path, "tokens", "revoke", info["id"], "--workspace", "acme")
    assert revoked.code == 0, str(revoked)
    assert (await _workspace_of(tmp_path, token)).status_code == 401
    wrong = run_calflow(tmp_path, "tokens", "revoke", info["id"], "--workspace", "default")
    assert wrong.code == 2 and "no token" in wrong.err

    spaces = run_calflow(tmp_path, "workspaces", "list", "--json")
    assert {w["name"] for w in spaces.json} == {"default", "acme"}
    again = run_calflow(tmp_path, "workspaces", "create", "acme")
    assert again.code == 2 and "already exists" in again.err
    bad = run_calflow(tmp_path, "workspaces", "create", "no spaces")
    assert bad.code == 2 and "name" in bad.err
