"""Booking operations shared by the API routes and the sandbox's web-booking endpoint.

Each operation validates like Cal.com, mutates state, then queues the webhooks the
real handlers send (handleNewBooking, handleCancelBooking, handleConfirmation,
handleMarkNoShow).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from calflow.sandbox.calcom.availability import SlotProblem, check_slot, seated_booking_at
from calflow.sandbox.calcom.envelope import CalcomError, bad_request, iso_s, not_found
from calflow.sandbox.calcom.serialize import booking_row, event_payload
from calflow.sandbox.calcom.state import Attendee, Booking, CalcomState, EventType
from calflow.sandbox.calcom.validation import CreateRequest, parse_attendee
from calflow.sandbox.calcom.webhooks import WebhookDispatcher

MSG_TAKEN = "User either already has booking at this time or is not available"
MSG_HOSTS_TAKEN = "One of the hosts either already has booking at this time or is not available"
MSG_PAST = "Attempting to book a meeting in the past."
MSG_OUT_OF_BOUNDS = (
    "The event type can't be booked at the \"start\" time provided. This could be because it's "
    "too soon (violating the minimum booking notice) or too far in the future (outside the "
    "event's scheduling window). Try fetching available slots first using the GET /v2/slots "
    'endpoint and then make a booking with "start" time equal to one of the available slots: '
    "https://cal.com/docs/api-reference/v2/slots"
)
MSG_SEATS_FULL = "Booking seats are full"
MSG_NO_SHOW_EARLY = "Cannot mark no-show before the meeting has started."
MAX_GUESTS_PER_REQUEST = 10
MAX_GUESTS_PER_BOOKING = 30


def missing_booking(uid: str) -> CalcomError:
    """404 of get / reschedule / mark-absent / confirm / decline / guests."""
    return not_found(f"Booking with uid={uid} was not found in the database")


class BookingService:
    """Create, cancel, reschedule, confirm, decline, mark absent, add guests."""

    def __init__(
        self,
        state: Callable[[], CalcomState],
        now: Callable[[], datetime],
        dispatcher: WebhookDispatcher,
    ) -> None:
        self._state = state
        self._now = now
        self.dispatcher = dispatcher

    @property
    def state(self) -> CalcomState:
        """The current state."""
        return self._state()

    def get(self, uid: str) -> Booking:
        """The booking ``uid`` or 404."""
        booking = self.state.bookings.get(uid)
        if booking is None:
            raise missing_booking(uid)
        return booking

    def _check(self, et: EventType, start: datetime, length: int, exclude: str | None) -> None:
        problem = check_slot(self.state, et, start, length, self._now(), exclude)
        if problem is SlotProblem.PAST:
            raise bad_request(MSG_PAST)
        if problem is SlotProblem.OUT_OF_BOUNDS:
            raise bad_request(MSG_OUT_OF_BOUNDS)
        if problem is SlotProblem.UNAVAILABLE:
            raise bad_request(MSG_HOSTS_TAKEN if et.team_id else MSG_TAKEN)
        if problem is SlotProblem.SEATS_FULL:
            raise CalcomError(409, MSG_SEATS_FULL)

    def _emit(self, b: Booking, trigger: str, status: str, **extra: Any) -> None:
        payload = event_payload(self.state, b, status)
        payload.update({k: v for k, v in extra.items() if v is not None})
        self.dispatcher.emit(b.user_id, trigger, payload)

    def create(self, req: CreateRequest, source: str = "api") -> tuple[Booking, str | None]:
        """Create a booking (or take a seat); returns the booking and the seat uid if seated."""
        et, state, now = req.event_type, self.state, self._now()
        self._check(et, req.start, req.length, None)
        req.attendee.id = state.next_attendee_id()
        if et.seats_per_slot:
            existing = seated_booking_at(state, et, req.start)
            if existing is not None:
                existing.attendees.append(req.attendee)
                existing.updated_at = now
                self._emit(existing, "BOOKING_CREATED", "ACCEPTED")
                return existing, state.new_uid()
        host = state.users[et.host_ids[0]]
        responses: dict[str, Any] = {"name": req.attendee.name, "email": req.attendee.email}
        if req.attendee.phone_number:
            responses["attendeePhoneNumber"] = req.attendee.phone_number
        if req.guests:
            responses["guests"] = list(req.guests)
        responses.update(req.booking_fields_responses)
        uid = state.new_uid()
        booking = Booking(
            id=state.next_booking_id(),
            uid=uid,
            event_type_id=et.id,
            user_id=host.id,
            host_ids=list(et.host_ids),
            title=f"{et.title} between {host.name} and {req.attendee.name}",
            description=str(req.booking_fields_responses.get("notes", "")),
            status="pending" if et.requires_confirmation else "accepted",
            start=req.start,
            end=req.start + timedelta(minutes=req.length),
            attendees=[req.attendee],
            location=req.location or et.location,
            created_at=now,
            updated_at=now,
            guests=list(req.guests),
            metadata=dict(req.metadata),
            booking_fields_responses=responses,
            ics_uid=f"{uid}@Cal.com",
            source=source,
        )
        state.bookings[uid] = booking
        if booking.status == "pending":
            self._emit(booking, "BOOKING_REQUESTED", "PENDING")
        else:
            self._emit(booking, "BOOKING_CREATED", "ACCEPTED")
        return booking, None

    def cancel(self, uid: str, reason: str | None) -> Booking:
        """Cancel ``uid`` (200 in the API)."""
        booking = self.state.bookings.get(uid)
        if booking is None:
            raise not_found(f"Booking with uid={uid} not found")
        if booking.status in ("cancelled", "rejected"):
            raise bad_request("This booking has already been cancelled.")
        now = self._now()
        if booking.end < now:
            raise bad_request("Cannot cancel a booking that has already ended")
        booking.status = "cancelled"
        booking.cancellation_reason = reason
        booking.cancelled_by_email = self.state.users[booking.user_id].email
        booking.updated_at = now
        self._emit(
            booking,
            "BOOKING_CANCELLED",
            "CANCELLED",
            cancellationReason=reason or "",
            cancelledBy=booking.cancelled_by_email,
        )
        return booking

    def reschedule(
        self, uid: str, start: datetime, reason: str | None, rescheduled_by: str | None
    ) -> Booking:
        """Create the new booking at ``start`` and cancel ``uid`` (201 in the API)."""
        old = self.get(uid)
        if old.rescheduled_to_uid:
            raise bad_request(
                f"Can't reschedule booking with uid={uid} because it has been rescheduled to "
                f"booking with uid={old.rescheduled_to_uid}. You probably want to reschedule "
                f"{old.rescheduled_to_uid} instead."
            )
        if old.status in ("cancelled", "rejected"):
            raise bad_request(
                f"Can't reschedule booking with uid={uid} because it has been cancelled. Please "
                "provide uid of a booking that is not cancelled."
            )
        state, now = self.state, self._now()
        et = state.event_types[old.event_type_id]
        self._check(et, start, old.duration, uid)
        host = state.users[old.user_id]
        confirmed = not et.requires_confirmation or rescheduled_by == host.email
        new_uid = state.new_uid()
        new = replace(
            old,
            id=state.next_booking_id(),
            uid=new_uid,
            start=start,
            end=start + timedelta(minutes=old.duration),
            status="accepted" if confirmed else "pending",
            attendees=[replace(a) for a in old.attendees],
            created_at=now,
            updated_at=now,
            rescheduled_from_uid=uid,
            rescheduled_to_uid=None,
            rescheduling_reason=reason,
            rescheduled_by_email=rescheduled_by or host.email,
            cancellation_reason=None,
            cancelled_by_email=None,
            metadata=dict(old.metadata),
            source="api",
        )
        old.status = "cancelled"
        old.rescheduled_to_uid = new_uid
        old.updated_at = now
        state.bookings[new_uid] = new
        extra: dict[str, Any] = {
            "rescheduleId": old.id,
            "rescheduleUid": uid,
            "rescheduleStartTime": iso_s(old.start),
            "rescheduleEndTime": iso_s(old.end),
            "rescheduledBy": new.rescheduled_by_email,
        }
        if confirmed:
            self._emit(new, "BOOKING_RESCHEDULED", "ACCEPTED", **extra)
        else:
            self._emit(new, "BOOKING_REQUESTED", "PENDING", **extra)
        return new

    def mark_absent(self, uid: str, host: bool | None, attendees: list[dict[str, Any]]) -> Booking:
        """Record no-shows; 403 before the meeting has started."""
        booking = self.get(uid)
        now = self._now()
        if now < booking.start:
            raise CalcomError(403, MSG_NO_SHOW_EARLY)
        if host is not None:
            booking.absent_host = bool(host)
            who = self.state.users[booking.user_id].email
            verb = "marked" if host else "unmarked"
            self.dispatcher.emit(
                booking.user_id,
                "BOOKING_NO_SHOW_UPDATED",
                {
                    "message": f"{who} {verb} as no-show",
                    "attendees": [],
                    "bookingUid": booking.uid,
                    "bookingId": booking.id,
                },
            )
        changed: list[dict[str, Any]] = []
        for item in attendees:
            for attendee in booking.attendees:
                if attendee.email == item.get("email"):
                    attendee.absent = bool(item.get("absent"))
                    changed.append({"email": attendee.email, "noShow": attendee.absent})
        if changed:
            if len(changed) == 1:
                verb = "marked" if changed[0]["noShow"] else "unmarked"
                message = f"{changed[0]['email']} {verb} as no-show"
            else:
                message = "No-show status updated for attendees"
            self.dispatcher.emit(
                booking.user_id,
                "BOOKING_NO_SHOW_UPDATED",
                {
                    "message": message,
                    "attendees": changed,
                    "bookingUid": booking.uid,
                    "bookingId": booking.id,
                },
            )
        booking.updated_at = now
        return booking

    def add_guests(self, uid: str, guests: Any) -> Booking:
        """Add guests as attendees (≤10 per request, ≤30 per booking)."""
        booking = self.get(uid)
        if not isinstance(guests, list) or not guests:
            raise bad_request("guests property is wrong,guests must contain at least 1 elements ")
        if len(guests) > MAX_GUESTS_PER_REQUEST:
            raise bad_request(
                f"guests property is wrong,guests must contain no more than "
                f"{MAX_GUESTS_PER_REQUEST} elements "
            )
        existing = len(booking.attendees) - 1
        if existing + len(guests) > MAX_GUESTS_PER_BOOKING:
            raise bad_request(
                f"Cannot add {len(guests)} guests: a booking can have at most "
                f"{MAX_GUESTS_PER_BOOKING} guests and this one already has {existing}."
            )
        errors: list[str] = []
        parsed: list[Attendee] = []
        fallback_tz = booking.attendees[0].time_zone if booking.attendees else "UTC"
        for raw in guests:
            if isinstance(raw, dict):
                raw = {"name": raw.get("email", ""), "timeZone": fallback_tz, **raw}
            attendee = parse_attendee(raw, errors, prefix="guests")
            if attendee is not None:
                parsed.append(attendee)
        if errors:
            raise bad_request(", ".join(errors))
        known = {a.email for a in booking.attendees}
        for attendee in parsed:
            if attendee.email in known:
                continue
            attendee.id = self.state.next_attendee_id()
            booking.attendees.append(attendee)
            booking.guests.append(attendee.email)
        booking.updated_at = self._now()
        return booking

    def _pending(self, uid: str) -> Booking:
        booking = self.get(uid)
        if booking.status != "pending":
            raise bad_request(f"Booking with uid={uid} is not pending confirmation.")
        return booking

    def confirm(self, uid: str) -> Booking:
        """Accept a pending booking (fires BOOKING_CREATED, like Cal.com)."""
        booking = self._pending(uid)
        booking.status = "accepted"
        booking.updated_at = self._now()
        self._emit(booking, "BOOKING_CREATED", "ACCEPTED")
        return booking

    def decline(self, uid: str, reason: str | None) -> Booking:
        """Reject a pending booking (fires BOOKING_REJECTED)."""
        booking = self._pending(uid)
        booking.status = "rejected"
        booking.rejection_reason = reason
        booking.updated_at = self._now()
        self._emit(booking, "BOOKING_REJECTED", "REJECTED", rejectionReason=reason)
        return booking

    def meeting_event(self, uid: str, trigger: str) -> Booking:
        """Fire MEETING_STARTED / MEETING_ENDED with the flat booking-row body."""
        booking = self.get(uid)
        self.dispatcher.emit_flat(booking.user_id, trigger, booking_row(self.state, booking))
        return booking
