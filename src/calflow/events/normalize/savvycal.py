"""SavvyCal webhook deliveries → :class:`BookingEvent`.

Body ``{"type", "id": "payload_…", "version", "occurred_at", "payload": Event}``. The
booking is the Event (``event_…``; the id stays the same across reschedules). An
approved request sends ``event.approved`` and then ``event.created``: two kinds, two
events. ``event.changed`` carries the Event under ``payload.event``
(``EventChangedWebhook``; a flat Event in ``payload`` is read as well).
``event.attendee.added / canceled / rescheduled`` are per-attendee changes of a group
event (``attendee_added``, ``attendee_cancelled``, ``attendee_rescheduled``): the event's
``seat`` is that attendee (``payload.attendee`` when given, else the only attendee who
is not the organizer), so they start and end only that attendee's runs, as Cal.com
seats do. SavvyCal documents no payload for these three; the shape read is inferred
from ``EventChangedWebhook``: ``payload: {event, attendee}`` and, for a reschedule to
another event, ``previous_event`` (the event the attendee left: ``previous_uid``), or a
flat Event in ``payload`` (docs/DESIGN.md, "SavvyCal per-attendee deliveries").
``poll.response.*``, ``workflow.action.triggered`` and types calflow does not
know keep their names (kind ``other``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from calflow.errors import FieldError, ValidationError
from calflow.events.model import BookingEvent, EventType, Person, Source
from calflow.events.normalize.common import (
    as_map,
    as_maps,
    e164,
    http_url,
    ident,
    index_of,
    parse_time,
    person,
    pick_reason,
    require_object,
    same_email,
    seat_key,
    text,
    with_phone,
)

PROVIDER = "savvycal"
TYPE_KINDS: Mapping[str, str] = {
    "event.created": "created",
    "event.requested": "requested",
    "event.approved": "approved",
    "event.declined": "declined",
    "event.rescheduled": "rescheduled",
    "event.changed": "changed",
    "event.canceled": "cancelled",
    "event.checkout.pending": "checkout_pending",
    "event.checkout.expired": "checkout_expired",
    "event.checkout.completed": "paid",
    "event.attendee.added": "attendee_added",
    "event.attendee.canceled": "attendee_cancelled",
    "event.attendee.rescheduled": "attendee_rescheduled",
}
KIND_TYPES: Mapping[str, str] = {kind: type_ for type_, kind in TYPE_KINDS.items()}
"""The webhook type SavvyCal sends for each kind."""


def _person(raw: Mapping[str, Any]) -> Person:
    phone = raw.get("phone_number")
    if e164(phone) is None:  # the booking form's phone field, when the attendee has none
        phone = next(
            (
                f.get("value")
                for f in as_maps(raw.get("fields"))
                if f.get("type") == "phone" and e164(f.get("value"))
            ),
            phone,
        )
    return person(
        name=raw.get("display_name"),
        email=raw.get("email"),
        time_zone=raw.get("time_zone"),
        phone=phone,
        first_name=raw.get("first_name"),
        last_name=raw.get("last_name"),
    )


def event_parts(event: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The :class:`BookingEvent` fields an Event object gives (webhook payload or API)."""
    raw_attendees = as_maps(event.get("attendees"))
    organizer_raw = as_map(event.get("organizer")) or next(
        (a for a in raw_attendees if a.get("is_organizer") is True), as_map(None)
    )
    attendees = tuple(_person(a) for a in raw_attendees if a.get("is_organizer") is not True)
    link = as_map(event.get("link"))
    event_type = EventType(
        id=ident(link.get("id")), slug=text(link.get("slug")), title=text(link.get("name"))
    )
    reason_cancel = text(event.get("cancel_reason"))
    location = text(event.get("location"))
    return {
        "start": parse_time(event.get("start_at")),
        "end": parse_time(event.get("end_at")),
        "status": text(event.get("state")),
        "title": text(event.get("summary")),
        "event_type": event_type if (event_type.id or event_type.slug) else None,
        "organizer": _person(organizer_raw) if organizer_raw else None,
        "attendees": attendees,
        "location": location,
        "meeting_url": http_url(as_map(event.get("conferencing")).get("join_url"))
        or http_url(location),
        "reason": pick_reason(
            kind, reason_cancel, reason_cancel, text(event.get("reschedule_reason"))
        ),
        "metadata": dict(as_map(event.get("metadata"))),
    }


def scheduler_index(event: Mapping[str, Any], attendees: tuple[Person, ...]) -> int | None:
    """Index in ``attendees`` (organizers left out) of the person who booked."""
    raw = [a for a in as_maps(event.get("attendees")) if a.get("is_organizer") is not True]
    found = next((i for i, a in enumerate(raw) if a.get("is_scheduler") is True), None)
    if found is not None:  # older payloads flagged the scheduler; the documented one names them
        return found
    return index_of(attendees, as_map(event.get("scheduler")).get("email"))


def give_phone(
    attendees: tuple[Person, ...], event: Mapping[str, Any], email: Any, phone: str | None
) -> tuple[Person, ...]:
    """The booker (``email``, else the scheduler) gets ``phone`` when they have none."""
    index = index_of(attendees, email, default=None)
    if index is None:
        index = scheduler_index(event, attendees)
    return attendees if index is None else with_phone(attendees, index, phone)


def normalize_savvycal(
    body: Any,
    *,
    source: Source,
    integration_id: str | None,
    received_at: datetime,
) -> BookingEvent:
    """One SavvyCal delivery body → one event (``ValidationError`` if it is not one)."""
    envelope = require_object(body, "SavvyCal")
    type_ = text(envelope.get("type"))
    if type_ is None:
        raise ValidationError(
            "not a SavvyCal webhook delivery: it has no type",
            [FieldError("type", "a non-empty string is required", "required")],
        )
    payload = envelope.get("payload")
    if not isinstance(payload, Mapping):
        raise ValidationError(
            "SavvyCal webhook delivery has no payload object",
            [FieldError("payload", "expected an object", "type")],
        )
    nested = as_map(payload.get("event"))
    if nested or not type_.startswith("event."):
        event: Mapping[str, Any] = nested  # event.changed; polls and workflows may carry one
    else:
        event = payload
    booking_uid = text(event.get("id")) or ""
    kind = TYPE_KINDS.get(type_, "other")
    if not booking_uid:
        kind = "other"
    parts = event_parts(event, kind) if event else {}
    if kind in ATTENDEE_KINDS and parts:
        parts.update(_attendee_parts(payload, parts["attendees"]))
        left = text(as_map(payload.get("previous_event")).get("id"))
        if kind == "attendee_rescheduled" and left and left != booking_uid:
            parts["previous_uid"] = left
    return BookingEvent(
        provider=PROVIDER,
        kind=kind,
        original_type=type_,
        booking_uid=booking_uid,
        source=source,
        occurred_at=parse_time(envelope.get("occurred_at")) or received_at,
        received_at=received_at,
        integration_id=integration_id,
        raw=dict(envelope),
        **parts,
    )


ATTENDEE_KINDS = ("attendee_added", "attendee_cancelled", "attendee_rescheduled")


def _attendee_parts(payload: Mapping[str, Any], attendees: tuple[Person, ...]) -> dict[str, Any]:
    """``seat``, ``party`` and ``attendees`` of a per-attendee delivery."""
    party = tuple(k for k in (seat_key(a.email) for a in attendees) if k)
    given = as_map(payload.get("attendee"))
    if given:
        holder = _person(given)
        known = next((a for a in attendees if same_email(a.email, holder.email)), None)
        chosen: Person | None = known or holder
    else:
        chosen = attendees[0] if len(attendees) == 1 else None
    seat = seat_key(chosen.email) if chosen else None
    if chosen is None or seat is None:
        return {"party": party}
    return {"seat": seat, "party": party, "attendees": (chosen,)}
