"""``webhook_signature`` through the REST API (create, PATCH, the apps catalogue) and
replay jobs signed as Standard Webhooks (``signature: "standard"``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

from calflow.server.signatures import standard_headers
from e2e.sandbox_process import SandboxProcess
from replay.std_receiver import std_receiver

from .conftest import Api
from .test_against_sandbox import connect

STD = "whsec_" + base64.b64encode(b"api-standard-webhooks-key-000001").decode()
BAD = "whsec_not base64!"
DELIVERY = json.dumps({
    "triggerEvent": "BOOKING_CREATED", "createdAt": "2030-01-01T08:00:00.000Z",
    "payload": {"uid": "uid-api-std", "title": "30 min", "startTime": "2030-01-07T09:00:00Z",
                "endTime": "2030-01-07T09:30:00Z", "status": "ACCEPTED",
                "organizer": {"name": "Host", "email": "host@example.com", "timeZone": "UTC"},
                "attendees": [{"name": "Ann", "email": "ann@example.com", "timeZone": "UTC"}]},
}).encode()  # fmt: skip


def details(resp: Any) -> dict[str, str]:
    return {d["field"]: d["message"] for d in resp.json()["error"]["details"]}


async def test_webhook_signature_create_patch_and_deliveries(any_api: Api) -> None:
    a = any_api.a.client
    refused = [
        ({"webhook_signature": "plain"}, "webhook_signature", "provider, standard"),
        ({"webhook_signature": 5}, "webhook_signature", "provider, standard"),
        ({"webhook_signature": "standard", "webhook_secret": BAD}, "webhook_secret",
         "whsec_<base64>"),
    ]  # fmt: skip
    for values, field, words in refused:
        body = {"app": "cal_com", "name": "x", "values": {"api_key": "cal_live_k", **values}}
        resp = await a.post("/api/v1/integrations", json=body)
        assert resp.status_code == 422, (values, resp.text)
        assert words in details(resp)[field], resp.text
        assert "not base64!" not in resp.text
    assert (await a.get("/api/v1/integrations")).json()["items"] == []

    made = await a.post("/api/v1/integrations", json={
        "app": "cal_com", "name": "main",
        "values": {"api_key": "cal_live_k", "webhook_secret": "provider secret!"}})  # fmt: skip
    assert made.status_code == 201, made.text
    main = made.json()
    path = f"/hooks/{main['id']}"
    # switching to standard with a secret that does not decode: 422, nothing changes
    for body, field in [
        ({"config": {"webhook_signature": "standard"}}, "webhook_secret"),
        ({"values": {"webhook_signature": "plain"}}, "webhook_signature"),
        ({"config": {"webhook_signature": "standard"}, "secrets": {"webhook_secret": BAD}},
         "webhook_secret"),
    ]:  # fmt: skip
        resp = await a.patch(path.replace("/hooks/", "/api/v1/integrations/"), json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert field in details(resp), resp.text
        assert "provider secret!" not in resp.text and "not base64!" not in resp.text
    unchanged = (await a.get(f"/api/v1/integrations/{main['id']}")).json()
    assert "webhook_signature" not in unchanged["config"]

    switch = {"config": {"webhook_signature": "standard"}, "secrets": {"webhook_secret": STD}}
    patched = await a.patch(f"/api/v1/integrations/{main['id']}", json=switch)
    assert patched.status_code == 200, patched.text
    assert patched.json()["id"] == main["id"] and patched.json()["webhook_url"].endswith(path)
    assert patched.json()["config"]["webhook_signature"] == "standard"
    assert STD not in patched.text

    signed = standard_headers(STD, "msg_api_1", DELIVERY)
    ok = await a.post(path, content=DELIVERY, headers=signed)
    assert ok.status_code == 200, ok.text
    cal_style = {
        "X-Cal-Signature-256": hmac.new(STD.encode(), DELIVERY, hashlib.sha256).hexdigest()
    }
    refused_cal = await a.post(path, content=DELIVERY, headers=cal_style)
    assert refused_cal.status_code == 401, refused_cal.text
    assert "webhook-id" in refused_cal.json()["error"]["message"]
    hostile = {**signed, "webhook-timestamp": "9" * 5000}
    resp = await a.post(path, content=DELIVERY, headers=hostile)
    assert resp.status_code == 401 and "webhook-timestamp" in resp.text, resp.text

    back = await a.patch(
        f"/api/v1/integrations/{main['id']}", json={"unset": ["webhook_signature"]}
    )
    assert back.status_code == 200 and "webhook_signature" not in back.json()["config"]


async def test_catalogue_publishes_the_setting(api: Api) -> None:
    for app in ("cal_com", "savvycal"):
        found = (await api.a.client.get(f"/api/v1/apps/{app}")).json()
        fields = {f["key"]: f for f in found["credential_fields"]}
        assert fields["webhook_signature"]["choices"] == ["provider", "standard"]
        assert fields["webhook_signature"]["secret"] is False
        prop = found["credential_schema"]["properties"]["webhook_signature"]
        assert prop["enum"] == ["provider", "standard"]


async def test_replay_job_signed_standard(api: Api, sandbox: SandboxProcess) -> None:
    a = api.a.client
    await connect(api.a, sandbox)
    base = {"integration": "cal", "allow_private": True, "limit": 8}
    with std_receiver(STD) as rec:
        bad = await a.post("/api/v1/replays", json={
            **base, "target": rec.url, "signature": "plain", "secret": STD})  # fmt: skip
        assert bad.status_code == 422 and "signature" in details(bad), bad.text
        assert "provider" in details(bad)["signature"]
        bad_secret = await a.post("/api/v1/replays", json={
            **base, "target": rec.url, "signature": "standard", "secret": BAD})  # fmt: skip
        assert bad_secret.status_code == 422 and "secret" in details(bad_secret), bad_secret.text
        assert "not base64!" not in bad_secret.text
        started = await a.post("/api/v1/replays", json={
            **base, "target": rec.url, "signature": "standard", "secret": STD})  # fmt: skip
        assert started.status_code == 202, started.text
        job = started.json()["job"]
        deadline = time.monotonic() + 60
        while True:
            data = (await a.get(f"/api/v1/replays/{job}")).json()
            if data["status"] != "running" and not data["running"]:
                break
            assert time.monotonic() < deadline, data
            await asyncio.sleep(0.1)
    assert data["status"] == "completed" and data["totals"]["failed"] == 0, data
    assert data["options"]["signature"] == "standard" and STD not in json.dumps(data)
    assert rec.refused == [] and len(rec.verified) == data["totals"]["sent"] > 0
