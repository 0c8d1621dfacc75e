"""Seed data: users, a team, event types and (optionally) N deterministic bookings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calflow.sandbox.calcom.state import Attendee, Booking, CalcomState, EventType, Team, User

DEMO_USERNAME = "demo"
TEAM_SLUG = "demo-team"

_FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Tim"]
_LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie"]
_ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/London",
    "Australia/Sydney",
    "UTC",
]
_PHONES = ["+1415555", "+4477009", "+3361234", "+4915123", "+8190123"]


def seed_static(state: CalcomState) -> None:
    """Users ``demo`` (id 1, Europe/Paris) and ``alex`` (id 2), team ``demo-team``, event types."""
    state.users[1] = User(1, DEMO_USERNAME, "Demo Host", "demo@example.com", "Europe/Paris")
    state.users[2] = User(2, "alex", "Alex Colleague", "alex@example.com", "America/New_York")
    state.teams[1] = Team(1, TEAM_SLUG, "Demo Team", [1, 2])
    types = [
        EventType(101, "30min", "30 Minute Meeting", 30, 1, [1], description="A quick chat."),
        EventType(102, "60min", "60 Minute Meeting", 60, 1, [1], description="An hour."),
        EventType(
            103, "flexible", "Flexible Consultation", 30, 1, [1], length_options=[15, 30, 60]
        ),
        EventType(
            104,
            "consultation",
            "Consultation (requires confirmation)",
            30,
            1,
            [1],
            requires_confirmation=True,
        ),
        EventType(105, "workshop", "Group Workshop", 60, 1, [1], seats_per_slot=3),
        EventType(106, "secret-15min", "Secret 15 Minutes", 15, 1, [1], hidden=True),
        EventType(201, "team-sync", "Team Sync", 30, None, [1, 2], team_id=1),
        EventType(301, "30min", "30 Minute Meeting", 30, 2, [2]),
    ]
    for et in types:
        state.event_types[et.id] = et


def _attendee(rng: random.Random, state: CalcomState) -> Attendee:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    phone = rng.choice(_PHONES) + f"{rng.randrange(10000, 99999)}" if rng.random() < 0.4 else None
    return Attendee(
        name=f"{first} {last}",
        email=f"{first}.{last}{rng.randrange(100)}@example.org".lower(),
        time_zone=rng.choice(_ZONES),
        language=rng.choice(["en", "en", "fr", "de"]),
        phone_number=phone,
        id=state.next_attendee_id(),
    )


def seed_bookings(state: CalcomState, count: int, now: datetime) -> None:
    """``count`` bookings over the past and next 30 days (some cancelled, some rescheduled)."""
    rng = random.Random(state.random_seed)
    choices = [101, 102, 103, 104, 105, 201]
    attempts = 0
    made = 0
    while made < count and attempts < count * 50:
        attempts += 1
        et = state.event_types[rng.choice(choices)]
        host = state.users[et.host_ids[0]]
        day = (now + timedelta(days=rng.randint(-30, 30))).astimezone(ZoneInfo(host.time_zone))
        if day.weekday() >= 5:
            continue
        slot = rng.randrange(0, (8 * 60 - et.length) // 30 + 1) * 30
        local = datetime.combine(
            day.date(), time(9 + slot // 60, slot % 60), ZoneInfo(host.time_zone)
        )
        start = local.astimezone(UTC)
        end = start + timedelta(minutes=et.length)
        if any(
            b.start < end and start < b.end and b.blocks_time() for b in state.bookings.values()
        ):
            continue
        booking = _make(state, rng, et, start, now)
        made += 1
        roll = rng.random()
        if roll < 0.15:
            booking.status = "cancelled"
            booking.cancellation_reason = rng.choice(["Schedule conflict", "No longer needed", ""])
            booking.cancelled_by_email = booking.attendees[0].email
        elif roll < 0.27 and made < count:
            # the same local time days later (across a DST change, the same UTC time is not)
            moved = (local + timedelta(days=rng.choice([1, 2, 7]))).astimezone(UTC)
            moved_end = moved + timedelta(minutes=et.length)
            clash = any(
                b.start < moved_end and moved < b.end and b.blocks_time()
                for b in state.bookings.values()
            )
            if moved.astimezone(local.tzinfo).weekday() < 5 and not clash:
                new = _make(state, rng, et, moved, now, attendee=booking.attendees[0])
                new.rescheduled_from_uid = booking.uid
                new.rescheduling_reason = "Seeded reschedule"
                new.rescheduled_by_email = booking.attendees[0].email
                booking.status = "cancelled"
                booking.rescheduled_to_uid = new.uid
                made += 1


def _make(
    state: CalcomState,
    rng: random.Random,
    et: EventType,
    start: datetime,
    now: datetime,
    attendee: Attendee | None = None,
) -> Booking:
    host = state.users[et.host_ids[0]]
    person = attendee or _attendee(rng, state)
    created = min(start - timedelta(days=rng.randint(1, 14)), now)
    uid = state.new_uid()
    responses: dict[str, object] = {"name": person.name, "email": person.email}
    if person.phone_number:
        responses["attendeePhoneNumber"] = person.phone_number
    pending = et.requires_confirmation and start > now
    booking = Booking(
        id=state.next_booking_id(),
        uid=uid,
        event_type_id=et.id,
        user_id=host.id,
        host_ids=list(et.host_ids),
        title=f"{et.title} between {host.name} and {person.name}",
        description="",
        status="pending" if pending else "accepted",
        start=start,
        end=start + timedelta(minutes=et.length),
        attendees=[person],
        location=et.location,
        created_at=created,
        updated_at=created,
        booking_fields_responses=responses,
        ics_uid=f"{uid}@Cal.com",
        source="web",
    )
    state.bookings[uid] = booking
    return booking
