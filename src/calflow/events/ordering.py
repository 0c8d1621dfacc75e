"""Ordering: which booking changes still apply when deliveries arrive out of order.

Providers do not deliver in order (Cal.com fires each trigger separately, SavvyCal
retries with backoff, a replay arrives whenever it is run), so calflow keeps the
state each booking has reached and judges every new event against it, in the same
transaction that stores the event. The rule:

1. A booking (provider + uid) moves through phases: ``0`` pending (requested,
   awaiting checkout), ``1`` booked (created, approved, rescheduled, changed) and
   ``2`` ended (cancelled, declined, checkout expired, or rescheduled away: a Cal.com
   reschedule makes a new booking and ends the old uid).
2. An event that would move a booking back to an earlier phase is *stale*: a
   ``created`` that arrives after the ``cancelled`` does not resurrect the booking.
   The ended phase is final.
3. Within one phase the later change wins, by the time the change occurred (ties go
   to the newcomer): a ``rescheduled`` to 10:00 that happened before the one to 11:00
   is stale when it arrives second.
4. Events that describe the meeting rather than its schedule (no-show, meeting
   started/ended, payments, guests, attendees, unknown ``other`` types) never change
   the state and are never stale.

5. A per-seat change (``BookingEvent.seat``: a Cal.com seat, a SavvyCal group-event
   attendee) is judged against that seat's own state (``SEAT_PHASES``: booked by its
   creation, ended by ``attendee_cancelled``), and is stale when the whole booking had
   already ended by then. One seat leaving never ends the booking for the others.

A stale event is stored and visible (``ordering: stale`` and the reason), counted
like any other, and starts no workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from calflow.events.model import BookingEvent

PENDING, BOOKED, ENDED = 0, 1, 2

PHASES: dict[str, int] = {
    "requested": PENDING,
    "checkout_pending": PENDING,
    "created": BOOKED,
    "approved": BOOKED,
    "rescheduled": BOOKED,
    "changed": BOOKED,
    "cancelled": ENDED,
    "declined": ENDED,
    "checkout_expired": ENDED,
}
"""The phase each schedule-changing kind puts a booking in; other kinds are informational."""

SEAT_PHASES: dict[str, int] = {
    **PHASES,
    "attendee_added": BOOKED,
    "attendee_rescheduled": BOOKED,
    "attendee_cancelled": ENDED,
}
"""The phase each kind puts one seat of a shared booking in."""

RESCHEDULED_AWAY = "rescheduled_away"
"""The state of a Cal.com booking uid that a reschedule replaced with a new uid."""


@dataclass(frozen=True)
class BookingState:
    """Where one booking stands: the last change that applied to it."""

    kind: str
    phase: int
    occurred_at: datetime
    event_id: str | None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether an event applies, why not, and the booking's state afterwards."""

    applies: bool
    reason: str | None
    state: BookingState | None
    """The new state to store (None: unchanged)."""


def seat_uid(booking_uid: str, seat: str) -> str:
    """The key under which one seat's state is kept beside its booking's."""
    return f"{booking_uid}#seat:{seat}"


def judge(
    current: BookingState | None,
    event: BookingEvent,
    event_id: str,
    phases: dict[str, int] = PHASES,
) -> Verdict:
    """Rules 1 to 4 above for ``event`` against the booking's (or seat's) ``current``
    state; ``phases``: ``SEAT_PHASES`` for a seat."""
    phase = phases.get(event.kind)
    if phase is None:
        return Verdict(True, None, None)
    new = BookingState(event.kind, phase, event.occurred_at, event_id, event.start, event.end)
    if current is None:
        return Verdict(True, None, new)
    if current.phase == ENDED:
        what = "rescheduled to a new booking" if current.kind == RESCHEDULED_AWAY else current.kind
        return Verdict(False, f"the booking was already {what} ({current.event_id})", None)
    if phase < current.phase:
        return Verdict(False, f"the booking had already moved on to {current.kind}", None)
    if phase == current.phase and event.occurred_at < current.occurred_at:
        return Verdict(
            False,
            f"a later {current.kind} ({current.event_id}, at "
            f"{current.occurred_at.isoformat()}) already applied",
            None,
        )
    return Verdict(True, None, new)


def ended_by_reschedule(event: BookingEvent, event_id: str) -> BookingState | None:
    """The state of the old uid when ``event`` reschedules into a new booking uid."""
    if event.kind != "rescheduled" or not event.previous_uid:
        return None
    if event.previous_uid == event.booking_uid:
        return None
    return BookingState(RESCHEDULED_AWAY, ENDED, event.occurred_at, event_id)
