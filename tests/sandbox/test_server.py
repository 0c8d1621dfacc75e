"""A real uvicorn sandbox delivering signed webhooks to a local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from calflow.sandbox import SandboxConfig
from calflow.sandbox.server import run_in_thread

from ._support import receiver

SECRET = "whsec-test"


def test_real_server_delivers_signed_webhook() -> None:
    config = SandboxConfig(api_key="cal_live_real")
    with receiver() as (url, received), run_in_thread(config) as base:
        auth = {"Authorization": "Bearer cal_live_real"}
        with httpx.Client(base_url=f"{base}/calcom", headers=auth, timeout=10) as client:
            hook = client.post(
                "/v2/webhooks",
                json={
                    "subscriberUrl": url,
                    "triggers": ["BOOKING_CREATED"],
                    "active": True,
                    "secret": SECRET,
                },
            )
            assert hook.status_code == 201
            slots = client.get(
                "/v2/slots",
                headers={"cal-api-version": "2024-09-04"},
                params={"start": "2000-01-01", "end": "2100-01-01", "eventTypeId": 101},
            ).json()["data"]
            start = slots[sorted(slots)[0]][0]["start"]
            created = client.post(
                "/v2/bookings",
                headers={"cal-api-version": "2024-08-13"},
                json={
                    "start": start,
                    "eventTypeId": 101,
                    "attendee": {"name": "Real", "email": "real@example.com", "timeZone": "UTC"},
                },
            )
            assert created.status_code == 201
            assert httpx.post(f"{base}/_sandbox/calcom/flush").status_code == 200
        state = httpx.get(f"{base}/_sandbox/state").json()["calcom"]
    assert len(received) == 1
    headers, body = received[0]
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Cal-Signature-256"] == expected
    assert json.loads(body)["payload"]["uid"] == created.json()["data"]["uid"]
    assert state["deliveries"][0]["status_code"] == 200
