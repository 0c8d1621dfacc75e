"""Seated event types: what Cal.com's handleSeats sends and API v2 answers.

Event type 105 ("workshop") has 3 seats. Files named below are under Cal.com's
``packages/features/bookings/lib/``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from ._support import BOOKINGS, Sandbox

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TRIGGERS = ["BOOKING_CREATED", "BOOKING_CANCELLED", "BOOKING_RESCHEDULED"]


def _bodies(sb: Sandbox) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in sb.hooks.requests]


def _person(i: int) -> dict[str, str]:
    return {"name": f"Seat Holder{i}", "email": f"seat{i}@example.com", "timeZone": "UTC"}


async def _seat(sb: Sandbox, start: str, i: int, **extra: Any) -> dict[str, Any]:
    response = await sb.book(start, eventTypeId=105, attendee=_person(i), **extra)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _cancel(sb: Sandbox, uid: str, body: dict[str, Any]) -> httpx.Response:
    return await sb.api.post(f"/v2/bookings/{uid}/cancel", headers=BOOKINGS, json=body)


async def _reschedule(sb: Sandbox, uid: str, body: dict[str, Any]) -> httpx.Response:
    return await sb.api.post(f"/v2/bookings/{uid}/reschedule", headers=BOOKINGS, json=body)


async def test_every_seat_sends_booking_created_with_its_seat(sb: Sandbox) -> None:
    """createNewSeat.ts + handleSeats.ts: same uid/bookingId, a new attendeeSeatId,
    attendees = existing + the new booker (last), the new booker's responses and
    seatsPerTimeSlot in the payload; the first seat (handleNewBooking) has its seat too.
    API v2 answers ``CreateSeatedBookingOutput_2024_08_13`` with ``seatUid``."""
    await sb.hook(["BOOKING_CREATED"])
    start = await sb.first_slot(105)
    first = await _seat(sb, start, 1, bookingFieldsResponses={"smsReminderNumber": "+15005550006"})
    second = await _seat(sb, start, 2)
    assert first["uid"] == second["uid"] and first["id"] == second["id"]
    assert UUID.match(first["seatUid"]) and UUID.match(second["seatUid"])
    assert first["seatUid"] != second["seatUid"]
    assert "bookingFieldsResponses" not in second and "guests" not in second
    assert [a["seatUid"] for a in second["attendees"]] == [first["seatUid"], second["seatUid"]]
    await sb.state()
    one, two = (b["payload"] for b in _bodies(sb))
    assert [b["triggerEvent"] for b in _bodies(sb)] == ["BOOKING_CREATED"] * 2
    assert one["uid"] == two["uid"] == first["uid"]
    assert one["bookingId"] == two["bookingId"] == first["id"]
    assert one["attendeeSeatId"] == first["seatUid"]
    assert two["attendeeSeatId"] == second["seatUid"]
    assert [a["email"] for a in one["attendees"]] == ["seat1@example.com"]
    assert [a["email"] for a in two["attendees"]] == ["seat1@example.com", "seat2@example.com"]
    assert two["responses"]["email"]["value"] == "seat2@example.com"
    assert two["responses"]["name"]["value"] == "Seat Holder2"
    assert two["seatsPerTimeSlot"] == 3 and two["seatsShowAttendees"] is False
    assert two["status"] == "ACCEPTED"
    # The booking's SMS reminder number (the first booker's) rides on every seat's payload.
    assert one["smsReminderNumber"] == two["smsReminderNumber"] == "+15005550006"


async def test_get_and_list_show_each_attendee_with_seat_uid(sb: Sandbox) -> None:
    """GetSeatedBookingOutput_2024_08_13 (output.service.ts getOutputSeatedBooking):
    attendees are SeatedAttendee with seatUid and their seat's responses (no email)."""
    start = await sb.first_slot(105)
    first = await _seat(sb, start, 1, bookingFieldsResponses={"notes": "front row"})
    second = await _seat(sb, start, 2)
    got = (await sb.api.get(f"/v2/bookings/{first['uid']}", headers=BOOKINGS)).json()["data"]
    attendees = got["attendees"]
    assert [a["seatUid"] for a in attendees] == [first["seatUid"], second["seatUid"]]
    assert attendees[0]["bookingFieldsResponses"] == {"name": "Seat Holder1", "notes": "front row"}
    assert set(attendees[0]) == {
        "name",
        "email",
        "timeZone",
        "language",
        "absent",
        "seatUid",
        "bookingFieldsResponses",
        "metadata",
    }
    assert "seatUid" not in got
    listed = await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"eventTypeId": 105})
    (item,) = [b for b in listed.json()["data"] if b["uid"] == first["uid"]]
    assert [a["seatUid"] for a in item["attendees"]] == [first["seatUid"], second["seatUid"]]
    # Without the owner's key, attendees are hidden (seatsShowAttendees is off).
    anonymous = await sb.root.get(f"/calcom/v2/bookings/{first['uid']}", headers=BOOKINGS)
    assert anonymous.json()["data"]["attendees"] == []


async def test_seat_cancel_removes_only_that_seat(sb: Sandbox) -> None:
    """cancelAttendeeSeat.ts: BOOKING_CANCELLED with the same uid, status CANCELLED,
    attendees = only the person who left, smsReminderNumber; times dayjs format()
    (``+00:00``); the booking stays accepted for the others."""
    start = await sb.first_slot(105)
    sms = {"smsReminderNumber": "+15005550006"}
    first = await _seat(sb, start, 1, bookingFieldsResponses=sms)
    second = await _seat(sb, start, 2)
    await sb.hook(["BOOKING_CANCELLED"])
    response = await _cancel(sb, first["uid"], {"seatUid": second["seatUid"]})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "accepted"
    assert [a["email"] for a in data["attendees"]] == ["seat1@example.com"]
    await sb.state()
    (body,) = _bodies(sb)
    payload = body["payload"]
    assert body["triggerEvent"] == "BOOKING_CANCELLED"
    assert payload["uid"] == first["uid"] and payload["status"] == "CANCELLED"
    assert [a["email"] for a in payload["attendees"]] == ["seat2@example.com"]
    assert payload["smsReminderNumber"] == "+15005550006"
    assert payload["startTime"].endswith("+00:00") and payload["endTime"].endswith("+00:00")
    again = await _cancel(sb, first["uid"], {"seatUid": second["seatUid"]})
    assert again.status_code == 400
    assert again.json()["error"]["message"] == (
        "Invalid seatUid: this seat does not exist or has already been cancelled."
    )


async def test_last_seat_or_host_cancel_cancels_the_booking(sb: Sandbox) -> None:
    """handleCancelBooking.ts: cancelAttendeeSeat does nothing for the last seat, so the
    whole booking is cancelled (attendees = all remaining); the host cancelling without
    seatUid cancels everyone's. A seat of another booking is refused."""
    day1, day2 = await sb.first_slot(105), await sb.first_slot(105, index=3)
    solo = await _seat(sb, day1, 1)
    a = await _seat(sb, day2, 2)
    await _seat(sb, day2, 3)
    await sb.hook(["BOOKING_CANCELLED"])
    wrong = await _cancel(sb, solo["uid"], {"seatUid": a["seatUid"]})
    assert wrong.status_code == 400
    assert "does not belong to this booking" in wrong.json()["error"]["message"]
    last = await _cancel(sb, solo["uid"], {"seatUid": solo["seatUid"]})
    assert last.json()["data"]["status"] == "cancelled"
    host = await _cancel(sb, a["uid"], {"cancellationReason": "Host is ill"})
    assert host.json()["data"]["status"] == "cancelled"
    await sb.state()
    by_solo, by_host = (b["payload"] for b in _bodies(sb))
    assert by_solo["uid"] == solo["uid"] and by_solo["status"] == "CANCELLED"
    assert [x["email"] for x in by_solo["attendees"]] == ["seat1@example.com"]
    assert by_host["uid"] == a["uid"]
    assert [x["email"] for x in by_host["attendees"]] == [
        "seat2@example.com",
        "seat3@example.com",
    ]
    assert by_host["cancellationReason"] == "Host is ill"
    # Only the host may cancel a whole seated booking.
    b = await _seat(sb, await sb.first_slot(105, index=5), 4)
    anonymous = await sb.root.post(
        f"/calcom/v2/bookings/{b['uid']}/cancel", headers=BOOKINGS, json={}
    )
    assert anonymous.status_code == 401


async def test_attendee_moves_seat_into_existing_seated_booking(sb: Sandbox) -> None:
    """attendeeRescheduleSeatedBooking.ts with a booking at the new time: the seat (same
    seat uid) joins it; handleSeats.ts sends BOOKING_RESCHEDULED with uid = that booking,
    bookingId = the original's, rescheduleUid = the original, the mover first. The
    original, left without attendees, is cancelled (lastAttendeeDeleteBooking.ts)."""
    day1, day2 = await sb.first_slot(105), await sb.first_slot(105, index=3)
    mover = await _seat(sb, day1, 1)
    there = await _seat(sb, day2, 2)
    await sb.hook(TRIGGERS)
    response = await _reschedule(
        sb,
        mover["uid"],
        {"start": day2, "seatUid": mover["seatUid"], "reschedulingReason": "Clash"},
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["uid"] == there["uid"] and data["seatUid"] == mover["seatUid"]
    state = await sb.state()
    old = next(b for b in state["bookings"] if b["uid"] == mover["uid"])
    assert old["status"] == "cancelled"
    (body,) = _bodies(sb)
    payload = body["payload"]
    assert body["triggerEvent"] == "BOOKING_RESCHEDULED"
    assert payload["uid"] == there["uid"] and payload["bookingId"] == mover["id"]
    assert payload["rescheduleUid"] == mover["uid"]
    assert payload["rescheduleStartTime"] == day1.replace(".000Z", "Z")
    assert payload["attendeeSeatId"] == mover["seatUid"]
    assert [a["email"] for a in payload["attendees"]] == [
        "seat1@example.com",
        "seat2@example.com",
    ]
    assert payload["responses"]["rescheduleReason"]["value"] == "Clash"


async def test_attendee_moves_seat_to_an_empty_slot(sb: Sandbox) -> None:
    """attendeeRescheduleSeatedBooking.ts without a booking at the new time: the
    attendee leaves the original (which goes on for the others) and handleNewBooking
    makes a new booking with a new seat: BOOKING_RESCHEDULED, uid NEW, rescheduleUid /
    rescheduleId of the original."""
    day1, day2 = await sb.first_slot(105), await sb.first_slot(105, index=3)
    stay = await _seat(sb, day1, 1)
    mover = await _seat(sb, day1, 2)
    await sb.hook(TRIGGERS)
    response = await _reschedule(sb, stay["uid"], {"start": day2, "seatUid": mover["seatUid"]})
    assert response.status_code == 201, response.text
    new = response.json()["data"]
    assert new["uid"] != stay["uid"] and new["rescheduledFromUid"] == stay["uid"]
    assert new["seatUid"] != mover["seatUid"] and UUID.match(new["seatUid"])
    kept = (await sb.api.get(f"/v2/bookings/{stay['uid']}", headers=BOOKINGS)).json()["data"]
    assert kept["status"] == "accepted"
    assert [a["email"] for a in kept["attendees"]] == ["seat1@example.com"]
    await sb.state()
    (body,) = _bodies(sb)
    payload = body["payload"]
    assert payload["uid"] == new["uid"] and payload["rescheduleUid"] == stay["uid"]
    assert payload["rescheduleId"] == stay["id"]
    assert payload["attendeeSeatId"] == new["seatUid"]
    assert [a["email"] for a in payload["attendees"]] == ["seat2@example.com"]


async def test_host_moves_whole_seated_booking(sb: Sandbox) -> None:
    """moveSeatedBookingToNewTimeSlot.ts: the same booking (same uid) at the new time,
    BOOKING_RESCHEDULED listing every attendee. combineTwoSeatedBookings.ts: onto a
    time with a seated booking, the attendees are merged into it and the original is
    cancelled; 409 when they would not fit."""
    day1, day2, day3 = [await sb.first_slot(105, index=i) for i in (0, 3, 5)]
    a = await _seat(sb, day1, 1)
    await _seat(sb, day1, 2)
    b = await _seat(sb, day3, 3)
    await sb.hook(TRIGGERS)
    moved = await _reschedule(sb, a["uid"], {"start": day2})
    assert moved.status_code == 201, moved.text
    assert moved.json()["data"]["uid"] == a["uid"]
    assert moved.json()["data"]["start"] == day2
    merged = await _reschedule(sb, a["uid"], {"start": day3})
    assert merged.status_code == 201, merged.text
    assert merged.json()["data"]["uid"] == b["uid"]
    assert len(merged.json()["data"]["attendees"]) == 3
    await sb.state()
    move, combine = (x["payload"] for x in _bodies(sb))
    assert move["uid"] == move["rescheduleUid"] == a["uid"]
    assert move["rescheduleStartTime"] == day1.replace(".000Z", "Z")
    assert [x["email"] for x in move["attendees"]] == ["seat1@example.com", "seat2@example.com"]
    assert combine["uid"] == b["uid"] and combine["rescheduleUid"] == a["uid"]
    assert len(combine["attendees"]) == 3
    c = await _seat(sb, day1, 4)
    await _seat(sb, day1, 5)
    full = await _reschedule(sb, c["uid"], {"start": day3})
    assert full.status_code == 409
