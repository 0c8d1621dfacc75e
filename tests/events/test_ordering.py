"""Ordering: out-of-order deliveries never move a booking backwards (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from calflow.events import BookingEvent, Person
from calflow.events.inbox import Inbox
from calflow.events.ordering import BOOKED, ENDED, PHASES, BookingState, judge

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)
START = datetime(2026, 12, 1, 9, tzinfo=UTC)


def change(kind: str, minute: int, **over: object) -> BookingEvent:
    """A change of booking ``uid-1`` that occurred ``minute`` minutes after T0."""
    base = BookingEvent(
        provider="savvycal",
        kind=kind,
        original_type=f"event.{kind}",
        booking_uid="uid-1",
        source="webhook",
        occurred_at=T0 + timedelta(minutes=minute),
        received_at=T0 + timedelta(hours=1),
        start=START,
        end=START + timedelta(minutes=30),
        attendees=(Person(name="Ann", email="ann@example.com"),),
        raw={"type": f"event.{kind}", "minute": minute},
    )
    return replace(base, **over)  # type: ignore[arg-type]


def test_a_late_created_does_not_resurrect_a_cancelled_booking(inbox: Inbox) -> None:
    cancelled = inbox.publish(change("cancelled", 5))
    created = inbox.publish(change("created", 0))
    assert not cancelled.stale
    assert created.stale and not created.duplicate
    shown = inbox.get(created.event_id)
    assert shown["ordering"] == "stale"
    assert "already cancelled" in shown["stale_reason"]
    assert inbox.get(cancelled.event_id)["ordering"] == "applied"
    state = inbox.booking_state("savvycal", "uid-1")
    assert state is not None and state.kind == "cancelled" and state.phase == ENDED


def test_in_order_changes_all_apply(inbox: Inbox) -> None:
    results = [
        inbox.publish(change("requested", 0)),
        inbox.publish(change("approved", 1)),
        inbox.publish(change("rescheduled", 2, start=START + timedelta(hours=2))),
        inbox.publish(change("cancelled", 3)),
    ]
    assert [r.stale for r in results] == [False, False, False, False]
    state = inbox.booking_state("savvycal", "uid-1")
    assert state is not None and state.kind == "cancelled"


def test_the_later_of_two_reschedules_wins_whatever_the_arrival_order(inbox: Inbox) -> None:
    to_eleven = change("rescheduled", 9, start=START + timedelta(hours=2))
    to_ten = change("rescheduled", 4, start=START + timedelta(hours=1))
    assert not inbox.publish(to_eleven).stale
    late = inbox.publish(to_ten)
    assert late.stale
    state = inbox.booking_state("savvycal", "uid-1")
    assert state is not None and state.start == START + timedelta(hours=2)


def test_informational_events_are_never_stale(inbox: Inbox) -> None:
    inbox.publish(change("cancelled", 5))
    for kind in ("meeting_ended", "no_show_updated", "paid", "other"):
        assert not inbox.publish(change(kind, 1)).stale, kind
    state = inbox.booking_state("savvycal", "uid-1")
    assert state is not None and state.kind == "cancelled"


def test_a_calcom_reschedule_ends_the_old_uid(inbox: Inbox) -> None:
    moved = change(
        "rescheduled", 3, provider="cal_com", booking_uid="uid-new", previous_uid="uid-old"
    )
    assert not inbox.publish(moved).stale
    late = inbox.publish(change("created", 0, provider="cal_com", booking_uid="uid-old"))
    assert late.stale
    assert "rescheduled to a new booking" in inbox.get(late.event_id)["stale_reason"]
    new_state = inbox.booking_state("cal_com", "uid-new")
    assert new_state is not None and new_state.phase == BOOKED


def test_a_duplicate_is_judged_once(inbox: Inbox) -> None:
    first = inbox.publish(change("created", 0))
    inbox.publish(change("cancelled", 5))
    again = inbox.publish(change("created", 0, source="replay"))
    assert again.duplicate and not again.stale
    assert inbox.get(first.event_id)["ordering"] == "applied"


def test_bookings_are_judged_separately(inbox: Inbox) -> None:
    inbox.publish(change("cancelled", 5))
    other = inbox.publish(change("created", 0, booking_uid="uid-2"))
    assert not other.stale


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["requested", "created", "rescheduled", "cancelled"]))
)
def test_every_arrival_order_ends_cancelled(order: tuple[str, ...]) -> None:
    """Pure rule: whatever order four changes arrive in, the booking ends where it really did."""
    minutes = {"requested": 0, "created": 1, "rescheduled": 2, "cancelled": 3}
    state: BookingState | None = None
    applied: list[str] = []
    for n, kind in enumerate(order):
        verdict = judge(state, change(kind, minutes[kind]), f"evt_{n}")
        if verdict.applies:
            applied.append(kind)
        state = verdict.state or state
    assert state is not None and state.kind == "cancelled"
    assert applied[-1] == "cancelled"
    # whatever applied did so in the order the booking changed
    assert applied == sorted(applied, key=minutes.__getitem__)


def test_every_schedule_kind_has_a_phase() -> None:
    assert {"created", "cancelled", "rescheduled", "requested", "declined"} <= set(PHASES)
    assert "no_show_updated" not in PHASES and "other" not in PHASES
