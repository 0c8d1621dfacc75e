"""Every Cal.com delivery shape as Cal.com really sends it (PROVIDERS.md "Real deliveries").

Files named below are Cal.com's, under ``packages/features/``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from calflow.sandbox import SandboxConfig
from calflow.sandbox.server import run_in_thread

from ._support import BOOKINGS, SLOTS, Sandbox, receiver

Z_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
Z_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
PHONE = "+447700900123"
SMS = "+15005550006"


def _bodies(sb: Sandbox) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in sb.hooks.requests]


async def test_every_delivery_has_the_webhook_version_header(sb: Sandbox) -> None:
    """sendPayload.ts senders add ``X-Cal-Webhook-Version: 2021-10-20`` to every kind."""
    await sb.hook(["BOOKING_CREATED", "BOOKING_CANCELLED", "MEETING_STARTED", "FORM_SUBMITTED"])
    booking = (await sb.book(await sb.first_slot())).json()["data"]
    await sb.root.post(f"/_sandbox/calcom/bookings/{booking['uid']}/meeting-started")
    await sb.root.post("/_sandbox/calcom/forms/f1/submit", json={"responses": {}})
    await sb.api.post(f"/v2/bookings/{booking['uid']}/cancel", headers=BOOKINGS, json={})
    await sb.state()
    assert len(sb.hooks.requests) == 4
    for request in sb.hooks.requests:
        assert request.headers["X-Cal-Webhook-Version"] == "2021-10-20"
        assert request.headers["Content-Type"] == "application/json"


async def test_created_attendees_phone_and_sms_reminder_number(sb: Sandbox) -> None:
    """v2021-10-20/BookingPayloadBuilder.ts: attendees spread from the CalendarEvent
    (``firstName``, ``lastName``) plus ``utcOffset``; ``smsReminderNumber`` from the
    booking row, separate from the booker's ``phoneNumber``; the envelope's createdAt is
    ``toISOString()`` and the times are dayjs ``utc().format()``."""
    await sb.hook(["BOOKING_CREATED"])
    attendee = {"name": "Bob Smith", "email": "bob@example.com", "timeZone": "America/New_York"}
    await sb.book(
        await sb.first_slot(),
        attendee={**attendee, "phoneNumber": PHONE},
        bookingFieldsResponses={"smsReminderNumber": SMS},
    )
    await sb.state()
    (body,) = _bodies(sb)
    payload = body["payload"]
    person = payload["attendees"][0]
    assert person["firstName"] == "Bob" and person["lastName"] == "Smith"
    assert person["utcOffset"] in (-300, -240)
    assert person["phoneNumber"] == PHONE
    assert payload["organizer"]["utcOffset"] in (60, 120)
    assert payload["smsReminderNumber"] == SMS
    assert payload["responses"]["smsReminderNumber"]["value"] == SMS
    assert payload["responses"]["attendeePhoneNumber"]["value"] == PHONE
    assert Z_MILLIS.match(body["createdAt"])
    assert Z_SECONDS.match(payload["startTime"]) and Z_SECONDS.match(payload["endTime"])


async def test_sms_reminder_number_may_be_the_only_phone(sb: Sandbox) -> None:
    """The SMS-reminder number is its own booking field: no attendee phone needed."""
    await sb.hook(["BOOKING_CREATED"])
    await sb.book(await sb.first_slot(), bookingFieldsResponses={"smsReminderNumber": SMS})
    await sb.state()
    payload = _bodies(sb)[0]["payload"]
    assert payload["smsReminderNumber"] == SMS
    assert "phoneNumber" not in payload["attendees"][0]
    assert "attendeePhoneNumber" not in payload["responses"]


async def test_cancel_times_are_dayjs_format_offsets(sb: Sandbox) -> None:
    """handleCancelBooking.ts: ``startTime: dayjs(startTime).format()`` (``+00:00``),
    attendees rebuilt from the rows (no firstName/lastName) plus utcOffset."""
    await sb.hook(["BOOKING_CANCELLED"])
    booking = (await sb.book(await sb.first_slot())).json()["data"]
    await sb.api.post(
        f"/v2/bookings/{booking['uid']}/cancel", headers=BOOKINGS, json={"cancellationReason": "x"}
    )
    await sb.state()
    payload = _bodies(sb)[0]["payload"]
    assert OFFSET.match(payload["startTime"]) and OFFSET.match(payload["endTime"])
    assert payload["status"] == "CANCELLED" and payload["cancellationReason"] == "x"
    assert "utcOffset" in payload["attendees"][0]
    assert "firstName" not in payload["attendees"][0]


async def test_reschedule_payload(sb: Sandbox) -> None:
    """handleNewBooking reschedule: uid is the NEW booking; rescheduleUid, rescheduleId,
    rescheduleStartTime/EndTime of the old one, rescheduledBy, and the reason in
    ``responses.rescheduleReason.value``."""
    await sb.hook(["BOOKING_RESCHEDULED"])
    old = (await sb.book(await sb.first_slot())).json()["data"]
    new = (
        await sb.api.post(
            f"/v2/bookings/{old['uid']}/reschedule",
            headers=BOOKINGS,
            json={
                "start": await sb.first_slot(index=4),
                "reschedulingReason": "Dentist",
                "rescheduledBy": "bob@example.com",
            },
        )
    ).json()["data"]
    await sb.state()
    payload = _bodies(sb)[0]["payload"]
    assert payload["uid"] == new["uid"] != old["uid"]
    assert payload["rescheduleUid"] == old["uid"] and payload["rescheduleId"] == old["id"]
    assert payload["rescheduleStartTime"] == old["start"].replace(".000Z", "Z")
    assert payload["rescheduleEndTime"] == old["end"].replace(".000Z", "Z")
    assert payload["rescheduledBy"] == "bob@example.com"
    assert payload["responses"]["rescheduleReason"]["value"] == "Dentist"


async def test_confirming_a_request_sends_booking_created_again(sb: Sandbox) -> None:
    """handleConfirmation.ts: BOOKING_CREATED (no BOOKING_CONFIRMED), same uid,
    ``status: ACCEPTED``; the confirm handler's times are ``toISOString()``."""
    await sb.hook(["BOOKING_REQUESTED", "BOOKING_CREATED"])
    pending = (await sb.book(await sb.first_slot(104), eventTypeId=104)).json()["data"]
    await sb.api.post(f"/v2/bookings/{pending['uid']}/confirm", headers=BOOKINGS)
    await sb.state()
    requested, created = _bodies(sb)
    assert requested["triggerEvent"] == "BOOKING_REQUESTED"
    assert requested["payload"]["status"] == "PENDING"
    assert created["triggerEvent"] == "BOOKING_CREATED"
    assert created["payload"]["uid"] == pending["uid"]
    assert created["payload"]["status"] == "ACCEPTED"
    assert created["payload"]["startTime"] == pending["start"]


async def test_meeting_shapes_nested_by_default_flat_as_option(sb: Sandbox) -> None:
    """v2021-10-20/MeetingPayloadBuilder.ts (current): ``{triggerEvent, createdAt,
    payload: <booking row>}``, host under ``payload.user``, no organizer. The older
    scheduleTrigger body is flat ``{triggerEvent, ...booking row}`` with the booking's
    createdAt, chosen with ``POST /_sandbox/calcom/options {"meeting_payload": "flat"}``."""
    await sb.hook(["MEETING_STARTED", "MEETING_ENDED"])
    booking = (await sb.book(await sb.first_slot())).json()["data"]
    await sb.root.post(f"/_sandbox/calcom/bookings/{booking['uid']}/meeting-started")
    option = await sb.root.post("/_sandbox/calcom/options", json={"meeting_payload": "flat"})
    assert option.json() == {"meeting_payload": "flat"}
    await sb.root.post(f"/_sandbox/calcom/bookings/{booking['uid']}/meeting-ended")
    bad = await sb.root.post("/_sandbox/calcom/options", json={"meeting_payload": "round"})
    assert bad.status_code == 400
    await sb.state()
    nested, flat = _bodies(sb)
    assert list(nested) == ["triggerEvent", "createdAt", "payload"]
    assert nested["triggerEvent"] == "MEETING_STARTED"
    assert nested["payload"]["uid"] == booking["uid"]
    assert nested["payload"]["user"]["email"] == "demo@example.com"
    assert "organizer" not in nested["payload"]
    assert flat["triggerEvent"] == "MEETING_ENDED" and "payload" not in flat
    assert flat["createdAt"] == booking["createdAt"]
    assert flat["uid"] == booking["uid"] and flat["user"]["username"] == "demo"
    assert "organizer" not in flat


async def test_meeting_shape_config_option() -> None:
    """``SandboxConfig(calcom_meeting_payload="flat")`` starts with the older shape."""
    from ._support import API_KEY, make_sandbox

    config = SandboxConfig(api_key=API_KEY, rate_limit_per_min=0, calcom_meeting_payload="flat")
    async for sb in make_sandbox(config):
        await sb.hook(["MEETING_ENDED"])
        booking = (await sb.book(await sb.first_slot())).json()["data"]
        await sb.root.post(f"/_sandbox/calcom/bookings/{booking['uid']}/meeting-ended")
        await sb.state()
        assert "payload" not in _bodies(sb)[0]


async def test_form_submitted_has_answers_at_the_root(sb: Sandbox) -> None:
    """Routing forms' sendGenericWebhookPayload: ``payload`` is ``{formId, formName,
    teamId, responses}``, every answer's value also at the root, and no booking uid."""
    await sb.hook(["FORM_SUBMITTED"])
    responses = {
        "email": {"label": "Email", "value": "lead@example.com"},
        "budget": {"label": "Budget", "value": "10k"},
    }
    response = await sb.root.post(
        "/_sandbox/calcom/forms/form-1/submit", json={"formName": "Intake", "responses": responses}
    )
    assert response.status_code == 200
    await sb.state()
    (body,) = _bodies(sb)
    assert body["triggerEvent"] == "FORM_SUBMITTED"
    assert body["email"] == "lead@example.com" and body["budget"] == "10k"
    assert body["payload"] == {
        "formId": "form-1",
        "formName": "Intake",
        "teamId": None,
        "responses": responses,
    }
    assert "uid" not in body and "uid" not in body["payload"]


async def test_recording_ready_has_uid_and_download_link(sb: Sandbox) -> None:
    """RECORDING_READY (daily-video webhook → sendPayload): the CalendarEvent with
    ``uid`` and ``downloadLink``."""
    await sb.hook(["RECORDING_READY"])
    booking = (await sb.book(await sb.first_slot())).json()["data"]
    link = "https://example.com/rec.mp4"
    response = await sb.root.post(
        f"/_sandbox/calcom/bookings/{booking['uid']}/recording-ready", json={"downloadLink": link}
    )
    assert response.status_code == 200
    await sb.state()
    payload = _bodies(sb)[0]["payload"]
    assert payload["uid"] == booking["uid"] and payload["downloadLink"] == link


def test_real_server_seat_deliveries_to_a_local_receiver() -> None:
    """A real uvicorn sandbox: two seats and a seat cancel reach a local HTTP receiver
    with the seated booking's uid each time (createNewSeat.ts, cancelAttendeeSeat.ts)."""
    config = SandboxConfig(api_key="cal_live_real")
    with receiver() as (url, received), run_in_thread(config) as base:
        auth = {"Authorization": "Bearer cal_live_real"}
        with httpx.Client(base_url=f"{base}/calcom", headers=auth, timeout=10) as client:
            hook = {"subscriberUrl": url, "triggers": ["BOOKING_CREATED", "BOOKING_CANCELLED"]}
            assert client.post("/v2/webhooks", json={**hook, "active": True}).status_code == 201
            slots = client.get(
                "/v2/slots",
                headers=SLOTS,
                params={"start": "2000-01-01", "end": "2100-01-01", "eventTypeId": 105},
            ).json()["data"]
            start = slots[sorted(slots)[0]][0]["start"]
            seats = []
            for i in (1, 2):
                person = {"name": f"P{i}", "email": f"p{i}@example.com", "timeZone": "UTC"}
                made = client.post(
                    "/v2/bookings",
                    headers=BOOKINGS,
                    json={"start": start, "eventTypeId": 105, "attendee": person},
                )
                seats.append(made.json()["data"])
            uid = seats[0]["uid"]
            cancel = client.post(
                f"/v2/bookings/{uid}/cancel",
                headers=BOOKINGS,
                json={"seatUid": seats[0]["seatUid"]},
            )
            assert cancel.status_code == 200
            assert httpx.post(f"{base}/_sandbox/calcom/flush").status_code == 200
    bodies = [json.loads(body) for _, body in received]
    assert [b["triggerEvent"] for b in bodies] == [
        "BOOKING_CREATED",
        "BOOKING_CREATED",
        "BOOKING_CANCELLED",
    ]
    assert {b["payload"]["uid"] for b in bodies} == {uid}
    assert [b["payload"]["attendeeSeatId"] for b in bodies[:2]] == [s["seatUid"] for s in seats]
    assert [a["email"] for a in bodies[2]["payload"]["attendees"]] == ["p1@example.com"]
    assert all(h["X-Cal-Webhook-Version"] == "2021-10-20" for h, _ in received)
