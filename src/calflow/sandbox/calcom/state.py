"""In-memory state of the Cal.com simulator: users, teams, event types, bookings, webhooks."""

from __future__ import annotations

import random
import string
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

_UUID_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)
_BASE58 = "".join(c for c in string.digits + string.ascii_letters if c not in "0OIl")


@dataclass
class Availability:
    """Weekly working hours in the owner's time zone (weekday 0 = Monday)."""

    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    start_minute: int = 9 * 60
    end_minute: int = 17 * 60


@dataclass
class User:
    """A Cal.com user (event type owner / booking host)."""

    id: int
    username: str
    name: str
    email: str
    time_zone: str
    locale: str = "en"
    availability: Availability = field(default_factory=Availability)

    def host_json(self) -> dict[str, Any]:
        """The ``BookingHost`` object of API v2."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "username": self.username,
            "timeZone": self.time_zone,
        }


@dataclass
class Team:
    """A team owning collective event types."""

    id: int
    slug: str
    name: str
    member_ids: list[int]


@dataclass
class EventType:
    """An event type; ``team_id`` set means a team (collective) event type."""

    id: int
    slug: str
    title: str
    length: int
    owner_id: int | None
    host_ids: list[int]
    team_id: int | None = None
    description: str = ""
    length_options: list[int] = field(default_factory=list)
    hidden: bool = False
    requires_confirmation: bool = False
    seats_per_slot: int | None = None
    seats_show_attendees: bool = False
    minimum_notice_min: int = 120
    booking_window_days: int = 60
    location: str = "integrations:daily"


@dataclass
class Attendee:
    """A booking attendee."""

    name: str
    email: str
    time_zone: str
    language: str = "en"
    absent: bool = False
    phone_number: str | None = None
    id: int = 0
    #: A seat's ``referenceUid`` (BookingSeat) on seated event types, else ``None``.
    seat_uid: str | None = None
    #: The seat's own ``data.responses`` (seated bookings keep responses per seat).
    seat_responses: dict[str, Any] = field(default_factory=dict)


@dataclass
class Booking:
    """A booking row."""

    id: int
    uid: str
    event_type_id: int
    user_id: int
    host_ids: list[int]
    title: str
    description: str
    status: str  # accepted | pending | cancelled | rejected
    start: datetime
    end: datetime
    attendees: list[Attendee]
    location: str
    created_at: datetime
    updated_at: datetime
    guests: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    booking_fields_responses: dict[str, Any] = field(default_factory=dict)
    cancellation_reason: str | None = None
    cancelled_by_email: str | None = None
    rejection_reason: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_by_email: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled_to_uid: str | None = None
    absent_host: bool = False
    sms_reminder_number: str | None = None
    ics_uid: str = ""
    source: str = "api"
    guest_requests: int = 0

    @property
    def duration(self) -> int:
        """Length in minutes."""
        return int((self.end - self.start).total_seconds() // 60)

    def blocks_time(self) -> bool:
        """Whether the booking occupies its hosts' time."""
        return self.status in ("accepted", "pending")


@dataclass
class Webhook:
    """A user-level webhook subscription."""

    id: int
    user_id: int
    subscriber_url: str
    triggers: list[str]
    active: bool
    payload_template: str | None = None
    secret: str | None = None

    def output(self) -> dict[str, Any]:
        """``UserWebhookOutputDto``."""
        return {
            "payloadTemplate": self.payload_template,
            "userId": self.user_id,
            "id": self.id,
            "triggers": list(self.triggers),
            "subscriberUrl": self.subscriber_url,
            "active": self.active,
            "secret": self.secret,
        }


@dataclass
class Delivery:
    """One webhook delivery attempt as recorded by the sandbox."""

    id: int
    webhook_id: int
    url: str
    trigger: str
    attempted_at: str
    body: str
    headers: dict[str, str]
    status_code: int | None = None
    error: str | None = None


class CalcomState:
    """All mutable data of one Cal.com simulator, with id and uid generation."""

    def __init__(self, random_seed: int) -> None:
        self.random_seed = random_seed
        self.rng = random.Random(random_seed)
        self.users: dict[int, User] = {}
        self.teams: dict[int, Team] = {}
        self.event_types: dict[int, EventType] = {}
        self.bookings: dict[str, Booking] = {}
        self.webhooks: dict[int, Webhook] = {}
        self.deliveries: list[Delivery] = []
        self._next_booking_id = 1
        self._next_attendee_id = 1
        self._next_webhook_id = 1
        self._next_delivery_id = 1
        self.api_user_id = 1

    def new_uid(self) -> str:
        """A 22-character base58 uid, like Cal.com's short UUIDs."""
        return "".join(self.rng.choice(_BASE58) for _ in range(22))

    def new_seat_uid(self) -> str:
        """A seat ``referenceUid``: a v4 UUID, as short-uuid's ``uuid()`` makes."""
        h = f"{self.rng.getrandbits(128) & _UUID_MASK | _UUID_V4:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def seat(self, seat_uid: str) -> tuple[Booking, Attendee] | None:
        """The booking and attendee holding ``seat_uid``, if any."""
        for booking in self.bookings.values():
            for attendee in booking.attendees:
                if attendee.seat_uid == seat_uid:
                    return booking, attendee
        return None

    def next_booking_id(self) -> int:
        """Allocate a booking id."""
        value = self._next_booking_id
        self._next_booking_id += 1
        return value

    def next_attendee_id(self) -> int:
        """Allocate an attendee id."""
        value = self._next_attendee_id
        self._next_attendee_id += 1
        return value

    def next_webhook_id(self) -> int:
        """Allocate a webhook id."""
        value = self._next_webhook_id
        self._next_webhook_id += 1
        return value

    def next_delivery_id(self) -> int:
        """Allocate a delivery id."""
        value = self._next_delivery_id
        self._next_delivery_id += 1
        return value

    @property
    def api_user(self) -> User:
        """The user the API key belongs to."""
        return self.users[self.api_user_id]

    def user_by_username(self, username: str) -> User | None:
        """Find a user by username."""
        return next((u for u in self.users.values() if u.username == username), None)

    def team_by_slug(self, slug: str) -> Team | None:
        """Find a team by slug."""
        return next((t for t in self.teams.values() if t.slug == slug), None)

    def event_type_by_slug(
        self, slug: str, *, user_id: int | None = None, team_id: int | None = None
    ) -> EventType | None:
        """Find a user's or a team's event type by slug."""
        for et in self.event_types.values():
            if et.slug != slug:
                continue
            if team_id is not None and et.team_id == team_id:
                return et
            if user_id is not None and et.team_id is None and et.owner_id == user_id:
                return et
        return None

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (used by ``GET /_sandbox/state``)."""
        from calflow.sandbox.calcom.serialize import booking_output

        return {
            "users": [asdict(u) for u in self.users.values()],
            "teams": [asdict(t) for t in self.teams.values()],
            "event_types": [asdict(e) for e in self.event_types.values()],
            "bookings": [booking_output(self, b) for b in self.bookings.values()],
            "webhooks": [w.output() for w in self.webhooks.values()],
            "deliveries": [asdict(d) for d in self.deliveries],
        }
