"""Availability model: weekly working hours, minimum notice, booking window, busy bookings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from calflow.sandbox.calcom.state import Booking, CalcomState, EventType, User


class SlotProblem(Enum):
    """Why a start time cannot be booked."""

    PAST = "past"
    OUT_OF_BOUNDS = "out_of_bounds"
    UNAVAILABLE = "unavailable"
    SEATS_FULL = "seats_full"


def hosts_of(state: CalcomState, et: EventType) -> list[User]:
    """The users who must all be free for ``et`` (collective for team types)."""
    return [state.users[i] for i in et.host_ids]


def _within_hours(user: User, start: datetime, end: datetime) -> bool:
    zone = ZoneInfo(user.time_zone)
    local_start = start.astimezone(zone)
    local_end = end.astimezone(zone)
    if local_start.date() != (local_end - timedelta(microseconds=1)).date():
        return False
    if local_start.weekday() not in user.availability.weekdays:
        return False
    start_min = local_start.hour * 60 + local_start.minute
    end_min = start_min + int((end - start).total_seconds() // 60)
    av = user.availability
    return av.start_minute <= start_min and end_min <= av.end_minute


def seated_booking_at(
    state: CalcomState, et: EventType, start: datetime, exclude_uid: str | None = None
) -> Booking | None:
    """The active booking of a seated event type starting exactly at ``start``."""
    for b in state.bookings.values():
        if (
            b.event_type_id == et.id
            and b.start == start
            and b.blocks_time()
            and b.uid != exclude_uid
        ):
            return b
    return None


def _busy(
    state: CalcomState, user_id: int, start: datetime, end: datetime, exclude_uid: str | None
) -> list[Booking]:
    return [
        b
        for b in state.bookings.values()
        if b.blocks_time()
        and user_id in b.host_ids
        and b.uid != exclude_uid
        and b.start < end
        and start < b.end
    ]


def check_slot(
    state: CalcomState,
    et: EventType,
    start: datetime,
    duration: int,
    now: datetime,
    exclude_uid: str | None = None,
) -> SlotProblem | None:
    """``None`` when ``start`` can be booked for ``duration`` minutes, else the problem."""
    end = start + timedelta(minutes=duration)
    if start < now:
        return SlotProblem.PAST
    if start < now + timedelta(minutes=et.minimum_notice_min):
        return SlotProblem.OUT_OF_BOUNDS
    if start >= now + timedelta(days=et.booking_window_days):
        return SlotProblem.OUT_OF_BOUNDS
    seated = seated_booking_at(state, et, start, exclude_uid) if et.seats_per_slot else None
    for host in hosts_of(state, et):
        if not _within_hours(host, start, end):
            return SlotProblem.UNAVAILABLE
        busy = _busy(state, host.id, start, end, exclude_uid)
        if seated is not None:
            busy = [b for b in busy if b.uid != seated.uid]
        if busy:
            return SlotProblem.UNAVAILABLE
    if (
        seated is not None
        and et.seats_per_slot is not None
        and len(seated.attendees) >= et.seats_per_slot
    ):
        return SlotProblem.SEATS_FULL
    return None


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def free_slots(
    state: CalcomState,
    et: EventType,
    range_start: datetime,
    range_end: datetime,
    duration: int,
    now: datetime,
    exclude_uid: str | None = None,
) -> list[datetime]:
    """Bookable starts in ``[range_start, range_end]`` on a grid of ``duration`` minutes
    from the start of the first host's working hours."""
    range_start = max(range_start, now)
    range_end = min(range_end, now + timedelta(days=et.booking_window_days))
    if range_end < range_start:
        return []
    anchor = hosts_of(state, et)[0]
    zone = ZoneInfo(anchor.time_zone)
    av = anchor.availability
    result: list[datetime] = []
    first = range_start.astimezone(zone).date() - timedelta(days=1)
    last = range_end.astimezone(zone).date() + timedelta(days=1)
    for day in _days(first, last):
        if day.weekday() not in av.weekdays:
            continue
        minute = av.start_minute
        while minute + duration <= av.end_minute:
            local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
            start = local.astimezone(UTC)
            minute += duration
            if start < range_start or start > range_end:
                continue
            if check_slot(state, et, start, duration, now, exclude_uid) is None:
                result.append(start)
    return sorted(result)
