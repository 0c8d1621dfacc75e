"""BookingEvent: one normalized booking change, whatever provider or channel it came from.

Every path into calflow (a provider webhook, calflow's own booking actions, a replay
of history, the REST API) produces this one shape; workflows only ever see it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

Source = Literal["webhook", "action", "replay", "api"]
SOURCES: tuple[Source, ...] = ("webhook", "action", "replay", "api")

KINDS = (
    "created",
    "rescheduled",
    "cancelled",
    "requested",
    "approved",
    "declined",
    "no_show_updated",
    "meeting_started",
    "meeting_ended",
    "payment_initiated",
    "paid",
    "guests_added",
    "changed",
    "checkout_pending",
    "checkout_expired",
    "attendee_added",
    "attendee_cancelled",
    "attendee_rescheduled",
    "other",
)
"""Normalized kinds. A provider type calflow does not know becomes ``other`` and keeps
its original name in ``BookingEvent.original_type``: never dropped."""


@dataclass(frozen=True)
class Person:
    """An organizer or attendee. ``phone`` is E.164 when any source had a usable one."""

    name: str | None = None
    email: str | None = None
    time_zone: str | None = None
    language: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    no_show: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "time_zone": self.time_zone,
            "language": self.language,
            "phone": self.phone,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "no_show": self.no_show,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Person:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class EventType:
    """The booked event type (Cal.com event type, SavvyCal scheduling link)."""

    id: str | None = None
    slug: str | None = None
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "slug": self.slug, "title": self.title}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class BookingEvent:
    """One booking change. Times are aware UTC datetimes."""

    provider: str
    """App key of the provider: ``cal_com`` or ``savvycal``."""
    kind: str
    booking_uid: str
    source: Source
    occurred_at: datetime
    received_at: datetime
    original_type: str = ""
    """The provider's own name (``BOOKING_CREATED``, ``event.canceled``…)."""
    previous_uid: str | None = None
    """For reschedules that create a new booking (Cal.com): the old booking's uid."""
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None
    title: str | None = None
    event_type: EventType | None = None
    organizer: Person | None = None
    attendees: tuple[Person, ...] = ()
    location: str | None = None
    meeting_url: str | None = None
    reason: str | None = None
    """Cancellation, rejection or reschedule reason."""
    integration_id: str | None = None
    seat: str | None = None
    """For a change that concerns one attendee of a shared booking (a Cal.com seat, a
    SavvyCal group-event attendee): that attendee's email, lowercased. The event's
    ``attendees`` is then only that person, its dedupe key and ordering are the seat's,
    and a cancel of the seat ends only the runs that seat started."""
    party: tuple[str, ...] = ()
    """With ``seat``: the seats (emails) the delivery listed on the booking, so the inbox
    can tell a whole seated booking moving from one seat holder moving alone."""
    history: bool = False
    """Brought in by a replay of history (``calflow replay --into calflow`` without
    ``--run-workflows``): if it occurred more than the grace (60 s) before it was
    received, it starts no workflow, though it still moves and ends the booking's runs.
    Not part of the dedupe key: the same change from a webhook is the same event."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)

    def dedupe_key(self) -> str:
        """Identifies the booking change, not the delivery.

        A webhook retry, the webhook for a booking calflow's own action made, a replay
        and a second replay of the same change all share it. A reschedule adds the new
        start (SavvyCal keeps the event id across reschedules); a no-show update adds the
        no-show flags; a per-seat change adds the seat (each seat holder of a seated
        booking is a booking change of their own); the key never depends on when or how
        the change arrived.
        """
        parts = [self.provider, self.booking_uid, self.kind]
        if self.seat:
            parts.append(f"seat={self.seat}")
        if self.kind in ("rescheduled", "attendee_rescheduled"):
            parts.append(_iso(self.start) or "")
        elif self.kind == "no_show_updated":
            flags = sorted(f"{a.email}={a.no_show}" for a in self.attendees)
            parts.append(",".join(flags))
        elif self.kind == "other":
            parts.append(self.original_type)
        if not self.booking_uid or self.kind == "other":  # a form, a recording, a poll…
            body = json.dumps(dict(self.raw), sort_keys=True, default=str)
            parts.append(hashlib.sha256(body.encode()).hexdigest())
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
        return f"{self.provider}:{digest}"

    @property
    def phones(self) -> list[str]:
        return [a.phone for a in self.attendees if a.phone]

    def with_source(self, source: Source, integration_id: str | None = None) -> BookingEvent:
        return replace(self, source=source, integration_id=integration_id or self.integration_id)

    def to_dict(self, raw: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "provider": self.provider,
            "kind": self.kind,
            "original_type": self.original_type,
            "booking_uid": self.booking_uid,
            "previous_uid": self.previous_uid,
            "source": self.source,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "status": self.status,
            "title": self.title,
            "event_type": self.event_type.to_dict() if self.event_type else None,
            "organizer": self.organizer.to_dict() if self.organizer else None,
            "attendees": [a.to_dict() for a in self.attendees],
            "location": self.location,
            "meeting_url": self.meeting_url,
            "reason": self.reason,
            "integration_id": self.integration_id,
            "seat": self.seat,
            "party": list(self.party),
            "history": self.history,
            "metadata": dict(self.metadata),
            "occurred_at": _iso(self.occurred_at),
            "received_at": _iso(self.received_at),
        }
        if raw:
            out["raw"] = dict(self.raw)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BookingEvent:
        et = data.get("event_type")
        org = data.get("organizer")
        return cls(
            provider=str(data["provider"]),
            kind=str(data["kind"]),
            original_type=str(data.get("original_type") or ""),
            booking_uid=str(data["booking_uid"]),
            previous_uid=data.get("previous_uid"),
            source=data["source"],
            start=_parse(data.get("start")),
            end=_parse(data.get("end")),
            status=data.get("status"),
            title=data.get("title"),
            event_type=EventType(**et) if isinstance(et, Mapping) else None,
            organizer=Person.from_dict(org) if isinstance(org, Mapping) else None,
            attendees=tuple(Person.from_dict(a) for a in data.get("attendees") or ()),
            location=data.get("location"),
            meeting_url=data.get("meeting_url"),
            reason=data.get("reason"),
            integration_id=data.get("integration_id"),
            seat=data.get("seat") or None,
            party=tuple(str(p) for p in data.get("party") or ()),
            history=data.get("history") is True,
            metadata=dict(data.get("metadata") or {}),
            occurred_at=_parse(data.get("occurred_at")) or datetime.now(UTC),
            received_at=_parse(data.get("received_at")) or datetime.now(UTC),
            raw=dict(data.get("raw") or {}),
        )
