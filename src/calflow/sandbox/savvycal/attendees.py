"""Changes of one attendee: joining an event, leaving a group session, moving to another.

SavvyCal sends ``event.attendee.added`` when someone is added to an existing event (a
guest, or a participant of a group session), ``event.attendee.canceled`` when one person
cancels their place in a group session and ``event.attendee.rescheduled`` when one person
moves their place to another time. It documents no payload for them; the sandbox's
(``{"event", "attendee", "previous_event"?}``, see :mod:`.webhooks`) is inferred from
``EventChangedWebhook``, and so is what happens to the events:

* adding: the person joins ``attendees`` of any event not canceled or declined (422 when
  the email is there already, or when a group session holds its link's ``group_size``);
* canceling one: they leave ``attendees`` and the session goes on for the others; the
  last attendee canceling cancels the whole event instead (``event.canceled``, as
  whole-event cancels always are);
* rescheduling one: they leave the session for the session of the same link at the new
  time (422 when it is full) or, when there is none, for a new one made for them there
  (the time must be open, as for a booking). They are a new attendee row there (a new
  ``attendee_…`` id). A session they leave empty is canceled, without a delivery of its
  own. The delivery is about the session they are now on; ``previous_event`` is the one
  they left.

Canceling or rescheduling one attendee is for group sessions only (422 otherwise). An
attendee is named by their ``attendee_…`` id or their email (any case); the organizer
is not one of them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from calflow.sandbox.savvycal.errors import field_errors, message_error, not_found
from calflow.sandbox.savvycal.people import new_attendee, person_errors
from calflow.sandbox.savvycal.serialize import group_size, parse_iso
from calflow.sandbox.savvycal.state import Attendee, Event, Link

if TYPE_CHECKING:
    from calflow.sandbox.savvycal.service import EventService

MSG_FULL = "Event is full"
MSG_NOT_GROUP = "Event is not a group session"


def guests(event: Event) -> list[Attendee]:
    """The event's attendees other than the organizer."""
    return [a for a in event.attendees if not a.is_organizer]


def _named(event: Event, ref: str) -> Attendee | None:
    wanted = ref.strip().casefold()
    return next((a for a in guests(event) if a.id == ref or a.email.casefold() == wanted), None)


class GroupAttendees:
    """Per-attendee operations over an :class:`.EventService`'s state and webhooks."""

    def __init__(self, service: EventService) -> None:
        self._svc = service

    def _active(self, event_id: str) -> Event:
        event = self._svc.event(event_id)
        if event.state in ("canceled", "declined"):
            raise message_error(422, f"Event is {event.state}")
        return event

    def _full(self, event: Event) -> bool:
        return event.is_group_session and len(guests(event)) >= group_size(self._svc.state, event)

    def add(self, event_id: str, body: Any) -> Event:
        """``{display_name, email, time_zone, phone_number?, fields?}`` joins the event:
        ``event.attendee.added``."""
        data = body if isinstance(body, dict) else {}
        errors = person_errors(data)
        if errors:
            raise field_errors(errors)
        event = self._active(event_id)
        if _named(event, data["email"]) is not None:
            raise field_errors({"email": ["has already been taken"]})
        if self._full(event):
            raise message_error(422, MSG_FULL)
        attendee = new_attendee(self._svc.state, data, scheduler=False)
        event.attendees.append(attendee)
        self._svc.emitter.emit("event.attendee.added", event, attendee=attendee)
        return event

    def _holder(self, event_id: str, ref: str) -> tuple[Event, Attendee]:
        event = self._active(event_id)
        if not event.is_group_session:
            raise message_error(422, MSG_NOT_GROUP)
        attendee = _named(event, ref)
        if attendee is None:
            raise not_found()
        return event, attendee

    def cancel(self, event_id: str, ref: str) -> Event:
        """One attendee leaves the session: ``event.attendee.canceled`` (the last one:
        the event is canceled, ``event.canceled``)."""
        event, leaver = self._holder(event_id, ref)
        if len(guests(event)) < 2:
            return self._svc.cancel(event.id, None)
        event.attendees.remove(leaver)
        leaver.response_status = "declined"
        self._svc.emitter.emit("event.attendee.canceled", event, attendee=leaver)
        return event

    def reschedule(self, event_id: str, ref: str, body: Any) -> Event:
        """One attendee moves to ``{start_at, end_at?}``: ``event.attendee.rescheduled``
        about the session they are now on, which is returned."""
        old, mover = self._holder(event_id, ref)
        data = body if isinstance(body, dict) else {}
        start = parse_iso(data.get("start_at"))
        if start is None:
            raise field_errors({"start_at": ["is invalid"]})
        end = parse_iso(data.get("end_at")) or start + timedelta(minutes=old.duration)
        svc = self._svc
        link = svc.link(old.link_id)
        target = self._session_at(link, start, end, old)
        host_id = svc.host_for(link, start, end, ignore=target.id if target else None)
        if host_id is None:
            raise field_errors({"start_at": ["is not an available time slot"]})
        if target is not None and self._full(target):
            raise message_error(422, MSG_FULL)
        old.attendees.remove(mover)
        moved = replace(mover, id=svc.state.new_id("attendee"), is_scheduler=target is None)
        if target is None:
            target = svc.new_event(link, host_id, start, end, moved, {}, "web")
        else:
            target.attendees.append(moved)
        if not guests(old):
            old.state, old.canceled_at = "canceled", svc.now()
        svc.emitter.emit("event.attendee.rescheduled", target, attendee=moved, previous=old)
        return target

    def _session_at(self, link: Link, start: datetime, end: datetime, old: Event) -> Event | None:
        """The session of ``link`` already at exactly ``[start, end)``, other than ``old``."""
        found = next(
            (
                e
                for e in self._svc.state.overlapping(start, end)
                if e.link_id == link.id
                and e.id != old.id
                and e.is_group_session
                and e.state == "confirmed"
                and (e.start, e.end) == (start, end)
            ),
            None,
        )
        return None if found is None else self._svc.event(found.id)
