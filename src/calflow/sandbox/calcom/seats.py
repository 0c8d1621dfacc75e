"""Seated event types (``seatsPerTimeSlot``) as Cal.com's ``handleSeats`` handles them.

One booking per time slot holds every seat; each seat is an attendee with a
``BookingSeat`` whose ``referenceUid`` is the seat uid API v2 calls ``seatUid``. Which
Cal.com file each behaviour follows (``packages/features/bookings/lib/``):

* a first seat: ``handleNewBooking`` makes the booking and its BookingSeat; its
  BOOKING_CREATED carries that seat as ``attendeeSeatId``;
* a further seat: ``handleSeats/create/createNewSeat.ts`` + ``handleSeats.ts``:
  BOOKING_CREATED with the seated booking's ``uid`` and ``bookingId``, a new
  ``attendeeSeatId``, ``attendees`` = existing attendees + the new booker (last),
  the new booker's ``responses`` and the booking's ``smsReminderNumber``;
* a seat cancel: ``handleSeats/cancel/cancelAttendeeSeat.ts``: only that seat goes;
  BOOKING_CANCELLED with the same ``uid``, ``status: CANCELLED``, ``attendees`` = the
  one who left, ``smsReminderNumber``; the booking stays accepted. When the seat is the
  last one, ``cancelAttendeeSeat`` does nothing and ``handleCancelBooking`` cancels the
  whole booking (see :meth:`.BookingService.cancel`);
* an attendee moving its seat: ``handleSeats/reschedule/attendee/
  attendeeRescheduleSeatedBooking.ts``: into the seated booking already at the new
  time (same seat uid; BOOKING_RESCHEDULED from ``handleSeats.ts`` with ``uid`` = that
  booking, ``bookingId`` = the original's, ``rescheduleUid`` = the original), or, when
  no booking is there, out of the original into a new booking that ``handleNewBooking``
  makes (new uid, new seat uid, ``fromReschedule``; BOOKING_RESCHEDULED with
  ``rescheduleId``/``rescheduleUid`` of the original). Either way a seatless original is
  cancelled (``lib/lastAttendeeDeleteBooking.ts``);
* the host moving the whole booking: ``reschedule/owner/
  moveSeatedBookingToNewTimeSlot.ts`` (the same booking, same uid, new time; reason in
  ``cancellationReason``) or, when a seated booking is at the new time,
  ``reschedule/owner/combineTwoSeatedBookings.ts`` (attendees merged into it, 409 if
  they do not fit, the original cancelled). BOOKING_RESCHEDULED lists every attendee.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from calflow.sandbox.calcom.availability import seated_booking_at
from calflow.sandbox.calcom.envelope import CalcomError, bad_request, iso_offset, iso_s
from calflow.sandbox.calcom.state import Attendee, Booking

if TYPE_CHECKING:
    from calflow.sandbox.calcom.bookings import BookingService

MSG_NO_SEAT = "Invalid seatUid: this seat does not exist or has already been cancelled."
MSG_OTHER_SEAT = "Invalid seatUid: this seat does not belong to this booking."
#: ``ErrorCode.NotEnoughAvailableSeats`` (combineTwoSeatedBookings.ts).
MSG_NOT_ENOUGH_SEATS = "not_enough_available_seats_error"


def _moved_from(old: Booking, old_start: datetime, old_end: datetime) -> dict[str, Any]:
    """``rescheduleUid`` / ``rescheduleStartTime`` / ``rescheduleEndTime`` (dayjs utc)."""
    return {
        "rescheduleUid": old.uid,
        "rescheduleStartTime": iso_s(old_start),
        "rescheduleEndTime": iso_s(old_end),
    }


class Seats:
    """Seat operations over a :class:`.BookingService`'s state and webhooks."""

    def __init__(self, service: BookingService) -> None:
        self._svc = service

    def seat(self, attendee: Attendee, responses: dict[str, Any]) -> str:
        """Give ``attendee`` a new BookingSeat (``referenceUid``) holding ``responses``."""
        attendee.seat_uid = self._svc.state.new_seat_uid()
        attendee.seat_responses = dict(responses)
        return attendee.seat_uid

    def add(self, booking: Booking, attendee: Attendee, responses: dict[str, Any]) -> str:
        """createNewSeat.ts: one more seat in ``booking``; returns its seat uid."""
        existing = list(booking.attendees)
        seat_uid = self.seat(attendee, responses)
        booking.attendees.append(attendee)
        booking.updated_at = self._svc.now()
        self._svc.emit(
            booking,
            "BOOKING_CREATED",
            "ACCEPTED",
            attendees=[*existing, attendee],
            booker=attendee,
        )
        return seat_uid

    def check_seat(self, booking: Booking, seat_uid: str) -> None:
        """API v2's seat checks before a seat cancel (``bookings.service.ts``)."""
        found = self._svc.state.seat(seat_uid)
        if found is None:
            raise bad_request(MSG_NO_SEAT)
        if found[0].uid != booking.uid:
            raise bad_request(MSG_OTHER_SEAT)

    def _holder(self, booking: Booking, seat_uid: str) -> Attendee:
        self.check_seat(booking, seat_uid)
        return next(a for a in booking.attendees if a.seat_uid == seat_uid)

    def cancel_seat(self, booking: Booking, seat_uid: str, reason: str | None) -> bool:
        """cancelAttendeeSeat.ts; ``False`` when it is the last seat (cancel the booking)."""
        if len(booking.attendees) < 2:
            return False
        leaver = self._holder(booking, seat_uid)
        booking.attendees.remove(leaver)
        booking.updated_at = self._svc.now()
        self._svc.emit(
            booking,
            "BOOKING_CANCELLED",
            "CANCELLED",
            attendees=[leaver],
            times=iso_offset,
            cancelled=True,
            cancellationReason=reason,
        )
        return True

    def _leave(self, old: Booking, seat: Attendee) -> None:
        """Take ``seat`` out of ``old``; lastAttendeeDeleteBooking.ts cancels it if empty."""
        old.attendees.remove(seat)
        old.updated_at = self._svc.now()
        if not old.attendees:
            old.status = "cancelled"

    def move_seat(
        self,
        old: Booking,
        seat_uid: str,
        start: datetime,
        reason: str | None,
        rescheduled_by: str | None,
    ) -> tuple[Booking, str]:
        """attendeeRescheduleSeatedBooking.ts: move one seat to ``start``."""
        svc, state = self._svc, self._svc.state
        seat = self._holder(old, seat_uid)
        et = state.event_types[old.event_type_id]
        svc.check(et, start, old.duration, old.uid)
        target = seated_booking_at(state, et, start, exclude_uid=old.uid)
        moved_from = _moved_from(old, old.start, old.end)
        self._leave(old, seat)
        if target is not None:
            existing = list(target.attendees)
            target.attendees.append(seat)
            target.updated_at = svc.now()
            svc.emit(
                target,
                "BOOKING_RESCHEDULED",
                "ACCEPTED",
                attendees=[seat, *existing],
                booker=seat,
                reschedule_reason=reason,
                bookingId=old.id,
                **moved_from,
            )
            return target, seat_uid
        new = svc.rebook(
            old,
            start,
            [seat],
            reason,
            rescheduled_by,
            status="accepted",
            cancellation_reason=reason,
            guests=[],
            booking_fields_responses=dict(seat.seat_responses),
        )
        new.ics_uid = f"{new.uid}@Cal.com"
        self.seat(seat, seat.seat_responses)
        svc.emit(
            new,
            "BOOKING_RESCHEDULED",
            "ACCEPTED",
            booker=seat,
            rescheduleId=old.id,
            rescheduledBy=rescheduled_by,
            **moved_from,
        )
        return new, seat.seat_uid or ""

    def move_booking(self, old: Booking, start: datetime, reason: str | None) -> Booking:
        """ownerRescheduleSeatedBooking.ts: the host moves the whole seated booking."""
        svc, state = self._svc, self._svc.state
        et = state.event_types[old.event_type_id]
        target = seated_booking_at(state, et, start, exclude_uid=old.uid)
        moved_from = _moved_from(old, old.start, old.end)
        now = svc.now()
        if target is None:
            # moveSeatedBookingToNewTimeSlot.ts: same booking row, new time.
            svc.check(et, start, old.duration, old.uid)
            old.start, old.end = start, start + timedelta(minutes=old.duration)
            old.cancellation_reason = reason
            old.updated_at = now
            svc.emit(old, "BOOKING_RESCHEDULED", "ACCEPTED", reschedule_reason=reason, **moved_from)
            return old
        # combineTwoSeatedBookings.ts: merge into the booking already at ``start``.
        known = {a.email for a in target.attendees}
        moving = [a for a in old.attendees if a.email not in known]
        taken = sum(1 for a in target.attendees if a.seat_uid)
        if et.seats_per_slot is None or taken + len(moving) > et.seats_per_slot:
            raise CalcomError(409, MSG_NOT_ENOUGH_SEATS)
        for attendee in moving:
            if not attendee.seat_uid:
                self.seat(attendee, {})
            target.attendees.append(attendee)
        target.updated_at = now
        old.attendees = []
        old.status = "cancelled"
        old.updated_at = now
        svc.emit(
            target,
            "BOOKING_RESCHEDULED",
            "ACCEPTED",
            reschedule_reason=reason,
            bookingId=old.id,
            **moved_from,
        )
        return target
