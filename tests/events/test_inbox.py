"""The inbox on SQLite and PostgreSQL: stored once per change, duplicates counted."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from calflow.errors import NotFoundError
from calflow.events import BookingEvent, EventType, Person
from calflow.events.inbox import KEPT_DELIVERIES, Inbox

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def event(**over: object) -> BookingEvent:
    base = BookingEvent(
        provider="cal_com",
        kind="created",
        original_type="BOOKING_CREATED",
        booking_uid="uid-1",
        source="webhook",
        occurred_at=T0 - timedelta(days=1),
        received_at=T0 - timedelta(days=1),
        start=T0,
        end=T0 + timedelta(minutes=30),
        event_type=EventType(id="101", slug="30min", title="30 Minute Meeting"),
        attendees=(Person(name="Ann", email="ann@example.com", time_zone="Europe/Paris"),),
        raw={"triggerEvent": "BOOKING_CREATED"},
    )
    return replace(base, **over)  # type: ignore[arg-type]


def test_one_change_is_stored_once_and_every_delivery_is_recorded(inbox: Inbox) -> None:
    first = inbox.publish(event(), reference="d1")
    again = inbox.publish(event(), reference="d2")  # a webhook retry
    from_action = inbox.publish(event(source="action"))
    replayed = inbox.publish(event(source="replay"), reference="payload_x")
    assert not first.duplicate
    assert again.duplicate and from_action.duplicate and replayed.duplicate
    assert {again.event_id, from_action.event_id, replayed.event_id} == {first.event_id}
    assert inbox.count() == 1
    shown = inbox.get(first.event_id)
    assert [(d["source"], d["duplicate"], d["reference"]) for d in shown["deliveries"]] == [
        ("webhook", False, "d1"),
        ("webhook", True, "d2"),
        ("action", True, None),
        ("replay", True, "payload_x"),
    ]
    assert shown["duplicates"] == 3 and shown["source"] == "webhook"
    assert shown["event"]["event_type"]["slug"] == "30min"
    assert not shown["dispatched"]  # handed to processing, not yet taken


def test_different_changes_are_different_events(inbox: Inbox) -> None:
    ids = {
        inbox.publish(event()).event_id,
        inbox.publish(event(kind="cancelled", original_type="BOOKING_CANCELLED")).event_id,
        inbox.publish(event(booking_uid="uid-2")).event_id,
        inbox.publish(event(provider="savvycal")).event_id,
        inbox.publish(event(kind="rescheduled", start=T0 + timedelta(days=1))).event_id,
        inbox.publish(event(kind="rescheduled", start=T0 + timedelta(days=2))).event_id,
    }
    assert len(ids) == 6 and inbox.count() == 6


def test_a_later_delivery_fills_in_a_missing_phone(inbox: Inbox) -> None:
    first = inbox.publish(event())
    with_phone = event(
        source="action",
        attendees=(Person(name="Ann", email="ANN@example.com", phone="+33612345678"),),
    )
    inbox.publish(with_phone)
    stored = inbox.get(first.event_id)["event"]
    assert stored["attendees"][0]["phone"] == "+33612345678"
    assert stored["attendees"][0]["time_zone"] == "Europe/Paris"  # the rest is kept


def test_concurrent_deliveries_of_one_change_make_one_event(inbox: Inbox) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: inbox.publish(event(), f"r{i}"), range(24)))
    assert len({r.event_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    stored = inbox.get(results[0].event_id)
    assert stored["duplicates"] == 23  # each counted; the first KEPT_DELIVERIES kept as rows
    assert len(stored["deliveries"]) == KEPT_DELIVERIES


def test_list_filters_and_unknown_ids(inbox: Inbox) -> None:
    inbox.publish(event())
    inbox.publish(event(kind="cancelled", booking_uid="uid-9", received_at=T0))
    inbox.publish(event(provider="savvycal", booking_uid="event_1"))
    assert [e["kind"] for e in inbox.list()] == ["cancelled", "created", "created"]
    assert [e["booking_uid"] for e in inbox.list(kind="cancelled")] == ["uid-9"]
    assert [e["provider"] for e in inbox.list(provider="savvycal")] == ["savvycal"]
    assert [e["booking_uid"] for e in inbox.list(since=T0)] == ["uid-9"]
    assert len(inbox.list(booking_uid="uid-1")) == 1
    with pytest.raises(NotFoundError):
        inbox.get("evt_nope")


def test_events_without_a_booking_are_keyed_by_their_body(inbox: Inbox) -> None:
    form = event(kind="other", original_type="FORM_SUBMITTED", booking_uid="", raw={"a": 1})
    other = event(kind="other", original_type="FORM_SUBMITTED", booking_uid="", raw={"a": 2})
    assert not inbox.publish(form).duplicate
    assert inbox.publish(form).duplicate
    assert not inbox.publish(other).duplicate
