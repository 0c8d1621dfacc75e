"""Replaying Cal.com history: ``GET /v2/bookings`` in full, rebuilt as webhook deliveries.

Each booking becomes the ``{"triggerEvent", "createdAt", "payload"}`` delivery its
current state produced when it happened: accepted → BOOKING_CREATED (or
BOOKING_RESCHEDULED when it came from a reschedule), pending → BOOKING_REQUESTED,
rejected → BOOKING_REJECTED, cancelled → BOOKING_CANCELLED. The cancelled original of
a reschedule is skipped: Cal.com announced that change once, as BOOKING_RESCHEDULED of
the new booking. Signature ``X-Cal-Signature-256`` = lowercase hex HMAC-SHA256 of the
raw body (``no-secret-provided`` without a secret). ``createdAt`` comes from the
booking, not the clock, so a second replay sends byte-identical bodies.

A seated booking (attendees with a ``seatUid``) that is still on is replayed seat by
seat, as Cal.com announced it (``handleSeats/create/createNewSeat.ts``): one
``BOOKING_CREATED`` per seat with that seat's ``attendeeSeatId``, the seat holder's
responses and ``attendees`` = the seats taken so far; its items are ``<uid>#seat:<seatUid>``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calflow.apps.cal_com.client import BOOKINGS, CalComClient, data_of
from calflow.replay.adapter import (
    USER_AGENT,
    ProviderAdapter,
    SourcePage,
    compact_json,
    parse_time,
)
from calflow.replay.model import ReplayItem

SIGNATURE_HEADER = "X-Cal-Signature-256"
WEBHOOK_VERSION = "2021-10-20"
ALL_STATUSES = "upcoming,recurring,past,cancelled,unconfirmed"
PAGE = 100

KINDS: Mapping[str, str] = {
    "BOOKING_CREATED": "created",
    "BOOKING_RESCHEDULED": "rescheduled",
    "BOOKING_CANCELLED": "cancelled",
    "BOOKING_REQUESTED": "requested",
    "BOOKING_REJECTED": "declined",
}
_STATUS = {
    "BOOKING_CREATED": "ACCEPTED",
    "BOOKING_RESCHEDULED": "ACCEPTED",
    "BOOKING_CANCELLED": "CANCELLED",
    "BOOKING_REQUESTED": "PENDING",
    "BOOKING_REJECTED": "REJECTED",
}
_LABELS = {
    "name": "your_name",
    "email": "email_address",
    "attendeePhoneNumber": "phone_number",
    "location": "location",
    "notes": "additional_notes",
    "guests": "additional_guests",
    "rescheduleReason": "reason_for_reschedule",
}


def cal_signature(secret: str | None, body: bytes) -> str:
    """``X-Cal-Signature-256``: lowercase hex HMAC-SHA256, or ``no-secret-provided``."""
    if not secret:
        return "no-secret-provided"
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def trigger_for(booking: Mapping[str, Any]) -> tuple[str | None, str]:
    """The trigger a live delivery of ``booking``'s current state carried, or a skip."""
    status = str(booking.get("status") or "").lower()
    if status == "cancelled":
        if booking.get("rescheduledToUid"):
            return None, (
                f"rescheduled: replayed as BOOKING_RESCHEDULED of {booking['rescheduledToUid']}"
            )
        return "BOOKING_CANCELLED", ""
    if status == "rejected":
        return "BOOKING_REJECTED", ""
    if status == "pending":
        return "BOOKING_REQUESTED", ""
    if status == "accepted":
        if booking.get("rescheduledFromUid"):
            return "BOOKING_RESCHEDULED", ""
        return "BOOKING_CREATED", ""
    return None, f"unknown status: {status or '(none)'}"


def _webhook_time(value: Any) -> str | None:
    """``2050-09-05T09:00:00Z`` (dayjs ``utc().format()``) from an API v2 time."""
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else None


def _utc_offset(zone: Any, at: datetime | None) -> int:
    try:
        tz = ZoneInfo(str(zone or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    offset = (at or datetime.now(UTC)).astimezone(tz).utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def _responses(booking: Mapping[str, Any]) -> dict[str, Any]:
    fields = booking.get("bookingFieldsResponses")
    fields = fields if isinstance(fields, Mapping) else {}
    attendees = booking.get("attendees") or []
    first = attendees[0] if attendees and isinstance(attendees[0], Mapping) else {}
    out: dict[str, Any] = {
        "name": {"label": "your_name", "value": fields.get("name", first.get("name", ""))},
        "email": {"label": "email_address", "value": fields.get("email", first.get("email", ""))},
    }
    phone = fields.get("attendeePhoneNumber") or first.get("phoneNumber")
    if phone:
        out["attendeePhoneNumber"] = {"label": "phone_number", "value": phone}
    for key, value in fields.items():
        if key not in out and key not in ("displayEmail", "displayGuests"):
            out[key] = {"label": _LABELS.get(key, key), "value": value}
    return out


def _person(a: Mapping[str, Any], phone: Any, at: datetime | None) -> dict[str, Any]:
    name = str(a.get("name") or "")
    first, _, last = name.partition(" ")
    out: dict[str, Any] = {
        "email": a.get("email"),
        "name": name,
        "firstName": first,
        "lastName": last,
        "timeZone": a.get("timeZone") or "UTC",
        "language": {"locale": a.get("language") or "en"},
        "utcOffset": _utc_offset(a.get("timeZone"), at),
    }
    if phone:
        out["phoneNumber"] = phone
    return out


SEAT_MARK = "#seat:"
_SEAT_FIELD = "_calflowSeat"
_SEATED_LIVE = ("accepted", "pending", "unconfirmed")


def seats_of(booking: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``booking``, or one copy per seat when it is a seated booking still on."""
    attendees = [a for a in booking.get("attendees") or [] if isinstance(a, Mapping)]
    seated = [a for a in attendees if isinstance(a.get("seatUid"), str) and a["seatUid"]]
    status = str(booking.get("status") or "").lower()
    if not seated or status not in _SEATED_LIVE:
        return [booking]
    out: list[Mapping[str, Any]] = []
    for n, holder in enumerate(seated):
        fields = holder.get("bookingFieldsResponses")
        own = dict(fields) if isinstance(fields, Mapping) else {}
        own.setdefault("name", holder.get("name", ""))
        own.setdefault("email", holder.get("email", ""))
        if holder.get("phoneNumber"):
            own.setdefault("attendeePhoneNumber", holder["phoneNumber"])
        out.append({**booking, "attendees": seated[: n + 1], "bookingFieldsResponses": own,
                    _SEAT_FIELD: holder["seatUid"]})  # fmt: skip
    return out


def webhook_payload(booking: Mapping[str, Any], trigger: str) -> dict[str, Any]:
    """The ``payload`` of a booking trigger, rebuilt from an API v2 booking object."""
    start = parse_time(booking.get("start"))
    hosts = booking.get("hosts") or []
    host = hosts[0] if hosts and isinstance(hosts[0], Mapping) else {}
    attendees = [a for a in booking.get("attendees") or [] if isinstance(a, Mapping)]
    fields = booking.get("bookingFieldsResponses")
    form_phone = fields.get("attendeePhoneNumber") if isinstance(fields, Mapping) else None
    seat = booking.get(_SEAT_FIELD)
    booker = len(attendees) - 1 if seat else 0
    people = [
        _person(a, a.get("phoneNumber") or (form_phone if i == booker else None), start)
        for i, a in enumerate(attendees)
    ]
    people += [
        _person(
            {"email": g, "name": g, "timeZone": people[0]["timeZone"] if people else "UTC"},
            None,
            start,
        )
        for g in booking.get("guests") or []
        if isinstance(g, str)
    ]
    event_type = booking.get("eventType")
    event_type = event_type if isinstance(event_type, Mapping) else {}
    metadata = dict(booking.get("metadata") or {})
    location = booking.get("location")
    meeting_url = booking.get("meetingUrl")
    if isinstance(meeting_url, str) and meeting_url.startswith("http"):
        metadata.setdefault("videoCallUrl", meeting_url)
    payload: dict[str, Any] = {
        "type": event_type.get("slug"),
        "title": booking.get("title"),
        "description": booking.get("description"),
        "additionalNotes": booking.get("description"),
        "customInputs": {},
        "startTime": _webhook_time(booking.get("start")),
        "endTime": _webhook_time(booking.get("end")),
        "organizer": {
            "id": host.get("id"),
            "name": host.get("name"),
            "email": host.get("email"),
            "username": host.get("username"),
            "timeZone": host.get("timeZone") or "UTC",
            "language": {"locale": "en"},
            "timeFormat": "h:mma",
            "utcOffset": _utc_offset(host.get("timeZone"), start),
        },
        "responses": _responses(booking),
        "userFieldsResponses": {},
        "attendees": people,
        "location": location,
        "destinationCalendar": None,
        "hideCalendarNotes": False,
        "requiresConfirmation": trigger == "BOOKING_REQUESTED",
        "eventTypeId": booking.get("eventTypeId", event_type.get("id")),
        "seatsShowAttendees": False,
        "seatsPerTimeSlot": None,
        "schedulingType": None,
        "iCalUID": booking.get("icsUid"),
        "iCalSequence": 0,
        "uid": booking.get("uid"),
        "price": 0,
        "currency": "usd",
        "length": booking.get("duration"),
        "bookingId": booking.get("id"),
        "metadata": metadata,
        "status": _STATUS[trigger],
    }
    if seat:
        payload["attendeeSeatId"] = seat
        payload["seatsShowAttendees"] = True
        payload["seatsPerTimeSlot"] = max(len(attendees), 1)
    if trigger == "BOOKING_CANCELLED":
        payload["cancellationReason"] = booking.get("cancellationReason") or ""
        if booking.get("cancelledByEmail"):
            payload["cancelledBy"] = booking["cancelledByEmail"]
    if trigger == "BOOKING_REJECTED":
        payload["rejectionReason"] = booking.get("cancellationReason") or ""
    if booking.get("rescheduledFromUid"):
        payload["rescheduleUid"] = booking["rescheduledFromUid"]
        if booking.get("rescheduledByEmail"):
            payload["rescheduledBy"] = booking["rescheduledByEmail"]
        if booking.get("reschedulingReason"):
            payload["responses"]["rescheduleReason"] = {
                "label": "reason_for_reschedule",
                "value": booking["reschedulingReason"],
            }
    return payload


class CalComAdapter(ProviderAdapter):
    """Cal.com bookings → Cal.com webhook deliveries."""

    provider: ClassVar[str] = "cal_com"
    label: ClassVar[str] = "Cal.com"
    kinds: ClassVar[Mapping[str, str]] = KINDS
    id_prefix: ClassVar[str] = "calcom_"

    def __init__(self, client: CalComClient) -> None:
        self.client = client

    async def pages(self, token: str | None) -> AsyncGenerator[SourcePage, None]:
        skip = int(token) if token and token.isdigit() else 0
        while True:
            params = {"status": ALL_STATUSES, "sortCreated": "asc", "take": PAGE, "skip": skip}
            resp = await self.client.call("GET", "/v2/bookings", BOOKINGS, params=params)
            data = data_of(resp)
            found = [b for b in data if isinstance(b, Mapping)] if isinstance(data, list) else []
            items = [seat for b in found for seat in seats_of(b)]
            body = resp.body if isinstance(resp.body, Mapping) else {}
            pagination = body.get("pagination")
            pagination = pagination if isinstance(pagination, Mapping) else {}
            total = pagination.get("totalItems")
            more = pagination.get("hasNextPage")
            if more is None:
                more = len(items) >= PAGE
            next_token = str(skip + len(found)) if more and found else None
            yield SourcePage(
                items=items,
                token=str(skip),
                next_token=next_token,
                total=int(total) if isinstance(total, int) else None,
            )
            if next_token is None:
                return
            skip += len(found)

    async def fetch_one(self, object_id: str) -> Mapping[str, Any] | None:
        uid, _, seat = object_id.partition(SEAT_MARK)
        resp = await self.client.call("GET", f"/v2/bookings/{uid}", BOOKINGS, accept=(404,))
        data = data_of(resp) if resp.ok else None
        if not isinstance(data, Mapping):
            return None
        if not seat:
            return data
        return next((s for s in seats_of(data) if s.get(_SEAT_FIELD) == seat), None)

    def object_id(self, obj: Mapping[str, Any]) -> str:
        seat = obj.get(_SEAT_FIELD)
        uid = str(obj.get("uid") or "")
        return f"{uid}{SEAT_MARK}{seat}" if seat else uid

    def start(self, obj: Mapping[str, Any]) -> datetime | None:
        return parse_time(obj.get("start"))

    def classify(self, obj: Mapping[str, Any]) -> tuple[str | None, str]:
        if not obj.get("uid"):
            return None, "malformed: the booking has no uid"
        return trigger_for(obj)

    def body(self, obj: Mapping[str, Any], kind: str, item_id: str) -> bytes:
        created = obj.get("updatedAt") if kind == "BOOKING_CANCELLED" else obj.get("createdAt")
        parsed = parse_time(created)
        created_at = (
            parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"
            if parsed
            else None
        )
        envelope = {
            "triggerEvent": kind,
            "createdAt": created_at,
            "payload": webhook_payload(obj, kind),
        }
        return compact_json(envelope)

    def headers(self, secret: str | None, body: bytes, item: ReplayItem) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: cal_signature(secret, body),
            "X-Cal-Webhook-Version": WEBHOOK_VERSION,
            "X-Calflow-Replay-Id": item.id,
        }
