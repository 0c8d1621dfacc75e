"""Slots and event types."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from ._support import BOOKINGS, EVENT_TYPES, SLOTS, Sandbox


async def _slots(sb: Sandbox, **params: str | int) -> dict[str, list[dict[str, str]]]:
    query = {"start": "2000-01-01", "end": "2100-01-01", **params}
    response = await sb.api.get("/v2/slots", headers=SLOTS, params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    data: dict[str, list[dict[str, str]]] = body["data"]
    return data


async def test_slots_in_zone_and_utc(sb: Sandbox) -> None:
    paris = await _slots(sb, eventTypeId=101, timeZone="Europe/Paris")
    day, items = sorted(paris.items())[1]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T09:00:00\.000\+0[12]:00", items[0]["start"])
    assert items[0]["start"].startswith(day)
    assert all(set(i) == {"start"} for i in items)
    utc = await _slots(sb, eventTypeId=101)
    assert utc[sorted(utc)[0]][0]["start"].endswith(".000Z")


async def test_slots_range_format_and_slug_lookup(sb: Sandbox) -> None:
    data = await _slots(sb, eventTypeSlug="60min", username="demo", format="range")
    first = next(iter(data.values()))[0]
    assert set(first) == {"start", "end"}
    length = datetime.fromisoformat(first["end"]) - datetime.fromisoformat(first["start"])
    assert length == timedelta(minutes=60)
    team = await _slots(sb, eventTypeSlug="team-sync", teamSlug="demo-team")
    assert team


async def test_booked_slot_disappears_and_reschedule_uid_restores_it(sb: Sandbox) -> None:
    start = await sb.first_slot()
    booking = (await sb.book(start)).json()["data"]
    starts = [s["start"] for d in (await _slots(sb, eventTypeId=101)).values() for s in d]
    assert start not in starts
    again = await _slots(sb, eventTypeId=101, bookingUidToReschedule=booking["uid"])
    assert start in [s["start"] for d in again.values() for s in d]


async def test_slots_unknown_event_type(sb: Sandbox) -> None:
    response = await sb.api.get(
        "/v2/slots",
        headers=SLOTS,
        params={"start": "2050-01-01", "end": "2050-01-02", "eventTypeId": 9},
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Event Type not found"


async def test_event_types(sb: Sandbox) -> None:
    own = (await sb.api.get("/v2/event-types", headers=EVENT_TYPES)).json()["data"]
    slugs = {e["slug"] for e in own}
    assert {"30min", "60min", "flexible", "consultation", "workshop"} <= slugs
    flexible = next(e for e in own if e["slug"] == "flexible")
    assert flexible["lengthInMinutesOptions"] == [15, 30, 60]
    by_slug = await sb.api.get(
        "/v2/event-types", headers=EVENT_TYPES, params={"username": "demo", "eventSlug": "60min"}
    )
    assert [e["id"] for e in by_slug.json()["data"]] == [102]
    one = await sb.api.get("/v2/event-types/105", headers=EVENT_TYPES)
    assert one.json()["data"]["seatsPerTimeSlot"] == 3
    missing = await sb.api.get("/v2/event-types/999", headers=EVENT_TYPES)
    assert missing.status_code == 404
    legacy = await sb.api.get("/v2/event-types")
    assert "eventTypeGroups" in legacy.json()["data"]
    assert (await sb.api.get("/v2/event-types", headers=BOOKINGS)).status_code == 404
