"""Builders shared by the workflow tests: a valid definition and a booking event."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from calflow.events import BookingEvent, EventType, Person

START = datetime(2026, 12, 1, 9, tzinfo=UTC)


def workflow_doc(name: str = "remind", **over: Any) -> dict[str, Any]:
    """A valid workflow document (one GetBooking step); ``over`` replaces top-level keys."""
    doc: dict[str, Any] = {
        "name": name,
        "trigger": {"kinds": ["created"]},
        "steps": [
            {
                "id": "get",
                "action": "cal_com.GetBooking",
                "input": {"bookingUid": "{{ booking.uid }}"},
                "on": {"not_found": "end"},
            }
        ],
    }
    doc.update(copy.deepcopy(over))
    return doc


def booking_event(**over: Any) -> BookingEvent:
    """A Cal.com ``created`` webhook event for booking ``uid-1`` (fields overridable)."""
    base = BookingEvent(
        provider="cal_com",
        kind="created",
        original_type="BOOKING_CREATED",
        booking_uid="uid-1",
        source="webhook",
        occurred_at=START - timedelta(days=1),
        received_at=START - timedelta(days=1),
        start=START,
        end=START + timedelta(minutes=45),
        title="Intro call with Ann",
        event_type=EventType(id="101", slug="intro", title="Intro"),
        organizer=Person(name="Olga Organizer", email="olga@host.example"),
        attendees=(
            Person(
                name="Ann Marie Lee",
                email="Ann@Example.com",
                time_zone="Europe/Paris",
                phone="+33612345678",
            ),
        ),
        integration_id="int_main",
        metadata={"items": "meta-items"},
    )
    return replace(base, **over)
