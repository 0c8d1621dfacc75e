"""Each integration's ``webhook_url`` receives its provider's deliveries into the
integration's own workspace."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

from calflow.events.inbox import Inbox
from calflow.workspaces import DEFAULT_WORKSPACE

from .conftest import Api

SECRET = "whsec_api_webhook_test"
BODY = {
    "triggerEvent": "BOOKING_CREATED",
    "createdAt": "2026-11-20T10:00:00.000Z",
    "payload": {"type": "30min", "title": "Intro", "startTime": "2026-12-01T09:00:00Z",
                "endTime": "2026-12-01T09:30:00Z", "uid": "uid-hook-1", "eventTypeId": 101,
                "organizer": {"name": "Host", "email": "host@example.com", "timeZone": "UTC"},
                "attendees": [{"name": "Ann", "email": "ann@example.com", "timeZone": "UTC"}]},
}  # fmt: skip


async def test_a_workspace_integration_receives_its_webhooks(api: Api) -> None:
    made = await api.a.client.post(
        "/api/v1/integrations",
        json={"app": "cal_com", "name": "cal",
              "secrets": {"api_key": "cal_live_x", "webhook_secret": SECRET}},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    url = made.json()["webhook_url"]
    assert url == f"http://calflow.test/hooks/{made.json()['id']}"
    assert set(made.json()["secrets"]) == {"api_key", "webhook_secret"}
    body = json.dumps(BODY).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = await api.anonymous.post(
        urlsplit(url).path,
        content=body,
        headers={"X-Cal-Signature-256": signature, "Content-Type": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    events = (await api.a.client.get("/api/v1/events")).json()["items"]
    assert [(e["booking_uid"], e["source"]) for e in events] == [("uid-hook-1", "webhook")]
    assert (await api.b.client.get("/api/v1/events")).json()["items"] == []
    assert Inbox(api.a.store.engine, DEFAULT_WORKSPACE).count() == 0
    # an integration without webhooks has no URL
    sms = await api.a.client.post(
        "/api/v1/integrations",
        json={"app": "twilio", "name": "sms", "values": {"account_sid": "AC1",
              "auth_token": "t0ken", "from_number": "+15005550006"}},
    )  # fmt: skip
    assert sms.status_code == 201, sms.text
    assert sms.json()["webhook_url"] is None
