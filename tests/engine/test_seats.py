"""Seats end to end: two seat holders of one seated Cal.com booking each get exactly one
reminder; one leaves and the other still gets theirs. Deliveries are built as Cal.com
builds them (``tests/events/real_bodies.py``), normalized and published as the receiver
does; the reminder is a real step against the sandbox."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calflow.events.normalize import normalize
from events import real_bodies as rb

from .conftest import Harness

pytestmark = pytest.mark.slow


def _at(body: dict[str, Any], start: datetime) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["payload"]["startTime"] = start.isoformat().replace("+00:00", "Z")
    out["payload"]["endTime"] = (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    out["createdAt"] = datetime.now(UTC).isoformat()
    return out


def remind_each_seat(h: Harness, before: str, on: dict[str, str] | None = None) -> None:
    """A workflow that reminds each booking (each seat) ``before`` its start."""
    step: dict[str, Any] = {
        "id": "remind", "action": "cal_com.GetBooking", "integration": "main",
        "input": {"bookingUid": "{{ booking.uid }}"}, "at": {"before_start": before},
    }  # fmt: skip
    if on:
        step["on"] = on  # the sandbox has no such booking: its answer ends the run
    h.apply({"name": "seat-reminder", "trigger": {"kinds": ["created"]}, "steps": [step]})


async def test_each_seat_gets_one_reminder_and_a_seat_cancel_ends_only_its_own(
    any_harness: Harness,
) -> None:
    h = any_harness
    remind_each_seat(h, "3594s", on={"error": "end", "not_found": "end"})
    start = datetime.now(UTC) + timedelta(hours=1)  # the reminders fall due in ~6 s
    for body in (rb.first_seat(), rb.second_seat(), rb.second_seat()):  # + a retry
        h.publish(normalize("cal_com", _at(body, start)))
    waiting = await h.until(lambda: len(h.runs(status="waiting")) == 2 and h.runs(),
                            what="one waiting reminder per seat")  # fmt: skip
    assert len(waiting) == 2
    seats = {r["id"]: h.inbox.get(r["event_id"])["event"]["seat"] for r in waiting}
    assert sorted(seats.values()) == ["ann@example.com", "bob@example.com"]

    cancel = _at(rb.seat_cancel(), start)
    cancel["payload"]["startTime"] = start.isoformat()  # Cal.com's "+00:00" form
    h.publish(normalize("cal_com", cancel))
    runs = await h.finished(2, wait_s=30)
    by_seat = {seats[r["id"]]: r for r in runs}
    assert by_seat["ann@example.com"]["status"] == "cancelled"
    assert "seat cancelled" in (by_seat["ann@example.com"]["cancel_reason"] or "")
    bob = by_seat["bob@example.com"]
    assert bob["status"] == "succeeded"
    steps = h.run(bob["id"])["steps"]
    assert [s["step"] for s in steps] == ["remind"]  # called once, for Bob
    assert steps[0]["status"] != "cancelled"
    ann = h.run(by_seat["ann@example.com"]["id"])["steps"]
    assert [(s["step"], s["status"]) for s in ann] == [("remind", "cancelled")]  # never called
    await asyncio.sleep(0.5)
    assert len(h.runs()) == 2  # nothing else started


async def two_seats_waiting(h: Harness) -> datetime:
    """Ann's and Bob's seats of a booking two days ahead, each with a waiting reminder
    an hour before; returns the start."""
    remind_each_seat(h, "1h")
    start = datetime.now(UTC) + timedelta(days=2)
    h.publish(normalize("cal_com", _at(rb.first_seat(), start)))
    h.publish(normalize("cal_com", _at(rb.second_seat(), start)))
    await h.until(lambda: len(h.runs(status="waiting")) == 2, what="two waiting reminders")
    return start


async def test_a_whole_cancel_of_a_seated_booking_ends_every_seat(harness: Harness) -> None:
    h = harness
    start = await two_seats_waiting(h)
    h.publish(normalize("cal_com", _at(rb.whole_cancel(), start)))
    runs = await h.finished(2)
    assert {r["status"] for r in runs} == {"cancelled"}
    assert all("Host is sick" in (r["cancel_reason"] or "") for r in runs)


def _reschedule(
    attendees: list[dict[str, Any]], booker: dict[str, Any], uid: str, start: datetime
) -> dict[str, Any]:
    """BOOKING_RESCHEDULED of a seated booking as handleSeats.ts sends it: ``uid`` the
    booking the seat(s) moved to, ``rescheduleUid`` the one they left."""
    payload = rb.cal_booking_payload(attendees, (booker["name"], booker["email"]), uid=uid,
                                     rescheduleUid=rb.SEATED_UID)  # fmt: skip
    return _at(rb.cal_delivery("BOOKING_RESCHEDULED", payload, rb.START), start)


async def test_a_seated_reschedule_follows_each_seat(harness: Harness) -> None:
    h = harness
    start = await two_seats_waiting(h)
    seat_of = {r["id"]: h.inbox.get(r["event_id"])["event"]["seat"] for r in h.runs()}

    def due_by_seat() -> dict[str, tuple[str, datetime]]:
        return {seat_of[r["id"]]: (r["booking_uid"], datetime.fromisoformat(r["next_due_at"]))
                for r in h.runs(status="waiting") if r["next_due_at"]}  # fmt: skip

    # the host moves the whole booking (every seat listed): both reminders follow it
    whole = start + timedelta(days=3)
    h.publish(normalize("cal_com", _reschedule([rb.ANN, rb.BOB], rb.ANN, "all-new-uid", whole)))
    await h.until(lambda: [u for u, _ in due_by_seat().values()] == ["all-new-uid"] * 2,
                  what="both reminders to move")  # fmt: skip
    assert {d for _, d in due_by_seat().values()} == {whole - timedelta(hours=1)}

    # then Bob alone moves his seat to another slot: Ann stays where the booking is
    later = whole + timedelta(days=1)
    bob_move = _reschedule([rb.BOB], rb.BOB, "bob-new-uid", later)
    bob_move["payload"]["rescheduleUid"] = "all-new-uid"
    h.publish(normalize("cal_com", bob_move))
    # (a run being moved is briefly not waiting: absent from due_by_seat)
    await h.until(lambda: due_by_seat().get("bob@example.com", ("",))[0] == "bob-new-uid",
                  what="Bob's reminder to move")  # fmt: skip
    final = due_by_seat()
    assert final["bob@example.com"][1] == later - timedelta(hours=1)
    assert final["ann@example.com"] == ("all-new-uid", whole - timedelta(hours=1))
    assert len(h.runs()) == 2
