"""API tokens: hashed at rest, shown once, revocable; requests without one are 401."""

from __future__ import annotations

from sqlalchemy import select, text

from calflow.db.models import ApiTokenRow
from calflow.workspaces import TokenStore

from .conftest import Api, client


async def test_requests_without_a_valid_token_are_401_in_the_error_shape(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"},
                    {"Authorization": "Bearer cfk_" + "x" * 40}):  # fmt: skip
        resp = await api.anonymous.get("/api/v1/workspace", headers=headers)
        assert resp.status_code == 401, headers
        body = resp.json()
        assert body["error"]["code"] == "UNAUTHENTICATED"
        assert body["error"]["message"]
        assert body["error"]["details"] == []
        assert resp.headers["www-authenticate"] == "Bearer"


async def test_workspace_of_the_token(api: Api) -> None:
    resp = await api.a.client.get("/api/v1/workspace")
    assert resp.status_code == 200
    assert resp.json()["id"] == api.a.id
    assert resp.json()["name"] == "alpha"
    patched = await api.a.client.patch(
        "/api/v1/workspace/settings", json={"mcp": {"expose": ["cal_com.GetBooking"]}, "x": 1}
    )
    assert patched.json()["settings"] == {"mcp": {"expose": ["cal_com.GetBooking"]}, "x": 1}
    patched = await api.a.client.patch("/api/v1/workspace/settings", json={"x": None})
    assert patched.json()["settings"] == {"mcp": {"expose": ["cal_com.GetBooking"]}}
    other = await api.b.client.get("/api/v1/workspace")
    assert other.json()["settings"] == {}


async def test_token_lifecycle_hashed_shown_once_revoked(any_api: Api) -> None:
    api = any_api
    made = await api.a.client.post("/api/v1/tokens", json={"name": "ci"})
    assert made.status_code == 201
    secret = made.json()["secret"]
    token_id = made.json()["token"]["id"]
    assert secret.startswith("cfk_")
    # never stored in clear, never listed again
    engine = api.a.store.engine
    with engine.connect() as conn:
        dumped = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_tokens"))
                          for v in row)  # fmt: skip
        stored = conn.execute(
            select(ApiTokenRow.token_hash).where(ApiTokenRow.id == token_id)
        ).scalar_one()
    assert secret not in dumped
    assert stored != secret and len(stored) == 64
    listed = await api.a.client.get("/api/v1/tokens")
    assert token_id in [t["id"] for t in listed.json()["items"]]
    assert secret not in listed.text
    # the new token works, then is revoked and stops working at once
    new = client(api.app, secret)
    try:
        assert (await new.get("/api/v1/workspace")).json()["id"] == api.a.id
        revoked = await api.a.client.delete(f"/api/v1/tokens/{token_id}")
        assert revoked.status_code == 200 and revoked.json()["revoked"] is True
        assert (await new.get("/api/v1/workspace")).status_code == 401
    finally:
        await new.aclose()
    # B cannot see or revoke A's tokens
    assert (await api.b.client.delete(f"/api/v1/tokens/{token_id}")).status_code == 404
    assert token_id not in (await api.b.client.get("/api/v1/tokens")).text


async def test_last_used_is_written_at_most_once_a_minute(api: Api) -> None:
    tokens = TokenStore(api.a.store.engine)
    info, secret = tokens.create(api.a.id)
    assert tokens.verify(secret) is not None
    first = tokens.get(api.a.id, info.id).last_used_at
    assert first is not None
    assert tokens.verify(secret) is not None
    assert tokens.get(api.a.id, info.id).last_used_at == first
    assert tokens.verify(secret + "x") is None
