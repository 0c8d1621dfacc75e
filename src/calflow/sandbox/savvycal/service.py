"""Event lifecycle: open slots, booking, cancel, approve/decline, reschedule, change.

Every change emits its webhook through the dispatcher (booking on an approval link
emits ``event.requested``; approving emits ``event.approved`` then ``event.created``).
Changes of one attendee (added, canceled, rescheduled) are in :mod:`.attendees`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from calflow.sandbox.savvycal.attendees import GroupAttendees
from calflow.sandbox.savvycal.errors import field_errors, message_error, not_found
from calflow.sandbox.savvycal.people import new_attendee, person_errors
from calflow.sandbox.savvycal.seed import conferencing, host_attendee, materialize, summary
from calflow.sandbox.savvycal.serialize import parse_iso
from calflow.sandbox.savvycal.state import Attendee, Event, Link, SavvycalState

WORK_START, WORK_END = time(9), time(17)


class Emitter(Protocol):
    """What the service needs from the webhook dispatcher."""

    def emit(
        self,
        type_: str,
        event: Event,
        *,
        attendee: Attendee | None = None,
        previous: Event | None = None,
    ) -> None:
        """Deliver ``type_`` about ``event`` to every webhook (``attendee``, ``previous``:
        the person and the event they left, for the per-attendee types)."""


class EventService:
    """Business rules of the simulator, over the current state."""

    def __init__(
        self, state: Callable[[], SavvycalState], now: Callable[[], datetime], emitter: Emitter
    ) -> None:
        self._state = state
        self._now = now
        self._emit = emitter
        self.attendees = GroupAttendees(self)
        """Changes of one attendee of an event."""

    @property
    def state(self) -> SavvycalState:
        """The current state."""
        return self._state()

    @property
    def emitter(self) -> Emitter:
        """Where the changes' webhooks go."""
        return self._emit

    def now(self) -> datetime:
        """The sandbox clock, to the second."""
        return self._now().replace(microsecond=0)

    # lookups -----------------------------------------------------------
    def link(self, link_id: str) -> Link:
        """The link, or 404."""
        link = self.state.links.get(link_id)
        if link is None:
            raise not_found()
        return link

    def event(self, event_id: str) -> Event:
        """The event (details materialized), or 404."""
        event = self.state.events.get(event_id)
        if event is None:
            raise not_found()
        return materialize(self.state, event)

    # availability -------------------------------------------------------
    def host_for(
        self, link: Link, start: datetime, end: datetime, ignore: str | None = None
    ) -> str | None:
        """The first host of ``link`` free for ``[start, end)``, if the time is open at all."""
        zone = ZoneInfo(link.time_zone)
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        if (
            local_start.weekday() >= 5
            or local_start.date() != (local_end - timedelta(seconds=1)).date()
            or local_start.time() < WORK_START
            or (local_end.time() > WORK_END or local_end.time() == time(0))
            or (local_start.minute % link.increment) != 0
            or local_start.second
            or start < self._now() + timedelta(minutes=link.minimum_notice_min)
        ):
            return None
        for host_id in link.host_ids:
            if not self.state.is_busy(host_id, start, end, ignore=ignore):
                return host_id
        return None

    def slots(self, link: Link, start_day: date, end_day: date) -> list[dict[str, Any]]:
        """Open slots of ``link`` for each allowed duration, days ``start_day..end_day``."""
        zone = ZoneInfo(link.time_zone)
        found: list[dict[str, Any]] = []
        day = start_day
        while day <= end_day:
            if day.weekday() < 5:
                cursor = datetime.combine(day, WORK_START, tzinfo=zone)
                close = datetime.combine(day, WORK_END, tzinfo=zone)
                while cursor < close:
                    for duration in link.durations:
                        start = cursor.astimezone(UTC)
                        end = start + timedelta(minutes=duration)
                        if self.host_for(link, start, end) is not None:
                            found.append({
                                "start_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "end_at": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "duration": duration,
                                "rank": 1,
                            })  # fmt: skip
                    cursor += timedelta(minutes=link.increment)
            day += timedelta(days=1)
        return found

    # changes --------------------------------------------------------------
    def book(self, link_id: str, body: Any, *, source: str = "api") -> Event:
        """Create an event on ``link_id`` (422 with field errors when invalid or not open)."""
        link = self.link(link_id)
        data = body if isinstance(body, dict) else {}
        errors = person_errors(data)
        for name in ("start_at", "end_at"):
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                errors[name] = ["can't be blank"]
        start, end = parse_iso(data.get("start_at")), parse_iso(data.get("end_at"))
        if "start_at" not in errors and start is None:
            errors["start_at"] = ["is invalid"]
        if "end_at" not in errors and end is None:
            errors["end_at"] = ["is invalid"]
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            errors["metadata"] = ["is invalid"]
        if errors:
            raise field_errors(errors)
        assert start is not None and end is not None
        duration = int((end - start).total_seconds() // 60)
        if (end - start).total_seconds() % 60 or duration not in link.durations:
            raise field_errors({"end_at": ["does not match an available duration"]})
        host_id = self.host_for(link, start, end)
        if host_id is None:
            raise field_errors({"start_at": ["is not an available time slot"]})
        return self._create(link, host_id, data, start, end, source)

    def _create(
        self, link: Link, host_id: str, data: dict[str, Any], start: datetime, end: datetime,
        source: str,
    ) -> Event:  # fmt: skip
        scheduler = new_attendee(self.state, data, scheduler=True)
        metadata = dict(data.get("metadata", {}))
        event = self.new_event(link, host_id, start, end, scheduler, metadata, source)
        self._emit.emit("event.requested" if link.requires_approval else "event.created", event)
        return event

    def new_event(
        self, link: Link, host_id: str, start: datetime, end: datetime, scheduler: Attendee,
        metadata: dict[str, Any], source: str,
    ) -> Event:  # fmt: skip
        """Store a new event of ``link`` hosted by ``host_id`` (no webhook sent)."""
        st = self.state
        host = st.people[host_id]
        now = self.now()
        event = Event(
            seq=st.next_seq(),
            id=st.new_id("event"),
            uuid=st.new_uuid(),
            state="awaiting_approval" if link.requires_approval else "confirmed",
            summary=summary(link, scheduler, host),
            link_id=link.id,
            host_id=host_id,
            start=start,
            end=end,
            created_at=now,
            attendees=[host_attendee(st.rng, host), scheduler],
            location="Google Meet",
            conferencing=conferencing(st.rng),
            metadata=metadata,
            me_attending=host_id == st.me.id,
            buffer_before=link.buffer_before,
            buffer_after=link.buffer_after,
            is_group_session=link.group_size is not None,
            source=source,
        )
        st.add_event(event)
        return event

    def cancel(self, event_id: str, reason: Any) -> Event:
        """Cancel an event (422 when it is already canceled or declined)."""
        event = self.event(event_id)
        if event.state in ("canceled", "declined"):
            raise message_error(422, f"Event is already {event.state}")
        event.state = "canceled"
        event.canceled_at = self._now().replace(microsecond=0)
        event.cancel_reason = reason if isinstance(reason, str) and reason else None
        self._emit.emit("event.canceled", event)
        return event

    def approve(self, event_id: str) -> Event:
        """Approve a requested event: ``event.approved`` then ``event.created``."""
        event = self._awaiting(event_id)
        event.state = "confirmed"
        self._emit.emit("event.approved", event)
        self._emit.emit("event.created", event)
        return event

    def decline(self, event_id: str, reason: Any = None) -> Event:
        """Decline a requested event: ``event.declined``."""
        event = self._awaiting(event_id)
        event.state = "declined"
        event.cancel_reason = reason if isinstance(reason, str) and reason else None
        for attendee in event.attendees:
            if attendee.is_scheduler:
                attendee.response_status = "declined"
        self._emit.emit("event.declined", event)
        return event

    def _awaiting(self, event_id: str) -> Event:
        event = self.event(event_id)
        if event.state != "awaiting_approval":
            raise message_error(422, "Event is not awaiting approval")
        return event

    def reschedule(self, event_id: str, body: Any) -> Event:
        """Move an event to an open time: ``event.rescheduled``."""
        event = self.event(event_id)
        data = body if isinstance(body, dict) else {}
        start = parse_iso(data.get("start_at"))
        if start is None:
            raise field_errors({"start_at": ["is invalid"]})
        end = parse_iso(data.get("end_at")) or start + timedelta(minutes=event.duration)
        if event.state in ("canceled", "declined"):
            raise message_error(422, f"Event is {event.state}")
        link = self.link(event.link_id)
        host_id = self.host_for(link, start, end, ignore=event.id)
        if host_id is None:
            raise field_errors({"start_at": ["is not an available time slot"]})
        if event.original_start is None:
            event.original_start, event.original_end = event.start, event.end
        self.state.move_event(event, start, end)
        event.rescheduled_at = self._now().replace(microsecond=0)
        reason = data.get("reschedule_reason")
        event.reschedule_reason = reason if isinstance(reason, str) and reason else None
        self._emit.emit("event.rescheduled", event)
        return event

    def change(self, event_id: str, body: Any) -> Event:
        """Edit summary/description/location/metadata: ``event.changed``."""
        event = self.event(event_id)
        data = body if isinstance(body, dict) else {}
        for name in ("summary", "description", "location"):
            if isinstance(data.get(name), str):
                setattr(event, name, data[name])
        if isinstance(data.get("metadata"), dict):
            event.metadata = dict(data["metadata"])
        self._emit.emit("event.changed", event)
        return event
