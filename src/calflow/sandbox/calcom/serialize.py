"""Shapes Cal.com emits: API v2 booking objects, raw booking rows and webhook payloads.

Booking outputs follow ``apps/api/v2/.../bookings/2024-08-13/services/output.service.ts``
(``getOutputBooking``; ``getOutputSeatedBooking`` for event types with seats). Webhook
payloads follow ``webhooks/lib/factory/versioned/v2021-10-20/BookingPayloadBuilder.ts``:
the CalendarEvent spread, ``utcOffset`` on organizer and attendees, the event type's
info, ``smsReminderNumber`` from the booking row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from calflow.sandbox.calcom.envelope import iso_ms, iso_s
from calflow.sandbox.calcom.state import Attendee, Booking, CalcomState, EventType

_VIDEO_BASE = "https://app.cal.com/video/"
#: Default labels of Cal.com's system booking fields (``getBookingFieldsWithSystemFields``).
_LABELS = {"smsReminderNumber": "number_text_notifications"}
TimeFormat = Callable[[datetime], str]


def display_location(booking: Booking) -> str:
    """The location as API v2 outputs it (Cal Video resolves to its room URL)."""
    if booking.location == "integrations:daily":
        return _VIDEO_BASE + booking.uid
    return booking.location


def _head(state: CalcomState, b: Booking) -> dict[str, Any]:
    """The fields every API v2 booking output starts with."""
    return {
        "id": b.id,
        "uid": b.uid,
        "title": b.title,
        "description": b.description,
        "hosts": [state.users[h].host_json() for h in b.host_ids],
        "status": b.status,
        "cancellationReason": b.cancellation_reason or "",
    }


def booking_output(state: CalcomState, b: Booking, show_attendees: bool = True) -> dict[str, Any]:
    """``BookingOutput_2024_08_13``, or ``GetSeatedBookingOutput_2024_08_13`` when seated."""
    et = state.event_types[b.event_type_id]
    if et.seats_per_slot:
        return seated_booking_output(state, b, show_attendees)
    location = display_location(b)
    out: dict[str, Any] = {
        **_head(state, b),
        "cancelledByEmail": b.cancelled_by_email or "",
        "reschedulingReason": b.rescheduling_reason,
        "rescheduledByEmail": b.rescheduled_by_email,
        "rescheduledFromUid": b.rescheduled_from_uid,
        "rescheduledToUid": b.rescheduled_to_uid,
        "start": iso_ms(b.start),
        "end": iso_ms(b.end),
        "duration": b.duration,
        "eventTypeId": et.id,
        "eventType": {"id": et.id, "slug": et.slug},
        "meetingUrl": location,
        "location": location,
        "absentHost": b.absent_host,
        "createdAt": iso_ms(b.created_at),
        "updatedAt": iso_ms(b.updated_at),
        "metadata": dict(b.metadata),
        "icsUid": b.ics_uid,
        "attendees": [attendee_output(a) for a in b.attendees],
        "bookingFieldsResponses": dict(b.booking_fields_responses),
    }
    if b.guests:
        out["guests"] = list(b.guests)
    if not b.rescheduled_from_uid:
        del out["rescheduledFromUid"]
    if not b.rescheduled_to_uid:
        del out["rescheduledToUid"]
    if b.rescheduling_reason is None:
        del out["reschedulingReason"]
    return out


def seated_booking_output(state: CalcomState, b: Booking, show_attendees: bool) -> dict[str, Any]:
    """``GetSeatedBookingOutput_2024_08_13`` (``getOutputSeatedBooking``).

    No booking-level ``bookingFieldsResponses``, ``guests`` or ``metadata``: each attendee
    carries its ``seatUid`` and its seat's responses (without ``email``). Attendees are
    shown to the event type's owner, or to anyone when ``seatsShowAttendees`` is on.
    """
    et = state.event_types[b.event_type_id]
    location = display_location(b)
    out: dict[str, Any] = {
        **_head(state, b),
        "rescheduledFromUid": b.rescheduled_from_uid,
        "start": iso_ms(b.start),
        "end": iso_ms(b.end),
        "duration": b.duration,
        "eventTypeId": et.id,
        "eventType": {"id": et.id, "slug": et.slug},
        "attendees": [seated_attendee_output(a) for a in b.attendees] if show_attendees else [],
        "location": location,
        "meetingUrl": location,
        "absentHost": b.absent_host,
        "createdAt": iso_ms(b.created_at),
        "updatedAt": iso_ms(b.updated_at),
        "icsUid": b.ics_uid,
        "rescheduledToUid": b.rescheduled_to_uid,
        "rescheduledByEmail": b.rescheduled_by_email,
    }
    return {k: v for k, v in out.items() if v is not None}


def seated_attendee_output(a: Attendee) -> dict[str, Any]:
    """``SeatedAttendee``: the attendee with its ``seatUid`` and seat responses."""
    responses = {k: v for k, v in a.seat_responses.items() if k != "email"}
    return {
        "name": a.name,
        "email": a.email,
        "timeZone": a.time_zone,
        "language": a.language,
        "absent": a.absent,
        "seatUid": a.seat_uid,
        "bookingFieldsResponses": responses,
        "metadata": {},
    }


def attendee_output(a: Attendee) -> dict[str, Any]:
    """``BookingAttendee``."""
    out: dict[str, Any] = {
        "name": a.name,
        "email": a.email,
        "timeZone": a.time_zone,
        "language": a.language,
        "absent": a.absent,
    }
    if a.phone_number:
        out["phoneNumber"] = a.phone_number
    return out


def booking_row(state: CalcomState, b: Booking) -> dict[str, Any]:
    """The Prisma booking row with relations (legacy API shape, MEETING_* webhook body)."""
    et = state.event_types[b.event_type_id]
    organizer = state.users[b.user_id]
    return {
        "id": b.id,
        "uid": b.uid,
        "userId": b.user_id,
        "eventTypeId": et.id,
        "title": b.title,
        "description": b.description,
        "customInputs": {},
        "responses": webhook_responses(b),
        "startTime": iso_ms(b.start),
        "endTime": iso_ms(b.end),
        "location": b.location,
        "createdAt": iso_ms(b.created_at),
        "updatedAt": iso_ms(b.updated_at),
        "status": b.status.upper(),
        "paid": False,
        "cancellationReason": b.cancellation_reason,
        "rejectionReason": b.rejection_reason,
        "rescheduled": b.rescheduled_to_uid is not None,
        "fromReschedule": b.rescheduled_from_uid,
        "recurringEventId": None,
        "smsReminderNumber": b.sms_reminder_number,
        "metadata": dict(b.metadata),
        "isRecorded": False,
        "iCalUID": b.ics_uid,
        "iCalSequence": 0,
        "noShowHost": b.absent_host,
        "attendees": [
            {
                "id": a.id,
                "email": a.email,
                "name": a.name,
                "timeZone": a.time_zone,
                "phoneNumber": a.phone_number,
                "locale": a.language,
                "bookingId": b.id,
                "noShow": a.absent,
            }
            for a in b.attendees
        ],
        "user": {
            "id": organizer.id,
            "name": organizer.name,
            "email": organizer.email,
            "username": organizer.username,
            "timeZone": organizer.time_zone,
            "locale": organizer.locale,
        },
        "eventType": {
            "id": et.id,
            "slug": et.slug,
            "title": et.title,
            "length": et.length,
            "teamId": et.team_id,
            "requiresConfirmation": et.requires_confirmation,
        },
    }


def webhook_responses(b: Booking, booker: Attendee | None = None) -> dict[str, Any]:
    """The ``responses`` object of booking webhooks (label + value per booking field).

    ``booker`` (default: the first attendee) is whose answers they are; a seat holder's
    answers are its seat's responses, as Cal.com keeps them per seat.
    """
    first = booker or (b.attendees[0] if b.attendees else None)
    answers = first.seat_responses if first and first.seat_uid else b.booking_fields_responses
    responses: dict[str, Any] = {
        "name": {"label": "your_name", "value": first.name if first else ""},
        "email": {"label": "email_address", "value": first.email if first else ""},
        "location": {
            "label": "location",
            "value": {"optionValue": "", "value": b.location},
        },
        "notes": {"label": "additional_notes"},
        "guests": {"label": "additional_guests", "value": list(b.guests)},
        "rescheduleReason": {"label": "reason_for_reschedule"},
    }
    if first and first.phone_number:
        responses["attendeePhoneNumber"] = {"label": "phone_number", "value": first.phone_number}
    if b.rescheduling_reason:
        responses["rescheduleReason"]["value"] = b.rescheduling_reason
    for key, value in answers.items():
        if key not in responses and key not in ("displayEmail", "displayGuests"):
            responses[key] = {"label": _LABELS.get(key, key), "value": value}
    return responses


def _utc_offset(zone: str, at: datetime) -> int:
    offset = at.astimezone(ZoneInfo(zone)).utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def _person(a: Attendee, at: datetime, *, names: bool) -> dict[str, Any]:
    """A CalendarEvent attendee. The booking flow's invitee has ``firstName``/``lastName``;
    ``handleCancelBooking`` rebuilds attendees from the rows without them."""
    first, _, last = a.name.partition(" ")
    out: dict[str, Any] = {"email": a.email, "name": a.name}
    if names:
        out.update(firstName=first, lastName=last)
    out.update(timeZone=a.time_zone, language={"locale": a.language})
    if a.phone_number:
        out["phoneNumber"] = a.phone_number
    out["utcOffset"] = _utc_offset(a.time_zone, at)
    return out


def event_payload(
    state: CalcomState,
    b: Booking,
    status: str,
    *,
    attendees: list[Attendee] | None = None,
    booker: Attendee | None = None,
    times: TimeFormat = iso_s,
    cancelled: bool = False,
) -> dict[str, Any]:
    """The ``payload`` of booking triggers, built like Cal.com's CalendarEvent + extras.

    ``attendees`` overrides who is listed (seats list other sets than the booking's);
    ``booker`` is whose responses are sent and, on seated types, whose seat is
    ``attendeeSeatId``; ``times`` formats start/end (``…Z`` from the booking flow,
    ``….000Z`` from confirmation, ``+00:00`` from cancellation); ``cancelled`` builds
    attendees as ``handleCancelBooking`` does.
    """
    et: EventType = state.event_types[b.event_type_id]
    organizer = state.users[b.user_id]
    zone = b.attendees[0].time_zone if b.attendees else "UTC"
    guests = [Attendee(name=g, email=g, time_zone=zone) for g in b.guests]
    people = [*b.attendees, *guests] if attendees is None else attendees
    metadata = dict(b.metadata)
    if b.location == "integrations:daily":
        metadata.setdefault("videoCallUrl", display_location(b))
    payload: dict[str, Any] = {
        "type": et.slug,
        "title": b.title,
        "description": b.description,
        "additionalNotes": b.description,
        "customInputs": {},
        "startTime": times(b.start),
        "endTime": times(b.end),
        "organizer": {
            "id": organizer.id,
            "name": organizer.name,
            "email": organizer.email,
            "username": organizer.username,
            "timeZone": organizer.time_zone,
            "language": {"locale": organizer.locale},
            "timeFormat": "h:mma",
            "utcOffset": _utc_offset(organizer.time_zone, b.start),
        },
        "responses": webhook_responses(b, booker),
        "userFieldsResponses": {},
        "attendees": [_person(a, b.start, names=not cancelled) for a in people],
        "location": b.location,
        "destinationCalendar": None,
        "hideCalendarNotes": False,
        "requiresConfirmation": et.requires_confirmation,
        "eventTypeId": et.id,
        "seatsShowAttendees": et.seats_show_attendees,
        "seatsPerTimeSlot": et.seats_per_slot,
        "schedulingType": "COLLECTIVE" if et.team_id else None,
        "iCalUID": b.ics_uid,
        "iCalSequence": 0,
        "uid": b.uid,
        "eventTitle": et.title,
        "eventDescription": et.description,
        "price": 0,
        "currency": "usd",
        "length": b.duration,
        "bookingId": b.id,
        "metadata": metadata,
        "status": status,
    }
    if booker is not None and booker.seat_uid:
        payload["attendeeSeatId"] = booker.seat_uid
    if b.sms_reminder_number:
        payload["smsReminderNumber"] = b.sms_reminder_number
    return payload
