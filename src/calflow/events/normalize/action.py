"""calflow's own booking actions → :class:`BookingEvent` (source ``action``).

The event an action produces must carry the same dedupe key as the webhook the provider
sends for the same change, so both collapse into one event. That is why the kind follows
the provider's webhook, not the action's name:

* Cal.com: a booking made pending (event type needing confirmation, or a reschedule of
  one by a non-host) sends ``BOOKING_REQUESTED`` → ``requested``; confirming sends
  ``BOOKING_CREATED`` (there is no BOOKING_CONFIRMED) → ``created``; a reschedule is
  keyed on the *new* booking's uid and start; a no-show update lists only the attendees
  whose flags the request named and that are on the booking (what Cal.com sends).
* SavvyCal: booking on a link needing approval sends ``event.requested`` → ``requested``.

The attendee phone the action was given (in its input) fills in when the provider's
object does not echo it: API bookings must reach workflows with the phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from calflow.errors import ConfigError, FieldError, ValidationError
from calflow.events.model import BookingEvent, EventType, Person
from calflow.events.normalize import calcom, savvycal
from calflow.events.normalize.common import (
    as_map,
    as_maps,
    e164,
    first,
    http_url,
    ident,
    index_of,
    known_kind,
    merge_people,
    parse_time,
    person,
    pick_reason,
    received,
    seat_key,
    text,
    with_phone,
)

if TYPE_CHECKING:
    from calflow.flowapp.context import BookingChange


def _booking(change: BookingChange, id_field: str) -> Mapping[str, Any]:
    booking = change.booking
    if not isinstance(booking, Mapping) or text(booking.get(id_field)) is None:
        raise ValidationError(
            f"a {change.provider} booking change needs the booking object with its {id_field}",
            [FieldError(f"booking.{id_field}", "a non-empty string is required", "required")],
        )
    return booking


# Cal.com ---------------------------------------------------------------------------


def calcom_kind(action_kind: str, status: str | None) -> str:
    """The kind of the webhook Cal.com sends for the change an action made."""
    if action_kind in ("created", "requested", "rescheduled"):
        if status == "pending":
            return "requested"
        if status == "accepted":
            return "created" if action_kind != "rescheduled" else "rescheduled"
        return action_kind
    if action_kind == "approved":  # ConfirmBooking: Cal.com sends BOOKING_CREATED
        return "created"
    return known_kind(action_kind)


def _calcom_attendees(
    booking: Mapping[str, Any], data: Mapping[str, Any], region: Any
) -> tuple[Person, ...]:
    people = [calcom.attendee(a) for a in as_maps(booking.get("attendees"))]
    guests = booking.get("guests")
    if isinstance(guests, list):
        people += [person(email=g) for g in guests if text(g)]
    attendees = merge_people(people)
    responses = as_map(booking.get("bookingFieldsResponses"))
    attendees = calcom.booker_details(
        attendees, responses, calcom.response_value(responses, "attendeePhoneNumber")
    )
    given = as_map(data.get("attendee"))  # BookMeeting's attendee (phone already E.164)
    if given:
        index = index_of(attendees, given.get("email"))
        if index is not None:
            attendees = with_phone(attendees, index, e164(given.get("phoneNumber"), region))
    for guest in as_maps(data.get("guests")):  # AddGuests
        index = index_of(attendees, guest.get("email"), default=None)
        if index is not None:
            attendees = with_phone(attendees, index, e164(guest.get("phoneNumber"), region))
    return attendees


def _no_show(attendees: tuple[Person, ...], data: Mapping[str, Any]) -> tuple[Person, ...]:
    """The attendees Cal.com lists in BOOKING_NO_SHOW_UPDATED: each requested entry whose
    email is on the booking (exact match), flagged as requested."""
    changed: list[Person] = []
    for item in as_maps(data.get("attendees")):
        for attendee in attendees:
            if attendee.email is not None and attendee.email == item.get("email"):
                changed.append(replace(attendee, no_show=bool(item.get("absent"))))
    return tuple(changed)


def _from_calcom(change: BookingChange, received_at: datetime) -> BookingEvent:
    booking = _booking(change, "uid")
    data = change.input
    status = text(booking.get("status"))
    status = status.lower() if status else None
    kind = calcom_kind(change.kind, status)
    attendees = _calcom_attendees(booking, data, data.get("defaultPhoneRegion"))
    if kind == "no_show_updated":
        attendees = _no_show(attendees, data)
    kind, seat, party, attendees = _calcom_seat(kind, booking, data, attendees)
    hosts = as_maps(booking.get("hosts"))
    nested = as_map(booking.get("eventType"))
    event_type = EventType(
        id=ident(booking.get("eventTypeId")) or ident(nested.get("id")),
        slug=text(nested.get("slug")),
    )
    metadata = as_map(booking.get("metadata"))
    location = text(booking.get("location"))
    previous = None
    if change.kind == "rescheduled":
        previous = first(text(change.previous_uid), text(booking.get("rescheduledFromUid")))
    return BookingEvent(
        provider=calcom.PROVIDER,
        kind=kind,
        original_type=calcom.KIND_TRIGGERS.get(kind, change.kind),
        booking_uid=str(booking["uid"]),
        previous_uid=previous,
        source="action",
        occurred_at=parse_time(booking.get("updatedAt"))
        or parse_time(booking.get("createdAt"))
        or received_at,
        received_at=received_at,
        start=parse_time(booking.get("start")),
        end=parse_time(booking.get("end")),
        status=status,
        title=text(booking.get("title")),
        event_type=event_type if (event_type.id or event_type.slug) else None,
        organizer=calcom.organizer(hosts[0]) if hosts else None,
        attendees=attendees,
        location=location,
        meeting_url=http_url(booking.get("meetingUrl"))
        or http_url(location)
        or http_url(metadata.get("videoCallUrl")),
        reason=pick_reason(
            kind,
            first(text(booking.get("cancellationReason")), text(data.get("cancellationReason"))),
            first(text(booking.get("rejectionReason")), text(data.get("reason"))),
            first(text(booking.get("reschedulingReason")), text(data.get("reschedulingReason"))),
        ),
        integration_id=change.integration_id,
        seat=seat,
        party=party,
        metadata=dict(metadata),
        raw=dict(booking),
    )


def _calcom_seat(
    kind: str, booking: Mapping[str, Any], data: Mapping[str, Any], attendees: tuple[Person, ...]
) -> tuple[str, str | None, tuple[str, ...], tuple[Person, ...]]:
    """The seat an action's change on a seated booking concerns (the webhook's seat): the
    booker of a new or moved seat, the holder of a cancelled ``seatUid``."""
    raw = as_maps(booking.get("attendees"))
    seat_uid = text(data.get("seatUid")) or text(booking.get("seatUid"))
    if not seat_uid and not any(text(a.get("seatUid")) for a in raw):  # not seated
        return kind, None, (), attendees
    party = tuple(k for k in (seat_key(a.email) for a in attendees) if k)
    holder = next((a for a in raw if seat_uid and a.get("seatUid") == seat_uid), None)
    given = text(as_map(data.get("attendee")).get("email"))
    email = text(holder.get("email")) if holder else given
    if kind == "cancelled":
        if not text(data.get("seatUid")) or email is None:
            return kind, None, party, attendees  # the whole booking
        kind = "attendee_cancelled"
    index = index_of(attendees, email, default=None)
    seat = seat_key(email)
    if seat is None:
        return kind, None, party, attendees
    chosen = attendees[index] if index is not None else person(email=email)
    return kind, seat, party, (chosen,)


# SavvyCal --------------------------------------------------------------------------


def savvycal_kind(action_kind: str, state: str | None) -> str:
    """The kind of the webhook SavvyCal sends for the change an action made."""
    if action_kind in ("created", "requested"):
        if state == "awaiting_approval":
            return "requested"
        if state == "confirmed":
            return "created"
    return known_kind(action_kind)


_SAVVYCAL_WHEN = {
    "cancelled": "canceled_at",
    "declined": "canceled_at",
    "rescheduled": "rescheduled_at",
    "created": "created_at",
    "requested": "created_at",
}


def _from_savvycal(change: BookingChange, received_at: datetime) -> BookingEvent:
    event = _booking(change, "id")
    data = change.input
    kind = savvycal_kind(change.kind, text(event.get("state")))
    parts = savvycal.event_parts(event, kind)
    phone = e164(data.get("phone_number"), data.get("default_phone_region"))
    parts["attendees"] = savvycal.give_phone(parts["attendees"], event, data.get("email"), phone)
    when = _SAVVYCAL_WHEN.get(kind)
    return BookingEvent(
        provider=savvycal.PROVIDER,
        kind=kind,
        original_type=savvycal.KIND_TYPES.get(kind, change.kind),
        booking_uid=str(event["id"]),
        source="action",
        occurred_at=(parse_time(event.get(when)) if when else None) or received_at,
        received_at=received_at,
        integration_id=change.integration_id,
        raw=dict(event),
        **parts,
    )


def from_action(change: BookingChange, *, received_at: datetime | None = None) -> BookingEvent:
    """The event for a booking change one of calflow's actions made (source ``action``)."""
    at = received(received_at)
    if change.provider == calcom.PROVIDER:
        return _from_calcom(change, at)
    if change.provider == savvycal.PROVIDER:
        return _from_savvycal(change, at)
    raise ConfigError(f"no normalizer for provider {change.provider!r} (known: cal_com, savvycal)")
