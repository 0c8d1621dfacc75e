"""JSON shapes of the SavvyCal API v1 resources (Event, Scheduling Link, Webhook, user)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from calflow.sandbox.savvycal.seed import materialize
from calflow.sandbox.savvycal.state import Attendee, Event, Link, Person, SavvycalState, Webhook

WEBHOOK_VERSION = "2020-11-18"


def iso(value: datetime | None) -> str | None:
    """``2024-08-13T09:00:00Z`` (seconds precision, UTC), or ``None``."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 string (naive means UTC); ``None`` if invalid."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def attendee_json(attendee: Attendee) -> dict[str, Any]:
    """The documented Attendee (developers.savvycal.com ``Event`` schema): no
    ``is_scheduler`` (the scheduler is the Event's own ``scheduler`` field)."""
    return {
        "id": attendee.id,
        "email": attendee.email,
        "display_name": attendee.display_name,
        "first_name": attendee.first_name,
        "last_name": attendee.last_name,
        "phone_number": attendee.phone_number,
        "time_zone": attendee.time_zone,
        "is_organizer": attendee.is_organizer,
        "marketing_opt_in": False,
        "response_status": attendee.response_status,
        "fields": [dict(f) for f in attendee.fields],
    }


def group_size(state: SavvycalState, event: Event) -> int:
    """How many attendees (the organizer not counted) the event may hold: its link's
    ``group_size`` for a group session, else 1."""
    link = state.links.get(event.link_id)
    if event.is_group_session and link is not None and link.group_size:
        return link.group_size
    return 1


def link_preview(link: Link) -> dict[str, str]:
    """A Scheduling Link Preview ``{id, name, slug}``."""
    return {"id": link.id, "name": link.name, "slug": link.slug}


def event_json(state: SavvycalState, event: Event) -> dict[str, Any]:
    """The Event resource, with the documented-required ``description_settings`` and
    ``location_settings`` (objects the schema gives no properties for: sent empty)."""
    materialize(state, event)
    link = state.links.get(event.link_id)
    organizer = next((a for a in event.attendees if a.is_organizer), None)
    scheduler = next((a for a in event.attendees if a.is_scheduler), None)
    return {
        "id": event.id,
        "uuid": event.uuid,
        "state": event.state,
        "summary": event.summary,
        "description": event.description,
        "description_settings": {},
        "additional_info": None,
        "location": event.location,
        "location_settings": {},
        "created_at": iso(event.created_at),
        "start_at": iso(event.start),
        "end_at": iso(event.end),
        "duration": event.duration,
        "buffer_before": event.buffer_before,
        "buffer_after": event.buffer_after,
        "canceled_at": iso(event.canceled_at),
        "cancel_reason": event.cancel_reason,
        "rescheduled_at": iso(event.rescheduled_at),
        "reschedule_reason": event.reschedule_reason,
        "original_start_at": iso(event.original_start or event.start),
        "original_end_at": iso(event.original_end or event.end),
        "conferencing": dict(event.conferencing),
        "is_group_session": event.is_group_session,
        "maximum_group_size": group_size(state, event),
        "link": link_preview(link) if link else None,
        "poll": None,
        "scope": dict(link.scope) if link and link.scope else None,
        "organizer": attendee_json(organizer) if organizer else None,
        "scheduler": attendee_json(scheduler) if scheduler else None,
        "attendees": [attendee_json(a) for a in event.attendees],
        "payment": dict(event.payment) if event.payment else None,
        "metadata": dict(event.metadata),
        "url": f"https://savvycal.com/events/{event.uuid}",
    }


def link_json(link: Link) -> dict[str, Any]:
    """The Scheduling Link resource."""
    return {
        "id": link.id,
        "state": link.state,
        "slug": link.slug,
        "name": link.name,
        "private_name": None,
        "description": link.description,
        "durations": list(link.durations),
        "default_duration": link.default_duration,
        "increment": link.increment,
        "time_zone": link.time_zone,
        "requires_approval": link.requires_approval,
        "scope": dict(link.scope) if link.scope else None,
        "fields": [dict(f) for f in link.fields],
        "url": f"https://savvycal.com/{link.slug}",
        "created_at": iso(link.created_at),
        "updated_at": iso(link.created_at),
    }


def user_json(person: Person) -> dict[str, Any]:
    """``GET /v1/me``."""
    return {
        "id": person.id,
        "email": person.email,
        "display_name": person.display_name,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "time_zone": person.time_zone,
        "plan": "premier",
        "avatar_url": None,
    }


def webhook_json(hook: Webhook) -> dict[str, Any]:
    """The Webhook resource."""
    return {
        "id": hook.id,
        "url": hook.url,
        "secret": hook.secret,
        "state": hook.state,
        "version": WEBHOOK_VERSION,
        "created_at": iso(hook.created_at),
    }


def person_json(person: Person) -> dict[str, Any]:
    """A team member as shown in ``/_sandbox/state``."""
    return asdict(person)
