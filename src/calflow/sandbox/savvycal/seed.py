"""Seed data: the account, a colleague, four scheduling links and N deterministic events.

Seeded events sit on the 30-minute grid of the owner's working hours (Mon-Fri 9-17,
America/New_York) without overlapping each other, about 70 % in the past and 30 % in
the future, in every state. Everything derives from ``random_seed``; 100 000 events
build in a few seconds.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from calflow.sandbox.savvycal.state import Attendee, Event, Link, Person, SavvycalState

T = TypeVar("T")
OWNER_ZONE = "America/New_York"
GROUP_SIZE = 10
"""Attendees a session of the ``workshop`` link holds (the organizer not counted)."""
_SLOTS_PER_DAY = 16  # 9:00-17:00 in 30-minute slots
_FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Tim"]
_LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie"]
# (time zone, E.164 prefix, digits to append)
_LOCALES = [
    ("America/New_York", "+1212555", 4),
    ("America/Los_Angeles", "+1415555", 4),
    ("Europe/London", "+447700900", 3),
    ("Europe/Paris", "+3361234", 4),
    ("Europe/Berlin", "+4915123", 5),
    ("Asia/Tokyo", "+8190123", 5),
    ("Australia/Sydney", "+614123", 5),
]
_PAST_STATES = [("confirmed", 70), ("canceled", 12), ("declined", 5), ("rescheduled", 8)]
_PAST_STATES += [("checkout_expired", 2), ("tentative", 3)]
_FUTURE_STATES = [("confirmed", 56), ("canceled", 10), ("awaiting_approval", 10)]
_FUTURE_STATES += [("rescheduled", 8), ("tentative", 4), ("awaiting_checkout", 4)]
_FUTURE_STATES += [("awaiting_reschedule", 4), ("declined", 4)]


def seed_static(state: SavvycalState, now: datetime) -> None:
    """The owner (``sam@example.com``), colleague ``jordan``, links ``30min``, ``discovery``
    (requires approval), ``team-intro`` (round robin, scope ``acme``) and ``workshop``
    (group sessions of up to ``GROUP_SIZE`` attendees).
    """
    me = Person(state.new_id("user"), "sam@example.com", "Sam", "Rivera", OWNER_ZONE)
    jordan = Person(state.new_id("user"), "jordan@example.com", "Jordan", "Lee", "America/Chicago")
    state.user = me
    state.people = {me.id: me, jordan.id: jordan}
    created = (now - timedelta(days=400)).replace(microsecond=0)
    phone_field = {"id": "field_phone", "label": "Phone", "type": "phone", "required": False}
    links = [
        Link(state.new_id("link"), "30min", "30 Minute Meeting", "A quick chat.", [30], 30,
             [me.id], OWNER_ZONE, created, fields=[phone_field]),
        Link(state.new_id("link"), "discovery", "Discovery Call", "Requires approval.", [30, 60],
             30, [me.id], OWNER_ZONE, created, requires_approval=True),
        Link(state.new_id("link"), "team-intro", "Team Intro", "Round robin.", [60], 60,
             [me.id, jordan.id], OWNER_ZONE, created,
             scope={"id": state.new_id("scope"), "name": "Acme Team", "slug": "acme"}),
        Link(state.new_id("link"), "workshop", "Group Workshop", "Group session.", [60], 60,
             [me.id], OWNER_ZONE, created, buffer_after=0, group_size=GROUP_SIZE),
    ]  # fmt: skip
    state.links = {link.id: link for link in links}


def _weighted(states: list[tuple[str, int]]) -> tuple[list[str], list[float]]:
    """Names and cumulative weights normalised to 1 (for ``bisect`` on ``random()``)."""
    total = sum(w for _, w in states)
    cumulative, acc = [], 0.0
    for _, w in states:
        acc += w / total
        cumulative.append(acc)
    return [s for s, _ in states], cumulative


def _day_slots(day: date, zone: ZoneInfo) -> list[datetime]:
    """The 30-minute working slot starts (UTC) of ``day`` (none on a weekend)."""
    if day.weekday() >= 5:
        return []
    first = datetime.combine(day, time(9), tzinfo=zone).astimezone(UTC)
    return [first + timedelta(minutes=30 * i) for i in range(_SLOTS_PER_DAY)]


def _slots_back(now: datetime, zone: ZoneInfo, count: int) -> datetime:
    """The working slot ``count`` slots of the grid before ``now`` (nights and weekends
    skipped)."""
    day = now.astimezone(zone).date()
    while True:
        before = [s for s in _day_slots(day, zone) if s < now]
        if count <= len(before):
            return before[len(before) - count]
        count -= len(before)
        day -= timedelta(days=1)


def _grid(first_slot: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """Every 30-minute working slot start (UTC) from ``first_slot`` on, forever."""
    day = first_slot.astimezone(zone).date()
    while True:
        yield from (s for s in _day_slots(day, zone) if s >= first_slot)
        day += timedelta(days=1)


def _pick(rng: random.Random, items: Sequence[T]) -> T:
    """``rng.choice`` with one ``random()`` call (several times faster at seed scale)."""
    return items[int(rng.random() * len(items))]


def _rid(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(104):026X}"


def guest(rng: random.Random, *, scheduler: bool) -> Attendee:
    """A random scheduler or guest attendee (E.164 phone on most, varied time zones)."""
    r = rng.getrandbits(48)
    first, last = _FIRST[r % len(_FIRST)], _LAST[(r >> 8) % len(_LAST)]
    zone, prefix, digits = _LOCALES[(r >> 16) % len(_LOCALES)]
    phone = None
    if (r >> 24) % 10 < 7:
        phone = prefix + str(10 ** (digits - 1) + rng.getrandbits(20) % (9 * 10 ** (digits - 1)))
    return Attendee(
        id=_rid(rng, "attendee"),
        email=f"{first.lower()}.{last.lower()}{(r >> 28) % 1000}@example.com",
        display_name=f"{first} {last}",
        first_name=first,
        last_name=last,
        time_zone=zone,
        phone_number=phone,
        is_scheduler=scheduler,
    )


def host_attendee(rng: random.Random, person: Person) -> Attendee:
    """The organizer attendee for ``person``."""
    return Attendee(
        id=_rid(rng, "attendee"),
        email=person.email,
        display_name=person.display_name,
        first_name=person.first_name,
        last_name=person.last_name,
        time_zone=person.time_zone,
        is_organizer=True,
    )


def conferencing(rng: random.Random) -> dict[str, object]:
    """Google Meet conferencing details."""
    code = f"{rng.getrandbits(40):010x}"
    return {
        "type": "google_meet",
        "join_url": f"https://meet.google.com/{code[:3]}-{code[3:7]}-{code[7:]}",
        "meeting_id": code,
        "instructions": None,
    }


def summary(link: Link, scheduler: Attendee, host: Person) -> str:
    """The event title SavvyCal derives from the link and the people."""
    return f"{link.name}: {scheduler.display_name} and {host.display_name}"


def materialize(state: SavvycalState, event: Event) -> Event:
    """Build a seeded event's attendees, summary and conferencing on first use.

    Seeded events keep only a 64-bit ``lazy_seed`` until they are read, which keeps a
    100 000-event seed fast; the details are still fully deterministic.
    """
    if event.lazy_seed is None:
        return event
    rng = random.Random(event.lazy_seed)
    host = state.people[event.host_id]
    link = state.links[event.link_id]
    scheduler = guest(rng, scheduler=True)
    event.attendees = [host_attendee(rng, host), scheduler]
    if event.is_group_session:
        event.attendees += [guest(rng, scheduler=False) for _ in range(2 + rng.getrandbits(2))]
    if event.state == "declined":
        scheduler.response_status = "declined"
    event.summary = summary(link, scheduler, host)
    event.conferencing = conferencing(rng)
    event.lazy_seed = None
    return event


def seed_events(state: SavvycalState, count: int, now: datetime) -> None:
    """``count`` non-overlapping events spread over past and future, in every state."""
    if count <= 0:
        return
    rng = state.rng
    links = list(state.links.values())
    by_slug = {link.slug: link for link in links}
    zone = ZoneInfo(OWNER_ZONE)
    # ~2 slots per event: start that many working slots back for ~70 % past, whatever the
    # weekday and the hour (calendar days back left none upcoming on a Thursday evening)
    grid = _grid(_slots_back(now, zone, math.ceil(0.7 * count * 2.0)), zone)
    past_states, past_cum = _weighted(_PAST_STATES)
    future_states, future_cum = _weighted(_FUTURE_STATES)
    events: list[Event] = []
    for _ in range(count):
        if rng.random() < 0.5:
            next(grid)
        start = next(grid)
        past = start < now
        names, cumulative = (past_states, past_cum) if past else (future_states, future_cum)
        kind = names[min(bisect.bisect(cumulative, rng.random()), len(names) - 1)]
        if kind in ("awaiting_approval", "declined"):
            link = by_slug["discovery"]
        elif kind in ("awaiting_checkout", "checkout_expired"):
            link = by_slug["30min"]
        else:
            link = _pick(rng, links)
        duration = _pick(rng, link.durations)
        if duration == 60:
            next(grid)
        host = state.people[_pick(rng, link.host_ids)]
        events.append(_event(state, link, host, kind, start, duration, now))
    state.bulk_load(events)


def _event(
    state: SavvycalState,
    link: Link,
    host: Person,
    kind: str,
    start: datetime,
    duration: int,
    now: datetime,
) -> Event:
    rng = state.rng
    end = start + timedelta(minutes=duration)
    created = min(start - timedelta(days=1 + int(rng.random() * 14)), now - timedelta(hours=1))
    event = Event(
        seq=state.next_seq(),
        id=state.new_id("event"),
        uuid=state.new_uuid(),
        state="confirmed" if kind == "rescheduled" else kind,
        summary="",
        link_id=link.id,
        host_id=host.id,
        start=start,
        end=end,
        created_at=created.replace(microsecond=0),
        attendees=[],
        location="Google Meet",
        is_group_session=link.group_size is not None,
        lazy_seed=rng.getrandbits(64),
        me_attending=host.id == state.me.id,
        source="seed",
        metadata={"seed": True} if rng.random() < 0.2 else {},
    )
    changed = created + (min(start, now) - created) * rng.random()
    if kind == "canceled":
        event.canceled_at = changed.replace(microsecond=0)
        event.cancel_reason = _pick(rng, ["Something came up", "Double booked", None])
    elif kind == "rescheduled":
        shift = timedelta(days=1 + int(rng.random() * 7))
        event.original_start, event.original_end = start - shift, end - shift
        event.rescheduled_at = changed.replace(microsecond=0)
        event.reschedule_reason = _pick(rng, ["Conflict", None])
    elif kind in ("awaiting_checkout", "checkout_expired"):
        event.payment = {"state": "awaiting_checkout", "amount_total": 5000, "currency": "usd",
                         "stripe_dashboard_url": None}  # fmt: skip
    return event
