"""Shapes Cal.com emits: API v2 booking objects, raw booking rows and webhook payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from calflow.sandbox.calcom.envelope import iso_ms, iso_s
from calflow.sandbox.calcom.state import Attendee, Booking, CalcomState, EventType

_VIDEO_BASE = "https://app.cal.com/video/"


def display_location(booking: Booking) -> str:
    """The location as API v2 outputs it (Cal Video resolves to its room URL)."""
    if booking.location == "integrations:daily":
        return _VIDEO_BASE + booking.uid
    return booking.location


def booking_output(state: CalcomState, b: Booking) -> dict[str, Any]:
    """``BookingOutput_2024_08_13`` in the declaration order of Cal.com's output service."""
    et = state.event_types[b.event_type_id]
    location = display_location(b)
    out: dict[str, Any] = {
        "id": b.id,
        "uid": b.uid,
        "title": b.title,
        "description": b.description,
        "hosts": [state.users[h].host_json() for h in b.host_ids],
        "status": b.status,
        "cancellationReason": b.cancellation_reason or "",
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
        "smsReminderNumber": next((a.phone_number for a in b.attendees if a.phone_number), None),
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


def webhook_responses(b: Booking) -> dict[str, Any]:
    """The ``responses`` object of booking webhooks (label + value per booking field)."""
    first = b.attendees[0] if b.attendees else None
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
    for key, value in b.booking_fields_responses.items():
        if key not in responses and key not in ("displayEmail", "displayGuests"):
            responses[key] = {"label": key, "value": value}
    return responses


def _utc_offset(zone: str, at: datetime) -> int:
    offset = at.astimezone(ZoneInfo(zone)).utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def _person(a: Attendee, at: datetime) -> dict[str, Any]:
    first, _, last = a.name.partition(" ")
    out: dict[str, Any] = {
        "email": a.email,
        "name": a.name,
        "firstName": first,
        "lastName": last,
        "timeZone": a.time_zone,
        "language": {"locale": a.language},
        "utcOffset": _utc_offset(a.time_zone, at),
    }
    if a.phone_number:
        out["phoneNumber"] = a.phone_number
    return out


def event_payload(state: CalcomState, b: Booking, status: str) -> dict[str, Any]:
    """The ``payload`` of booking triggers, built like Cal.com's CalendarEvent + extras."""
    et: EventType = state.event_types[b.event_type_id]
    organizer = state.users[b.user_id]
    guests = [
        Attendee(name=g, email=g, time_zone=b.attendees[0].time_zone if b.attendees else "UTC")
        for g in b.guests
    ]
    metadata = dict(b.metadata)
    if b.location == "integrations:daily":
        metadata.setdefault("videoCallUrl", display_location(b))
    return {
        "type": et.slug,
        "title": b.title,
        "description": b.description,
        "additionalNotes": b.description,
        "customInputs": {},
        "startTime": iso_s(b.start),
        "endTime": iso_s(b.end),
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
        "responses": webhook_responses(b),
        "userFieldsResponses": {},
        "attendees": [_person(a, b.start) for a in [*b.attendees, *guests]],
        "location": b.location,
        "destinationCalendar": None,
        "hideCalendarNotes": False,
        "requiresConfirmation": et.requires_confirmation,
        "eventTypeId": et.id,
        "seatsShowAttendees": bool(et.seats_per_slot),
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
