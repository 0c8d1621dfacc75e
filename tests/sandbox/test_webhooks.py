"""Webhook management and delivery payloads, signatures and headers."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from ._support import BOOKINGS, Sandbox


def _body(request: httpx.Request) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request.content)
    return data


async def test_webhook_crud_and_validation(sb: Sandbox) -> None:
    hook = await sb.hook(["BOOKING_CREATED"])
    assert hook["triggers"] == ["BOOKING_CREATED"]
    assert hook["active"] is True and hook["userId"] == 1
    dup = await sb.api.post(
        "/v2/webhooks",
        json={
            "subscriberUrl": hook["subscriberUrl"],
            "triggers": ["BOOKING_CREATED"],
            "active": True,
        },
    )
    assert dup.status_code == 409
    bad = await sb.api.post(
        "/v2/webhooks",
        json={
            "subscriberUrl": "https://x.example.com",
            "triggers": ["BOOKING_CONFIRMED"],
            "active": True,
        },
    )
    assert bad.status_code == 400
    string_trigger = await sb.api.post(
        "/v2/webhooks",
        json={
            "subscriberUrl": "https://y.example.com",
            "triggers": "BOOKING_CREATED",
            "active": True,
        },
    )
    assert string_trigger.status_code == 400
    patched = await sb.api.patch(f"/v2/webhooks/{hook['id']}", json={"active": False})
    assert patched.json()["data"]["active"] is False
    listed = await sb.api.get("/v2/webhooks", params={"take": 250})
    assert [h["id"] for h in listed.json()["data"]] == [hook["id"]]
    assert (await sb.api.get("/v2/webhooks", params={"take": 251})).status_code == 400
    deleted = await sb.api.delete(f"/v2/webhooks/{hook['id']}")
    assert deleted.status_code == 200
    assert (await sb.api.get(f"/v2/webhooks/{hook['id']}")).status_code == 404


async def test_created_payload_and_signature(sb: Sandbox) -> None:
    await sb.hook(["BOOKING_CREATED"], secret="s3cret")
    start = await sb.first_slot()
    attendee = {
        "name": "Bob Smith",
        "email": "bob@example.com",
        "timeZone": "Europe/London",
        "phoneNumber": "+447700900123",
    }
    booking = (await sb.book(start, attendee=attendee, metadata={"a": "b"})).json()["data"]
    state = await sb.state()
    assert len(sb.hooks.requests) == 1
    request = sb.hooks.requests[0]
    expected = hmac.new(b"s3cret", request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Cal-Signature-256"] == expected
    assert request.headers["X-Cal-Webhook-Version"] == "2021-10-20"
    assert request.headers["Content-Type"] == "application/json"
    body = _body(request)
    assert list(body) == ["triggerEvent", "createdAt", "payload"]
    assert body["triggerEvent"] == "BOOKING_CREATED"
    payload = body["payload"]
    assert payload["uid"] == booking["uid"] and payload["bookingId"] == booking["id"]
    assert payload["type"] == "30min" and payload["eventTypeId"] == 101 and payload["length"] == 30
    assert payload["status"] == "ACCEPTED"
    assert payload["startTime"] == booking["start"].replace(".000Z", "Z")
    assert payload["organizer"]["username"] == "demo"
    assert payload["organizer"]["language"] == {"locale": "en"}
    assert payload["attendees"][0]["phoneNumber"] == "+447700900123"
    assert payload["responses"]["name"] == {"label": "your_name", "value": "Bob Smith"}
    assert payload["responses"]["email"]["value"] == "bob@example.com"
    assert payload["metadata"]["a"] == "b"
    delivery = state["deliveries"][0]
    assert delivery["status_code"] == 200 and delivery["trigger"] == "BOOKING_CREATED"
    assert delivery["body"] == request.content.decode()


async def test_no_secret_header(sb: Sandbox) -> None:
    await sb.hook(["BOOKING_CREATED"], secret=None)
    await sb.book(await sb.first_slot())
    await sb.state()
    assert sb.hooks.requests[0].headers["X-Cal-Signature-256"] == "no-secret-provided"


async def test_reschedule_cancel_requested_rejected_payloads(sb: Sandbox) -> None:
    await sb.hook(
        [
            "BOOKING_RESCHEDULED",
            "BOOKING_CANCELLED",
            "BOOKING_REQUESTED",
            "BOOKING_REJECTED",
            "BOOKING_CREATED",
        ]
    )
    old = (await sb.book(await sb.first_slot())).json()["data"]
    new = (
        await sb.api.post(
            f"/v2/bookings/{old['uid']}/reschedule",
            headers=BOOKINGS,
            json={"start": await sb.first_slot(index=4)},
        )
    ).json()["data"]
    await sb.api.post(
        f"/v2/bookings/{new['uid']}/cancel", headers=BOOKINGS, json={"cancellationReason": "Ill"}
    )
    pending = (await sb.book(await sb.first_slot(104), eventTypeId=104)).json()["data"]
    await sb.api.post(
        f"/v2/bookings/{pending['uid']}/decline", headers=BOOKINGS, json={"reason": "No"}
    )
    await sb.state()
    bodies = [_body(r) for r in sb.hooks.requests]
    triggers = [b["triggerEvent"] for b in bodies]
    assert triggers == [
        "BOOKING_CREATED",
        "BOOKING_RESCHEDULED",
        "BOOKING_CANCELLED",
        "BOOKING_REQUESTED",
        "BOOKING_REJECTED",
    ]
    rescheduled = bodies[1]["payload"]
    assert rescheduled["uid"] == new["uid"] and rescheduled["rescheduleUid"] == old["uid"]
    assert rescheduled["rescheduleId"] == old["id"]
    cancelled = bodies[2]["payload"]
    assert cancelled["status"] == "CANCELLED" and cancelled["cancellationReason"] == "Ill"
    assert bodies[3]["payload"]["status"] == "PENDING"
    assert bodies[4]["payload"]["status"] == "REJECTED"


async def test_no_show_and_meeting_ended_shapes(sb: Sandbox) -> None:
    """BookingPayloadBuilder.ts buildNoShowPayload: the payload is exactly ``{bookingUid,
    bookingId, attendees, message}``; MEETING_ENDED nested (MeetingPayloadBuilder.ts)."""
    await sb.hook(["BOOKING_NO_SHOW_UPDATED", "MEETING_ENDED", "MEETING_STARTED"])
    booking = (await sb.book(await sb.first_slot())).json()["data"]
    await sb.root.post("/_sandbox/clock", json={"offset_s": 90 * 86400})
    await sb.api.post(
        f"/v2/bookings/{booking['uid']}/mark-absent",
        headers=BOOKINGS,
        json={"attendees": [{"email": "bob@example.com", "absent": True}]},
    )
    ended = await sb.root.post(f"/_sandbox/calcom/bookings/{booking['uid']}/meeting-ended")
    assert ended.status_code == 200
    flushed = await sb.root.post("/_sandbox/calcom/flush")
    assert flushed.status_code == 200
    no_show, meeting = (_body(r) for r in sb.hooks.requests)
    assert no_show["triggerEvent"] == "BOOKING_NO_SHOW_UPDATED"
    assert no_show["payload"] == {
        "message": "bob@example.com marked as no-show",
        "attendees": [{"email": "bob@example.com", "noShow": True}],
        "bookingUid": booking["uid"],
        "bookingId": booking["id"],
    }
    assert meeting["triggerEvent"] == "MEETING_ENDED"
    # Current Cal.com (MeetingPayloadBuilder.ts): nested; the flat shape is an option.
    assert list(meeting) == ["triggerEvent", "createdAt", "payload"]
    row = meeting["payload"]
    assert row["uid"] == booking["uid"] and row["status"] == "ACCEPTED"
    assert row["attendees"][0]["email"] == "bob@example.com"


async def test_inactive_and_unsubscribed_hooks_get_nothing(sb: Sandbox) -> None:
    hook = await sb.hook(["BOOKING_CANCELLED"])
    await sb.book(await sb.first_slot())
    await sb.api.patch(f"/v2/webhooks/{hook['id']}", json={"active": False})
    await sb.state()
    assert sb.hooks.requests == []


async def test_payload_template(sb: Sandbox) -> None:
    await sb.api.post(
        "/v2/webhooks",
        json={
            "subscriberUrl": "https://t.example.com",
            "triggers": ["BOOKING_CREATED"],
            "active": True,
            "payloadTemplate": '{"kind":"{{triggerEvent}}","who":"{{organizer.username}}"}',
        },
    )
    await sb.book(await sb.first_slot())
    await sb.state()
    assert _body(sb.hooks.requests[0]) == {"kind": "BOOKING_CREATED", "who": "demo"}


async def test_unreachable_subscriber_is_recorded_as_error() -> None:
    from calflow.sandbox import SandboxConfig, create_sandbox_app

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    app = create_sandbox_app(
        SandboxConfig(api_key="k"), webhook_transport=httpx.MockTransport(refuse)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
        auth = {"Authorization": "Bearer k"}
        await client.post(
            "/calcom/v2/webhooks",
            headers=auth,
            json={
                "subscriberUrl": "https://down.example.com",
                "triggers": ["BOOKING_CREATED"],
                "active": True,
            },
        )
        slots = await client.get(
            "/calcom/v2/slots",
            headers={"cal-api-version": "2024-09-04"},
            params={"start": "2000-01-01", "end": "2100-01-01", "eventTypeId": 101},
        )
        start = next(iter(slots.json()["data"].values()))[0]["start"]
        created = await client.post(
            "/calcom/v2/bookings",
            headers={**auth, **BOOKINGS},
            json={
                "start": start,
                "eventTypeId": 101,
                "attendee": {"name": "A", "email": "a@b.co", "timeZone": "UTC"},
            },
        )
        assert created.status_code == 201
        state = (await client.get("/_sandbox/state", params={"flush": "true"})).json()
    delivery = state["calcom"]["deliveries"][0]
    assert delivery["status_code"] is None and "ConnectError" in delivery["error"]
