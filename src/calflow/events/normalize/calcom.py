"""Cal.com webhook deliveries → :class:`BookingEvent`.

Three body shapes (see PROVIDERS.md):

* booking triggers: ``{"triggerEvent", "createdAt", "payload": {…CalendarEvent…}}``;
* ``MEETING_STARTED`` / ``MEETING_ENDED``: the newer nested ``{"triggerEvent",
  "createdAt", "payload": <booking row>}`` or the older flat ``{"triggerEvent", …booking
  row}`` (no ``payload``; the row's ``createdAt`` is when the *booking* was made, so a flat
  one occurs when received); the host is under ``user`` in both (no ``organizer``);
* ``BOOKING_NO_SHOW_UPDATED``: ``payload {message, attendees [{email, noShow}],
  bookingUid, bookingId}``, listing only the attendees whose flag changed.

Any other trigger (forms, OOO, recordings, future ones) becomes kind ``other`` with its
name kept, never an error.

Seated event types (``seatsPerTimeSlot``; ``handleSeats/``): every seat is a booking
change of its own. A new seat's ``BOOKING_CREATED`` (the booking's ``uid``, a new
``attendeeSeatId``, ``attendees`` = everyone so far, or only the new seat in newer
senders) becomes a ``created`` event for the seat holder (the booker of the delivery);
a ``BOOKING_CANCELLED`` that lists one attendee of a seated booking is that seat
leaving (``cancelAttendeeSeat.ts``: ``attendee_cancelled``); one that lists several is
the whole booking cancelled. A seated reschedule is the booker's seat moving (the
inbox decides, from the seats it knows, whether everyone moved with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from calflow.errors import FieldError, ValidationError
from calflow.events.model import BookingEvent, EventType, Person, Source
from calflow.events.normalize.common import (
    as_map,
    as_maps,
    e164,
    first,
    http_url,
    ident,
    index_of,
    merge_people,
    parse_time,
    person,
    pick_reason,
    require_object,
    seat_key,
    text,
    with_phone,
)

PROVIDER = "cal_com"
TRIGGER_KINDS: Mapping[str, str] = {
    "BOOKING_CREATED": "created",
    "BOOKING_RESCHEDULED": "rescheduled",
    "BOOKING_CANCELLED": "cancelled",
    "BOOKING_REQUESTED": "requested",
    "BOOKING_REJECTED": "declined",
    "BOOKING_PAYMENT_INITIATED": "payment_initiated",
    "BOOKING_PAID": "paid",
    "BOOKING_NO_SHOW_UPDATED": "no_show_updated",
    "MEETING_STARTED": "meeting_started",
    "MEETING_ENDED": "meeting_ended",
}
KIND_TRIGGERS: Mapping[str, str] = {kind: trigger for trigger, kind in TRIGGER_KINDS.items()}
"""The trigger Cal.com sends for each kind (an action's event names the webhook it matches)."""


def response_value(responses: Mapping[str, Any], key: str) -> Any:
    """A booking-field response: ``{label, value}`` in webhooks, the bare value in API v2."""
    item = responses.get(key)
    return item.get("value") if isinstance(item, Mapping) else item


def attendee(raw: Mapping[str, Any]) -> Person:
    return person(
        name=raw.get("name"),
        email=raw.get("email"),
        time_zone=raw.get("timeZone"),
        lang=raw.get("language") or raw.get("locale"),
        phone=raw.get("phoneNumber"),
        first_name=raw.get("firstName"),
        last_name=raw.get("lastName"),
        no_show=raw.get("noShow") if "noShow" in raw else raw.get("absent"),
    )


def organizer(raw: Any) -> Person | None:
    data = as_map(raw)
    if not data:
        return None
    return person(
        name=data.get("name"),
        email=data.get("email"),
        time_zone=data.get("timeZone"),
        lang=data.get("language") or data.get("locale"),
    )


def booker_details(
    attendees: tuple[Person, ...], responses: Mapping[str, Any], *phones: Any
) -> tuple[Person, ...]:
    """Attendees completed from the booking form: the booker's phone (the first phone of
    ``phones`` that parses) and a split name (``{firstName, lastName}``)."""
    booker = index_of(attendees, response_value(responses, "email"))
    if booker is None:
        return attendees
    phone = next((p for p in (e164(v) for v in phones) if p), None)
    people = with_phone(attendees, booker, phone)
    name = response_value(responses, "name")
    if isinstance(name, Mapping):  # a split name field: more exact than splitting "name"
        given, family = text(name.get("firstName")), text(name.get("lastName"))
        if given or family:
            updated = list(people)
            updated[booker] = replace(people[booker], first_name=given, last_name=family)
            people = tuple(updated)
    return people


def _event_type(data: Mapping[str, Any], flat: bool) -> EventType | None:
    nested = as_map(data.get("eventType"))
    et = EventType(
        id=ident(nested.get("id")) or ident(data.get("eventTypeId")),
        slug=text(nested.get("slug")) or (None if flat else text(data.get("type"))),
        title=text(nested.get("title")) or text(data.get("eventTitle")),
    )
    return et if (et.id or et.slug or et.title) else None


def normalize_calcom(
    body: Any,
    *,
    source: Source,
    integration_id: str | None,
    received_at: datetime,
) -> BookingEvent:
    """One Cal.com delivery body → one event (``ValidationError`` if it is not one)."""
    envelope = require_object(body, "Cal.com")
    trigger = text(envelope.get("triggerEvent"))
    if trigger is None:
        raise ValidationError(
            "not a Cal.com webhook delivery: it has no triggerEvent",
            [FieldError("triggerEvent", "a non-empty string is required", "required")],
        )
    flat = "payload" not in envelope
    if flat:
        data = envelope
        occurred = None
    else:
        if not isinstance(envelope["payload"], Mapping):
            raise ValidationError(
                "Cal.com webhook delivery has a payload that is not an object",
                [FieldError("payload", "expected an object", "type")],
            )
        data = envelope["payload"]
        occurred = parse_time(envelope.get("createdAt"))
    booking_uid = text(data.get("uid")) or text(data.get("bookingUid")) or ""
    kind = TRIGGER_KINDS.get(trigger, "other")
    if not booking_uid:
        kind = "other"  # a booking trigger that names no booking: kept, not guessed at

    responses = as_map(data.get("responses"))
    attendees = merge_people(attendee(a) for a in as_maps(data.get("attendees")))
    attendees = booker_details(
        attendees,
        responses,
        response_value(responses, "attendeePhoneNumber"),
        data.get("smsReminderNumber"),
        response_value(responses, "smsReminderNumber"),
    )
    kind, seat, party, attendees = _seat(kind, data, responses, attendees)
    metadata = as_map(data.get("metadata"))
    location = text(data.get("location"))
    status = text(data.get("status"))
    reschedule_reason = first(
        text(response_value(responses, "rescheduleReason")),
        text(data.get("rescheduleReason")),
        text(data.get("reschedulingReason")),
    )
    return BookingEvent(
        provider=PROVIDER,
        kind=kind,
        original_type=trigger,
        booking_uid=booking_uid,
        previous_uid=first(
            text(data.get("rescheduleUid")),
            text(data.get("rescheduledFromUid")),
            text(data.get("fromReschedule")),
        ),
        source=source,
        occurred_at=occurred or received_at,
        received_at=received_at,
        start=parse_time(data.get("startTime")),
        end=parse_time(data.get("endTime")),
        status=status.lower() if status else None,
        title=text(data.get("title")),
        event_type=_event_type(data, flat),
        organizer=organizer(data.get("organizer") or data.get("user")),
        attendees=attendees,
        location=location,
        meeting_url=http_url(metadata.get("videoCallUrl")) or http_url(location),
        reason=pick_reason(
            kind,
            text(data.get("cancellationReason")),
            text(data.get("rejectionReason")),
            reschedule_reason,
        ),
        integration_id=integration_id,
        seat=seat,
        party=party,
        metadata=dict(metadata),
        raw=dict(envelope),
    )


SEATED_KINDS = ("created", "rescheduled", "cancelled")


def seated(data: Mapping[str, Any]) -> bool:
    """Whether a booking payload is of a seated event type."""
    seats = data.get("seatsPerTimeSlot")
    return bool(text(data.get("attendeeSeatId"))) or (
        isinstance(seats, int) and not isinstance(seats, bool) and seats > 0
    )


def _seat(
    kind: str,
    data: Mapping[str, Any],
    responses: Mapping[str, Any],
    attendees: tuple[Person, ...],
) -> tuple[str, str | None, tuple[str, ...], tuple[Person, ...]]:
    """(kind, seat, everyone on the booking, attendees) of a seated delivery: the change
    is the seat holder's (the booker; for a cancel, the one attendee listed)."""
    if kind not in SEATED_KINDS or not attendees or not seated(data):
        return kind, None, (), attendees
    party = tuple(k for k in (seat_key(a.email) for a in attendees) if k)
    if kind == "cancelled":
        if len(attendees) != 1 or not seat_key(attendees[0].email):
            return kind, None, party, attendees  # the whole booking
        return "attendee_cancelled", seat_key(attendees[0].email), party, attendees
    index = index_of(attendees, response_value(responses, "email"), default=len(attendees) - 1)
    holder = attendees[index if index is not None else -1]
    seat = seat_key(holder.email)
    if seat is None:
        return kind, None, party, attendees
    return kind, seat, party, (holder,)
