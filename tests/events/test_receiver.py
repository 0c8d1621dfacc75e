"""The webhook receiver: verify on the raw body, refuse early, store once, then answer."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.server.app import create_app
from calflow.server.signatures import standard_signature
from calflow.settings import Settings

SECRET = "whsec_receiver_test"
CAL_BODY = {
    "triggerEvent": "BOOKING_CREATED",
    "createdAt": "2026-11-20T10:00:00.000Z",
    "payload": {
        "type": "30min",
        "title": "30 min between Host and Ann",
        "startTime": "2026-12-01T09:00:00Z",
        "endTime": "2026-12-01T09:30:00Z",
        "organizer": {"id": 1, "name": "Host", "email": "host@example.com",
                      "timeZone": "Europe/Paris", "language": {"locale": "en"}},
        "attendees": [{"name": "Ann Lee", "email": "ann@example.com",
                       "timeZone": "Europe/Paris", "phoneNumber": "+33612345678",
                       "language": {"locale": "fr"}}],
        "uid": "uid-recv-1",
        "bookingId": 9,
        "eventTypeId": 101,
        "status": "ACCEPTED",
    },
}  # fmt: skip


def cal_sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> IntegrationStore:
    s = IntegrationStore.default(Settings(home=tmp_path))
    s.add("cal_com", "cc", {"base_url": "http://cal.invalid"},
          {"api_key": "cal_live_x", "webhook_secret": SECRET})  # fmt: skip
    s.add("savvycal", "sc", {}, {"token": "pt_secret_x", "webhook_secret": SECRET})
    s.add("cal_com", "nosecret", {}, {"api_key": "cal_live_y"})
    std = {"api_key": "cal_live_z", "webhook_secret": "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="}
    s.add("cal_com", "std", {"webhook_signature": "standard"}, std)
    return s


@pytest.fixture
async def client(store: IntegrationStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, Settings(home=tmp_path, webhook_max_bytes=4096))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://calflow") as c:
        yield c
    reset_engines()


def inbox(store: IntegrationStore) -> Inbox:
    return Inbox(store.engine)


async def test_a_signed_calcom_delivery_is_stored_once(
    client: httpx.AsyncClient, store: IntegrationStore
) -> None:
    body = json.dumps(CAL_BODY).encode()
    url = f"/hooks/{store.get('cc').id}"
    headers = {"X-Cal-Signature-256": cal_sign(body), "Content-Type": "application/json"}
    first = await client.post(url, content=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await client.post(url, content=body, headers=headers)
    assert again.json()["duplicate"] and again.json()["event"] == first.json()["event"]
    shown = inbox(store).get(first.json()["event"])
    assert shown["kind"] == "created" and shown["booking_uid"] == "uid-recv-1"
    assert shown["event"]["attendees"][0]["phone"] == "+33612345678"
    assert [d["duplicate"] for d in shown["deliveries"]] == [False, True]


async def test_savvycal_signature_hex_is_case_insensitive(
    client: httpx.AsyncClient, store: IntegrationStore
) -> None:
    envelope = {"type": "event.canceled", "id": "payload_1", "version": "2020-11-18",
                "occurred_at": "2026-11-20T10:00:00Z",
                "payload": {"id": "event_1", "state": "canceled",
                            "start_at": "2026-12-01T09:00:00Z", "end_at": "2026-12-01T09:30:00Z",
                            "attendees": []}}  # fmt: skip
    body = json.dumps(envelope).encode()
    sig = "sha256=" + cal_sign(body).upper()
    resp = await client.post(
        f"/hooks/{store.get('sc').id}", content=body, headers={"x-savvycal-signature": sig}
    )
    assert resp.status_code == 200, resp.text
    assert inbox(store).list()[0]["kind"] == "cancelled"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Cal-Signature-256": "no-secret-provided"}, {"X-Cal-Signature-256": "00" * 32}],
)
async def test_bad_signatures_store_nothing(
    client: httpx.AsyncClient, store: IntegrationStore, headers: dict[str, str]
) -> None:
    body = json.dumps(CAL_BODY).encode()
    resp = await client.post(f"/hooks/{store.get('cc').id}", content=body, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "BAD_SIGNATURE"
    assert inbox(store).count() == 0


async def test_refusals_have_clear_4xx_answers(
    client: httpx.AsyncClient, store: IntegrationStore
) -> None:
    cc = store.get("cc").id
    big = b"{" + b" " * 5000 + b"}"
    resp = await client.post(f"/hooks/{cc}", content=big, headers={"X-Cal-Signature-256": "x"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    resp = await client.post(f"/hooks/{cc}", content=chunks())  # no Content-Length
    assert resp.status_code == 413
    resp = await client.post("/hooks/int_unknown", content=b"{}")
    assert resp.status_code == 404
    resp = await client.post("/hooks/cc", content=b"{}")  # names are not hook URLs
    assert resp.status_code == 404
    resp = await client.post(f"/hooks/{store.get('nosecret').id}", content=b"{}")
    assert resp.status_code == 401 and "webhooks register" in resp.json()["error"]["message"]
    garbage = b"not json"
    resp = await client.post(
        f"/hooks/{cc}", content=garbage, headers={"X-Cal-Signature-256": cal_sign(garbage)}
    )
    assert resp.status_code == 400
    odd = json.dumps({"hello": "world"}).encode()
    resp = await client.post(
        f"/hooks/{cc}", content=odd, headers={"X-Cal-Signature-256": cal_sign(odd)}
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "NOT_A_DELIVERY"
    resp = await client.get(f"/hooks/{cc}")
    assert resp.status_code == 405 and "error" in resp.json()
    assert inbox(store).count() == 0


async def test_standard_webhooks_opt_in(client: httpx.AsyncClient, store: IntegrationStore) -> None:
    body = json.dumps(CAL_BODY).encode()
    secret = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="
    ts = str(int(time.time()))
    good = {
        "webhook-id": "msg_1",
        "webhook-timestamp": ts,
        "webhook-signature": "v1,bogus " + standard_signature(secret, "msg_1", ts, body),
    }
    url = f"/hooks/{store.get('std').id}"
    assert (await client.post(url, content=body, headers=good)).status_code == 200
    old = str(int(time.time()) - 600)
    stale = {**good, "webhook-timestamp": old,
             "webhook-signature": standard_signature(secret, "msg_1", old, body)}  # fmt: skip
    assert (await client.post(url, content=body, headers=stale)).status_code == 401
    cal_style = {"X-Cal-Signature-256": cal_sign(body, secret)}
    assert (await client.post(url, content=body, headers=cal_style)).status_code == 401
