"""Delivery bodies built the way the providers build them (not the way calflow's sandbox
does), from the facts in PROVIDERS.md "Real deliveries" and the providers' own code:

- Cal.com: ``sendPayload.ts`` wraps ``{triggerEvent, createdAt, payload}``; a booking
  payload spreads the CalendarEvent (attendees with ``firstName``/``lastName``/
  ``utcOffset``, ``responses`` as ``{label, value}``); seats follow
  ``handleSeats/create/createNewSeat.ts`` (``attendees`` = existing + new booker, a new
  ``attendeeSeatId``) and ``handleSeats/cancel/cancelAttendeeSeat.ts`` (``attendees`` =
  only the leaver, ``status: CANCELLED``).
- SavvyCal: ``{type, id, version, occurred_at, payload}``; ``event.changed`` puts the
  Event under ``payload.event`` (``EventChangedWebhook``).
"""

from __future__ import annotations

from typing import Any

SEATED_UID = "seat-booking-uid-1"
START = "2031-03-04T15:00:00.000Z"
END = "2031-03-04T16:00:00.000Z"
ORGANIZER = {
    "id": 7,
    "name": "Host Person",
    "email": "host@example.com",
    "username": "host",
    "timeZone": "Europe/Paris",
    "language": {"locale": "en"},
    "timeFormat": "h:mma",
}


def cal_attendee(name: str, email: str, phone: str | None = None) -> dict[str, Any]:
    first, _, last = name.partition(" ")
    out: dict[str, Any] = {
        "name": name,
        "firstName": first,
        "lastName": last,
        "email": email,
        "timeZone": "America/New_York",
        "utcOffset": -300,
        "language": {"locale": "en"},
    }
    if phone:
        out["phoneNumber"] = phone
    return out


def cal_responses(name: str, email: str, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": {"label": "your_name", "value": name},
        "email": {"label": "email_address", "value": email},
    }
    out.update({k: {"label": k, "value": v} for k, v in more.items()})
    return out


def cal_booking_payload(
    attendees: list[dict[str, Any]],
    booker: tuple[str, str],
    *,
    uid: str = SEATED_UID,
    status: str = "ACCEPTED",
    seats: int | None = 3,
    seat_id: str | None = None,
    start: str = START,
    end: str = END,
    **more: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "workshop",
        "title": "Group Workshop between Host Person and the group",
        "description": "",
        "startTime": start,
        "endTime": end,
        "organizer": ORGANIZER,
        "attendees": attendees,
        "responses": cal_responses(*booker),
        "location": "integrations:daily",
        "uid": uid,
        "bookingId": 4242,
        "eventTypeId": 105,
        "length": 60,
        "status": status,
        "metadata": {"videoCallUrl": "https://app.cal.com/video/abc"},
        "seatsPerTimeSlot": seats,
        "seatsShowAttendees": False,
    }
    if seat_id:
        payload["attendeeSeatId"] = seat_id
    payload.update(more)
    return payload


def cal_delivery(trigger: str, payload: dict[str, Any], created_at: str) -> dict[str, Any]:
    return {"triggerEvent": trigger, "createdAt": created_at, "payload": payload}


ANN = cal_attendee("Ann Lee", "ann@example.com", "+14155550101")
BOB = cal_attendee("Bob Stone", "Bob@Example.com", "+14155550102")


def first_seat() -> dict[str, Any]:
    """Ann books the first seat of the workshop."""
    payload = cal_booking_payload([ANN], ("Ann Lee", "ann@example.com"), seat_id="seat-ann")
    return cal_delivery("BOOKING_CREATED", payload, "2031-03-01T10:00:00.000Z")


def second_seat() -> dict[str, Any]:
    """Bob takes the second seat: same uid and bookingId, attendees = Ann and Bob."""
    payload = cal_booking_payload([ANN, BOB], ("Bob Stone", "Bob@Example.com"), seat_id="seat-bob")
    return cal_delivery("BOOKING_CREATED", payload, "2031-03-01T11:00:00.000Z")


def seat_cancel(who: dict[str, Any] = ANN) -> dict[str, Any]:
    """One seat holder leaves: ``attendees`` = only them, the booking goes on."""
    payload = cal_booking_payload(
        [who],
        (who["name"], who["email"]),
        status="CANCELLED",
        start="2031-03-04T15:00:00+00:00",
        end="2031-03-04T16:00:00+00:00",
    )
    return cal_delivery("BOOKING_CANCELLED", payload, "2031-03-02T09:00:00.000Z")


def whole_cancel() -> dict[str, Any]:
    """The host cancels the whole seated booking: every attendee is listed."""
    payload = cal_booking_payload(
        [ANN, BOB],
        ("Ann Lee", "ann@example.com"),
        status="CANCELLED",
        cancellationReason="Host is sick",
        start="2031-03-04T15:00:00+00:00",
        end="2031-03-04T16:00:00+00:00",
    )
    return cal_delivery("BOOKING_CANCELLED", payload, "2031-03-02T10:00:00.000Z")
