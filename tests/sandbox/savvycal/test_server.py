"""A real uvicorn sandbox delivering signed SavvyCal webhooks to a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from calflow.sandbox import SandboxConfig
from calflow.sandbox.server import run_in_thread

from .._support import receiver


def test_real_server_delivers_signed_savvycal_webhook() -> None:
    """Over real HTTP: ``x-savvycal-signature`` and ``x-savvycal-webhook-id`` (the
    webhook's id), as SavvyCal's deliveries carry both."""
    config = SandboxConfig(savvycal_token="pt_secret_real")
    with receiver() as (url, received), run_in_thread(config) as base:
        auth = {"Authorization": "Bearer pt_secret_real"}
        with httpx.Client(base_url=f"{base}/savvycal", headers=auth, timeout=10) as client:
            hook = client.post("/v1/webhooks", json={"url": url})
            assert hook.status_code == 201
            secret, hook_id = hook.json()["secret"], hook.json()["id"]
            link = client.get("/v1/links").json()["entries"][0]
            slot = client.get(f"/v1/links/{link['id']}/slots").json()[0]
            booked = client.post(
                f"/v1/links/{link['id']}/events",
                json={
                    "display_name": "Real Person",
                    "email": "real@example.com",
                    "start_at": slot["start_at"],
                    "end_at": slot["end_at"],
                    "time_zone": "Europe/Berlin",
                },
            )
            assert booked.status_code == 201
        httpx.post(f"{base}/_sandbox/flush", timeout=10)
    assert len(received) == 1
    headers, body = received[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["x-savvycal-webhook-id"] == hook_id
    signature = lowered["x-savvycal-signature"]
    algo, _, given = signature.partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert algo == "sha256" and hmac.compare_digest(given.lower(), expected)
    assert json.loads(body)["payload"]["id"] == booked.json()["id"]
