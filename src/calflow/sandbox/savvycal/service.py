"""Event lifecycle: open slots, booking, cancel, approve/decline, reschedule, change.

Every change emits its webhook through the dispatcher (booking on an approval link
emits ``event.requested``; approving emits ``event.approved`` then ``event.created``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calflow.sandbox.savvycal.errors import field_errors, message_error, not_found
from calflow.sandbox.savvycal.seed import conferencing, host_attendee, materialize, summary
from calflow.sandbox.savvycal.serialize import parse_iso
from calflow.sandbox.savvycal.state import Attendee, Event, Link, SavvycalState

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
WORK_START, WORK_END = time(9), time(17)


class Emitter(Protocol):
    """What the service needs from the webhook dispatcher."""

    def emit(self, type_: str, event: Event) -> None:
        """Deliver ``type_`` with ``event`` as payload to every webhook."""


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class EventService:
    """Business rules of the simulator, over the current state."""

    def __init__(
        self, state: Callable[[], SavvycalState], now: Callable[[], datetime], emitter: Emitter
    ) -> None:
        self._state = state
        self._now = now
        self._emit = emitter

    @property
    def state(self) -> SavvycalState:
        """The current state."""
        return self._state()

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
    def _host_for(
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
                        if self._host_for(link, start, end) is not None:
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
        errors: dict[str, list[str]] = {}
        for name in ("display_name", "email", "start_at", "end_at", "time_zone"):
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                errors[name] = ["can't be blank"]
        if "email" not in errors and not _EMAIL.match(data["email"]):
            errors["email"] = ["has invalid format"]
        if "time_zone" not in errors and _zone(data["time_zone"]) is None:
            errors["time_zone"] = ["is invalid"]
        start, end = parse_iso(data.get("start_at")), parse_iso(data.get("end_at"))
        if "start_at" not in errors and start is None:
            errors["start_at"] = ["is invalid"]
        if "end_at" not in errors and end is None:
            errors["end_at"] = ["is invalid"]
        phone = data.get("phone_number")
        if phone is not None and not isinstance(phone, str):
            errors["phone_number"] = ["is invalid"]
        fields = data.get("fields", [])
        if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
            errors["fields"] = ["is invalid"]
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            errors["metadata"] = ["is invalid"]
        if errors:
            raise field_errors(errors)
        assert start is not None and end is not None
        duration = int((end - start).total_seconds() // 60)
        if (end - start).total_seconds() % 60 or duration not in link.durations:
            raise field_errors({"end_at": ["does not match an available duration"]})
        host_id = self._host_for(link, start, end)
        if host_id is None:
            raise field_errors({"start_at": ["is not an available time slot"]})
        return self._create(link, host_id, data, start, end, source)

    def _create(
        self, link: Link, host_id: str, data: dict[str, Any], start: datetime, end: datetime,
        source: str,
    ) -> Event:  # fmt: skip
        st = self.state
        name = data["display_name"].strip()
        first, _, last = name.partition(" ")
        scheduler = Attendee(
            id=st.new_id("attendee"),
            email=data["email"].strip(),
            display_name=name,
            first_name=first,
            last_name=last,
            time_zone=data["time_zone"],
            phone_number=data.get("phone_number"),
            is_scheduler=True,
            fields=[dict(f) for f in data.get("fields", [])],
        )
        host = st.people[host_id]
        now = self._now().replace(microsecond=0)
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
            metadata=dict(data.get("metadata", {})),
            me_attending=host_id == st.me.id,
            buffer_before=link.buffer_before,
            buffer_after=link.buffer_after,
            source=source,
        )
        st.add_event(event)
        self._emit.emit("event.requested" if link.requires_approval else "event.created", event)
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
        host_id = self._host_for(link, start, end, ignore=event.id)
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
