"""Booking operations shared by the API routes and the sandbox's web-booking endpoint.

Each operation validates like Cal.com, mutates state, then queues the webhooks the
real handlers send (handleNewBooking, handleCancelBooking, handleConfirmation,
handleMarkNoShow; seats in :mod:`.seats`). Time formats as the handlers make them:
booking and reschedule payloads ``…:00Z`` (dayjs ``utc().format()``), confirmation
``….000Z`` (``toISOString()``), cancellation ``…+00:00`` (dayjs ``format()``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from calflow.sandbox.calcom.availability import SlotProblem, check_slot, seated_booking_at
from calflow.sandbox.calcom.envelope import (
    CalcomError,
    bad_request,
    iso_ms,
    iso_offset,
    iso_s,
    not_found,
)
from calflow.sandbox.calcom.seats import Seats
from calflow.sandbox.calcom.serialize import TimeFormat, booking_row, event_payload
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
MSG_SEATS_FULL = "No more seats left at this seated booking."
MSG_NO_SHOW_EARLY = "Cannot mark no-show before the meeting has started."
MAX_GUESTS_PER_REQUEST = 10
MAX_GUESTS_PER_BOOKING = 30


def missing_booking(uid: str) -> CalcomError:
    """404 of get / reschedule / mark-absent / confirm / decline / guests."""
    return not_found(f"Booking with uid={uid} was not found in the database")


def _no_show(booking: Booking, attendees: list[dict[str, Any]], message: str) -> dict[str, Any]:
    """BOOKING_NO_SHOW_UPDATED's whole payload (``buildNoShowPayload``): nothing else."""
    return {
        "bookingUid": booking.uid,
        "bookingId": booking.id,
        "attendees": attendees,
        "message": message,
    }


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
        self.seats = Seats(self)

    @property
    def state(self) -> CalcomState:
        """The current state."""
        return self._state()

    def now(self) -> datetime:
        """The sandbox clock."""
        return self._now()

    def get(self, uid: str) -> Booking:
        """The booking ``uid`` or 404."""
        booking = self.state.bookings.get(uid)
        if booking is None:
            raise missing_booking(uid)
        return booking

    def check(self, et: EventType, start: datetime, length: int, exclude: str | None) -> None:
        problem = check_slot(self.state, et, start, length, self._now(), exclude)
        if problem is SlotProblem.PAST:
            raise bad_request(MSG_PAST)
        if problem is SlotProblem.OUT_OF_BOUNDS:
            raise bad_request(MSG_OUT_OF_BOUNDS)
        if problem is SlotProblem.UNAVAILABLE:
            raise bad_request(MSG_HOSTS_TAKEN if et.team_id else MSG_TAKEN)
        if problem is SlotProblem.SEATS_FULL:
            raise CalcomError(409, MSG_SEATS_FULL)

    def emit(
        self,
        b: Booking,
        trigger: str,
        status: str,
        *,
        attendees: list[Attendee] | None = None,
        booker: Attendee | None = None,
        times: TimeFormat = iso_s,
        cancelled: bool = False,
        reschedule_reason: str | None = None,
        **extra: Any,
    ) -> None:
        """Queue ``trigger`` for ``b`` (see :func:`event_payload`); ``extra`` keys override."""
        payload = event_payload(
            self.state,
            b,
            status,
            attendees=attendees,
            booker=booker,
            times=times,
            cancelled=cancelled,
        )
        if reschedule_reason:
            payload["responses"]["rescheduleReason"]["value"] = reschedule_reason
        payload.update({k: v for k, v in extra.items() if v is not None})
        self.dispatcher.emit(b.user_id, trigger, payload)

    def create(self, req: CreateRequest, source: str = "api") -> tuple[Booking, str | None]:
        """Create a booking (or take a seat); returns the booking and the seat uid if seated."""
        et, state, now = req.event_type, self.state, self._now()
        self.check(et, req.start, req.length, None)
        req.attendee.id = state.next_attendee_id()
        responses: dict[str, Any] = {"name": req.attendee.name, "email": req.attendee.email}
        if req.attendee.phone_number:
            responses["attendeePhoneNumber"] = req.attendee.phone_number
        if req.guests:
            responses["guests"] = list(req.guests)
        responses.update(req.booking_fields_responses)
        if et.seats_per_slot:
            existing = seated_booking_at(state, et, req.start)
            if existing is not None:
                return existing, self.seats.add(existing, req.attendee, responses)
        host = state.users[et.host_ids[0]]
        uid = state.new_uid()
        sms = responses.get("smsReminderNumber")
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
            sms_reminder_number=sms if isinstance(sms, str) and sms else None,
            ics_uid=f"{uid}@Cal.com",
            source=source,
        )
        state.bookings[uid] = booking
        if et.seats_per_slot:
            # handleNewBooking: the first seat's BookingSeat is made with the booking.
            self.seats.seat(req.attendee, responses)
        if booking.status == "pending":
            self.emit(booking, "BOOKING_REQUESTED", "PENDING", booker=req.attendee)
        else:
            self.emit(booking, "BOOKING_CREATED", "ACCEPTED", booker=req.attendee)
        return booking, req.attendee.seat_uid

    def cancel(
        self, uid: str, reason: str | None, seat_uid: str | None = None, *, host: bool = True
    ) -> Booking:
        """Cancel ``uid`` (200 in the API), or only the seat ``seat_uid`` of a seated booking.

        ``host`` says the caller is the booking's host (signed in with its API key):
        cancelling a whole seated booking needs it (``handleCancelBooking.ts``).
        """
        booking = self.state.bookings.get(uid)
        if booking is None:
            raise not_found(f"Booking with uid={uid} not found")
        if seat_uid is not None:
            self.seats.check_seat(booking, seat_uid)
        if booking.status in ("cancelled", "rejected"):
            raise bad_request("This booking has already been cancelled.")
        now = self._now()
        if booking.end < now:
            raise bad_request("Cannot cancel a booking that has already ended")
        seated = bool(self.state.event_types[booking.event_type_id].seats_per_slot)
        if seated and seat_uid is None and not host:
            raise CalcomError(401, "User not a host of this event")
        if seat_uid is not None and self.seats.cancel_seat(booking, seat_uid, reason):
            return booking
        booking.status = "cancelled"
        booking.cancellation_reason = reason
        booking.cancelled_by_email = self.state.users[booking.user_id].email
        booking.updated_at = now
        self.emit(
            booking,
            "BOOKING_CANCELLED",
            "CANCELLED",
            times=iso_offset,
            cancelled=True,
            cancellationReason=reason or "",
            cancelledBy=booking.cancelled_by_email,
            requestReschedule=False,
        )
        if seated:
            # handleCancelBooking deletes a seated booking's attendees with it.
            booking.attendees = []
        return booking

    def reschedule(
        self,
        uid: str,
        start: datetime,
        reason: str | None,
        rescheduled_by: str | None,
        seat_uid: str | None = None,
        *,
        host: bool = True,
    ) -> tuple[Booking, str | None]:
        """Create the new booking at ``start`` and cancel ``uid`` (201 in the API).

        Seated bookings move a seat (``seat_uid``) or, for the host, the whole booking:
        see :mod:`.seats`. Returns the resulting booking and the seat uid, if any.
        """
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
        if et.seats_per_slot:
            if seat_uid is not None:
                return self.seats.move_seat(old, seat_uid, start, reason, rescheduled_by)
            if not host:
                raise CalcomError(401, "Unauthorized")
            return self.seats.move_booking(old, start, reason), ""
        self.check(et, start, old.duration, uid)
        owner = state.users[old.user_id]
        confirmed = not et.requires_confirmation or rescheduled_by == owner.email
        new = self.rebook(
            old,
            start,
            [replace(a) for a in old.attendees],
            reason,
            rescheduled_by or owner.email,
            status="accepted" if confirmed else "pending",
        )
        old.status = "cancelled"
        old.rescheduled_to_uid = new.uid
        old.updated_at = now
        extra: dict[str, Any] = {
            "rescheduleId": old.id,
            "rescheduleUid": uid,
            "rescheduleStartTime": iso_s(old.start),
            "rescheduleEndTime": iso_s(old.end),
            "rescheduledBy": new.rescheduled_by_email,
        }
        if confirmed:
            self.emit(new, "BOOKING_RESCHEDULED", "ACCEPTED", **extra)
        else:
            self.emit(new, "BOOKING_REQUESTED", "PENDING", **extra)
        return new, None

    def rebook(
        self,
        old: Booking,
        start: datetime,
        attendees: list[Attendee],
        reason: str | None,
        rescheduled_by: str | None,
        **changes: Any,
    ) -> Booking:
        """Store a copy of ``old`` at ``start`` with a new id and uid (a reschedule's new
        booking, ``fromReschedule`` = ``old``); ``changes`` set further fields."""
        state, now = self.state, self._now()
        new = replace(
            old,
            id=state.next_booking_id(),
            uid=state.new_uid(),
            start=start,
            end=start + timedelta(minutes=old.duration),
            attendees=attendees,
            created_at=now,
            updated_at=now,
            rescheduled_from_uid=old.uid,
            rescheduled_to_uid=None,
            rescheduling_reason=reason,
            rescheduled_by_email=rescheduled_by,
            cancellation_reason=None,
            cancelled_by_email=None,
            metadata=dict(old.metadata),
            source="api",
        )
        for name, value in changes.items():
            setattr(new, name, value)
        state.bookings[new.uid] = new
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
                _no_show(booking, [], f"{who} {verb} as no-show"),
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
                _no_show(booking, changed, message),
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
        """Accept a pending booking: BOOKING_CREATED again, same uid, ``ACCEPTED``.

        ``handleConfirmation.ts``; the confirm handler's times are ``toISOString()``.
        """
        booking = self._pending(uid)
        booking.status = "accepted"
        booking.updated_at = self._now()
        self.emit(booking, "BOOKING_CREATED", "ACCEPTED", times=iso_ms)
        return booking

    def decline(self, uid: str, reason: str | None) -> Booking:
        """Reject a pending booking (fires BOOKING_REJECTED)."""
        booking = self._pending(uid)
        booking.status = "rejected"
        booking.rejection_reason = reason
        booking.updated_at = self._now()
        self.emit(booking, "BOOKING_REJECTED", "REJECTED", rejectionReason=reason)
        return booking

    def meeting_event(self, uid: str, trigger: str) -> Booking:
        """Fire MEETING_STARTED / MEETING_ENDED with the booking row (nested or flat)."""
        booking = self.get(uid)
        self.dispatcher.emit_meeting(booking.user_id, trigger, booking_row(self.state, booking))
        return booking

    def recording_ready(self, uid: str, download_link: str) -> Booking:
        """RECORDING_READY: the CalendarEvent with ``downloadLink`` (daily-video webhook)."""
        booking = self.get(uid)
        self.emit(booking, "RECORDING_READY", booking.status.upper(), downloadLink=download_link)
        return booking
