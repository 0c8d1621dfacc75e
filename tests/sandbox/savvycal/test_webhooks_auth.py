"""Webhook CRUD, signed deliveries with retries; personal token, OAuth refresh and expiry."""

from __future__ import annotations

import hashlib
import hmac
import json

from calflow.sandbox import SandboxConfig

from ._support import TOKEN, Captured, Sandbox, make_sandbox


async def test_webhook_crud_and_errors(sc: Sandbox) -> None:
    bad = await sc.api.post("/v1/webhooks", json={"url": "not a url"})
    assert bad.status_code == 422
    assert bad.json() == {"errors": {"url": [{"message": "must be a valid URL"}]}}
    created = await sc.api.post("/v1/webhooks", json={"url": "https://hooks.example.com/a"})
    assert created.status_code == 201
    hook = created.json()
    assert set(hook) == {"id", "url", "secret", "state", "version", "created_at"}
    assert hook["version"] == "2020-11-18" and hook["state"] == "active"
    listed = (await sc.api.get("/v1/webhooks")).json()
    assert [h["id"] for h in listed["entries"]] == [hook["id"]]
    assert (await sc.api.get(f"/v1/webhooks/{hook['id']}")).json() == hook
    assert (await sc.api.delete(f"/v1/webhooks/{hook['id']}")).status_code == 204
    gone = await sc.api.get(f"/v1/webhooks/{hook['id']}")
    assert gone.status_code == 404 and gone.json() == {"errors": [{"message": "Not found"}]}


async def test_delivery_signed_and_retried() -> None:
    hooks = Captured(status=lambda n: 500 if n < 3 else 200)
    async for sc in make_sandbox(SandboxConfig(savvycal_token=TOKEN), hooks):
        hook = (await sc.api.post("/v1/webhooks", json={"url": "https://h.example.com/x"})).json()
        event = (await sc.book()).json()
        await sc.root.post("/_sandbox/savvycal/flush")
        assert len(hooks.requests) == 3
        request = hooks.requests[-1]
        expected = hmac.new(hook["secret"].encode(), request.content, hashlib.sha256).hexdigest()
        assert request.headers["x-savvycal-signature"] == f"sha256={expected.upper()}"
        assert request.headers["x-savvycal-webhook-id"] == hook["id"]
        body = json.loads(request.content)
        assert body["type"] == "event.created" and body["version"] == "2020-11-18"
        assert body["id"].startswith("payload_") and body["occurred_at"]
        assert body["payload"]["id"] == event["id"]
        assert {r.content for r in hooks.requests} == {request.content}
        deliveries = (await sc.state())["deliveries"]
        assert [(d["attempt"], d["status_code"]) for d in deliveries] == [
            (1, 500),
            (2, 500),
            (3, 200),
        ]


async def test_delivery_gives_up_after_attempts() -> None:
    hooks = Captured(status=lambda _n: 503)
    async for sc in make_sandbox(SandboxConfig(savvycal_token=TOKEN), hooks):
        await sc.api.post("/v1/webhooks", json={"url": "https://h.example.com/x"})
        event = (await sc.book()).json()
        await sc.api.post(f"/v1/events/{event['id']}/cancel", json={"cancel_reason": "x"})
        await sc.root.post("/_sandbox/flush")
        assert len(hooks.requests) == 6
        types = [json.loads(r.content)["type"] for r in hooks.requests]
        assert types.count("event.created") == 3 and types.count("event.canceled") == 3


async def test_personal_token_and_errors(sc: Sandbox) -> None:
    me = await sc.api.get("/v1/me")
    assert me.status_code == 200
    assert me.json()["id"].startswith("user_") and me.json()["email"] == "sam@example.com"
    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": ""}):
        denied = await sc.api.get("/v1/me", headers=headers)
        assert denied.status_code == 401
        assert denied.json() == {"errors": [{"message": "Unauthenticated"}]}
    unknown = await sc.api.get("/v1/nothing")
    assert unknown.status_code == 404 and unknown.json() == {"errors": [{"message": "Not found"}]}


async def test_oauth_refresh_rotation_and_expiry(sc: Sandbox) -> None:
    oauth = (await sc.state())["oauth"]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": oauth["refresh_token"],
        "client_id": oauth["client_id"],
        "client_secret": oauth["client_secret"],
    }
    issued = await sc.api.post("/oauth/token", data=form, headers={"Authorization": ""})
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert tokens["expires_in"] == 7200 and tokens["token_type"] == "bearer"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await sc.api.get("/v1/me", headers=bearer)).status_code == 200
    reused = await sc.api.post("/oauth/token", data=form, headers={"Authorization": ""})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    bad_client = await sc.api.post(
        "/oauth/token", data={**form, "client_secret": "x"}, headers={"Authorization": ""}
    )
    assert bad_client.status_code == 401
    await sc.root.post("/_sandbox/clock", json={"offset_s": 7199})
    assert (await sc.api.get("/v1/me", headers=bearer)).status_code == 200
    await sc.root.post("/_sandbox/clock", json={"offset_s": 7201})
    expired = await sc.api.get("/v1/me", headers=bearer)
    assert expired.status_code == 401
    assert expired.json() == {"errors": [{"message": "Unauthenticated"}]}
    refreshed = await sc.api.post(
        "/oauth/token",
        json={**form, "refresh_token": tokens["refresh_token"]},
        headers={"Authorization": ""},
    )
    assert refreshed.status_code == 200
    fresh = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert (await sc.api.get("/v1/me", headers=fresh)).status_code == 200
