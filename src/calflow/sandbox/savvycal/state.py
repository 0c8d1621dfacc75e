"""In-memory state of the SavvyCal simulator: user, links, events (sorted index), webhooks."""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_UUID_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)
#: Event states that occupy the host's time (a slot is not open while one overlaps).
BLOCKING_STATES = frozenset({"confirmed", "awaiting_approval", "tentative", "awaiting_checkout"})
#: Every event state the API knows.
EVENT_STATES = (
    "confirmed",
    "canceled",
    "awaiting_approval",
    "declined",
    "tentative",
    "awaiting_checkout",
    "checkout_expired",
    "awaiting_reschedule",
)


@dataclass(slots=True)
class Person:
    """A SavvyCal user (the account owner or a team member hosting round-robin links)."""

    id: str
    email: str
    first_name: str
    last_name: str
    time_zone: str

    @property
    def display_name(self) -> str:
        """``first last``."""
        return f"{self.first_name} {self.last_name}"


@dataclass(slots=True)
class Attendee:
    """An event attendee (organizer, scheduler or guest)."""

    id: str
    email: str
    display_name: str
    first_name: str
    last_name: str
    time_zone: str
    phone_number: str | None = None
    is_organizer: bool = False
    is_scheduler: bool = False
    response_status: str = "accepted"
    fields: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Link:
    """A scheduling link; ``host_ids`` with several people means round robin, a
    ``group_size`` makes its events group sessions of at most that many attendees."""

    id: str
    slug: str
    name: str
    description: str
    durations: list[int]
    default_duration: int
    host_ids: list[str]
    time_zone: str
    created_at: datetime
    scope: dict[str, str] | None = None
    requires_approval: bool = False
    increment: int = 30
    minimum_notice_min: int = 60
    buffer_before: int = 0
    buffer_after: int = 0
    fields: list[dict[str, Any]] = field(default_factory=list)
    state: str = "active"
    group_size: int | None = None


@dataclass(slots=True)
class Event:
    """A scheduled event. ``seq`` orders creation and breaks ties in the sort key."""

    seq: int
    id: str
    uuid: str
    state: str
    summary: str
    link_id: str
    host_id: str
    start: datetime
    end: datetime
    created_at: datetime
    attendees: list[Attendee]
    location: str | None = None
    description: str | None = None
    conferencing: dict[str, Any] = field(default_factory=dict)
    canceled_at: datetime | None = None
    cancel_reason: str | None = None
    rescheduled_at: datetime | None = None
    reschedule_reason: str | None = None
    original_start: datetime | None = None
    original_end: datetime | None = None
    payment: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    buffer_before: int = 0
    buffer_after: int = 0
    is_group_session: bool = False
    me_attending: bool = True
    source: str = "api"
    lazy_seed: int | None = None

    @property
    def key(self) -> tuple[int, int]:
        """The sort key of the events index: (start epoch seconds, seq)."""
        return (int(self.start.timestamp()), self.seq)

    @property
    def duration(self) -> int:
        """Length in minutes."""
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def blocks_time(self) -> bool:
        """Whether the event occupies its host's time."""
        return self.state in BLOCKING_STATES


@dataclass(slots=True)
class Webhook:
    """A webhook subscription (SavvyCal sends every event type to every webhook)."""

    seq: int
    id: str
    url: str
    secret: str
    created_at: datetime
    state: str = "active"


@dataclass(slots=True)
class Delivery:
    """One webhook delivery attempt as recorded by the sandbox."""

    id: int
    webhook_id: str
    url: str
    type: str
    payload_id: str
    attempt: int
    attempted_at: str
    body: str
    headers: dict[str, str]
    status_code: int | None = None
    error: str | None = None


class SavvycalState:
    """All mutable data of one SavvyCal simulator, with id generation and the events index.

    ``order`` is the list of event sort keys ``(start epoch s, seq)`` kept sorted, so
    listing, cursor pagination and conflict checks are bisections, not full scans.
    """

    def __init__(self, random_seed: int) -> None:
        self.rng = random.Random(random_seed)
        self.user: Person | None = None
        self.people: dict[str, Person] = {}
        self.links: dict[str, Link] = {}
        self.events: dict[str, Event] = {}
        self.by_seq: dict[int, Event] = {}
        self.order: list[tuple[int, int]] = []
        self.webhooks: dict[str, Webhook] = {}
        self.deliveries: list[Delivery] = []
        self._seq = 0
        self._delivery_id = 0

    # ids ---------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        """``<prefix>_<26 uppercase characters>`` (ULID-like, deterministic from the seed)."""
        return f"{prefix}_{self.rng.getrandbits(104):026X}"

    def new_uuid(self) -> str:
        """A version-4 UUID drawn from the seeded generator."""
        h = f"{self.rng.getrandbits(128) & _UUID_MASK | _UUID_V4:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def new_hex(self, nbytes: int = 16) -> str:
        """Random lowercase hex from the seeded generator."""
        return self.rng.randbytes(nbytes).hex()

    def next_seq(self) -> int:
        """Allocate the next creation sequence number (events and webhooks)."""
        self._seq += 1
        return self._seq

    def next_delivery_id(self) -> int:
        """Allocate a delivery id."""
        self._delivery_id += 1
        return self._delivery_id

    @property
    def me(self) -> Person:
        """The account the tokens belong to."""
        assert self.user is not None
        return self.user

    # events index ------------------------------------------------------
    def add_event(self, event: Event) -> None:
        """Store ``event`` and insert its key into the sorted index."""
        self.events[event.id] = event
        self.by_seq[event.seq] = event
        bisect.insort(self.order, event.key)

    def bulk_load(self, events: list[Event]) -> None:
        """Store many events at once and sort the index once (used by the seed)."""
        for event in events:
            self.events[event.id] = event
            self.by_seq[event.seq] = event
        self.order.extend(e.key for e in events)
        self.order.sort()

    def move_event(self, event: Event, start: datetime, end: datetime) -> None:
        """Change an event's time, keeping the index sorted."""
        index = bisect.bisect_left(self.order, event.key)
        if index < len(self.order) and self.order[index] == event.key:
            del self.order[index]
        event.start, event.end = start, end
        bisect.insort(self.order, event.key)

    def overlapping(
        self, start: datetime, end: datetime, *, max_minutes: int = 24 * 60
    ) -> list[Event]:
        """Events whose time range intersects ``[start, end)`` (any state)."""
        lo = bisect.bisect_left(self.order, (int(start.timestamp()) - max_minutes * 60, -1))
        hi = bisect.bisect_left(self.order, (int(end.timestamp()), -1))
        found = []
        for _, seq in self.order[lo:hi]:
            event = self.by_seq[seq]
            if event.end > start and event.start < end:
                found.append(event)
        return found

    def is_busy(
        self, host_id: str, start: datetime, end: datetime, *, ignore: str | None = None
    ) -> bool:
        """Whether ``host_id`` has a time-blocking event intersecting ``[start, end)``."""
        return any(
            e.blocks_time and e.host_id == host_id and e.id != ignore
            for e in self.overlapping(start, end)
        )
