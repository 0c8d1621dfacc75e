"""Event listing: filters, defaults, cursors, limits; get and cancel."""

from __future__ import annotations

from datetime import datetime, timedelta

from ._support import ALL, Sandbox


async def test_full_walk_sees_every_event_once(sc: Sandbox) -> None:
    events = await sc.walk()
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == len(sc.sim.state.events) == 60
    starts = [e["start_at"] for e in events]
    assert starts == sorted(starts)
    states = {e["state"] for e in events}
    assert {"confirmed", "canceled", "awaiting_approval", "declined"} <= states
    assert any(e["rescheduled_at"] for e in events)
    assert any(e["is_group_session"] and len(e["attendees"]) >= 4 for e in events)
    phones = [a["phone_number"] for e in events for a in e["attendees"] if a["phone_number"]]
    assert phones and all(p.startswith("+") and p[1:].isdigit() for p in phones)


async def test_walk_desc_and_before_cursor(sc: Sandbox) -> None:
    asc = [e["id"] for e in await sc.walk(limit=7)]
    desc = [e["id"] for e in await sc.walk(direction="desc", limit=9)]
    assert desc == asc[::-1]
    first = (await sc.api.get("/v1/events", params={**ALL, "limit": 10})).json()
    assert first["metadata"]["before"] is None
    second = (
        await sc.api.get(
            "/v1/events", params={**ALL, "limit": 10, "after": first["metadata"]["after"]}
        )
    ).json()
    assert second["metadata"]["before"] is not None
    back = (
        await sc.api.get(
            "/v1/events", params={**ALL, "limit": 10, "before": second["metadata"]["before"]}
        )
    ).json()
    assert [e["id"] for e in back["entries"]] == [e["id"] for e in first["entries"]]
    assert back["metadata"]["before"] is None


async def test_cursor_stable_when_events_are_added(sc: Sandbox) -> None:
    first = (await sc.api.get("/v1/events", params={**ALL, "limit": 20})).json()
    booked = await sc.book()
    assert booked.status_code == 201
    rest = await sc.walk(after=first["metadata"]["after"])
    ids = [e["id"] for e in first["entries"]] + [e["id"] for e in rest]
    assert len(ids) == len(set(ids)) == 61


async def test_default_filters_are_narrow(sc: Sandbox) -> None:
    now = sc.sim.runtime.now()
    default = await sc.walk(period="", state="", attendance="", limit=100)
    assert default, "some upcoming confirmed events"
    assert all(e["state"] == "confirmed" for e in default)
    for e in default:
        assert datetime.fromisoformat(e["end_at"]) > now - timedelta(minutes=1)
        assert e["organizer"]["email"] == "sam@example.com"
    assert len(default) < len(await sc.walk())
    past = await sc.walk(period="past", state="canceled")
    assert past and all(e["state"] == "canceled" for e in past)
    assert all(datetime.fromisoformat(e["end_at"]) <= now for e in past)
    link = sc.link_id("discovery")
    by_link = await sc.walk(link=link)
    assert by_link and all(e["link"]["id"] == link for e in by_link)
    any_attendance = await sc.walk(state="confirmed", period="all", attendance="any")
    attending = await sc.walk(state="confirmed", period="all", attendance="attending")
    assert len(attending) < len(any_attendance)


async def test_fixed_period(sc: Sandbox) -> None:
    everything = await sc.walk()
    day = everything[10]["start_at"][:10]
    fixed = await sc.walk(period="fixed", **{"from": day, "until": day})
    assert fixed and all(e["start_at"].startswith(day) for e in fixed)
    assert {e["id"] for e in fixed} == {e["id"] for e in everything if e["start_at"][:10] == day}
    missing = await sc.api.get("/v1/events", params={"period": "fixed", "from": day})
    assert missing.status_code == 422
    assert missing.json() == {"errors": {"until": ["can't be blank"]}}


async def test_unknown_params_ignored_and_limit_clamped(sc: Sandbox) -> None:
    plain = await sc.api.get("/v1/events", params=ALL)
    typo = await sc.api.get("/v1/events", params={**ALL, "statee": "canceled", "foo": "1"})
    assert typo.status_code == 200 and typo.json() == plain.json()
    default = (await sc.api.get("/v1/events", params={**ALL, "limit": ""})).json()
    assert default["metadata"]["limit"] == 20 and len(default["entries"]) == 20
    big = (await sc.api.get("/v1/events", params={**ALL, "limit": 500})).json()
    assert big["metadata"]["limit"] == 100 and len(big["entries"]) == 60
    bad = await sc.api.get("/v1/events", params={"limit": "many"})
    assert bad.status_code == 422 and bad.json() == {"errors": {"limit": ["is invalid"]}}
    bad_state = await sc.api.get("/v1/events", params={"state": "bogus"})
    assert bad_state.json() == {"errors": {"state": ["is invalid"]}}
    bad_cursor = await sc.api.get("/v1/events", params={"after": "nope"})
    assert bad_cursor.status_code == 422


async def test_get_and_cancel(sc: Sandbox) -> None:
    event = (await sc.book()).json()
    got = await sc.api.get(f"/v1/events/{event['id']}")
    assert got.status_code == 200 and got.json() == event
    assert (await sc.api.get("/v1/events/event_NOPE")).json() == {
        "errors": [{"message": "Not found"}]
    }
    canceled = await sc.api.post(f"/v1/events/{event['id']}/cancel", json={"cancel_reason": "Sick"})
    assert canceled.status_code == 200
    data = canceled.json()
    assert data["state"] == "canceled" and data["cancel_reason"] == "Sick" and data["canceled_at"]
    again = await sc.api.post(f"/v1/events/{event['id']}/cancel", json={})
    assert again.status_code == 422 and "errors" in again.json()
    # the slot is open again once canceled
    rebook = await sc.book()
    assert rebook.status_code == 201


async def test_event_has_every_documented_field(sc: Sandbox) -> None:
    event = (
        await sc.book(metadata={"crm_id": "42"}, fields=[{"label": "Topic", "value": "x"}])
    ).json()
    for name in (
        "id", "uuid", "state", "summary", "description", "location", "created_at", "start_at",
        "end_at", "duration", "buffer_before", "buffer_after", "canceled_at", "cancel_reason",
        "rescheduled_at", "reschedule_reason", "original_start_at", "original_end_at",
        "conferencing", "link", "scope", "organizer", "scheduler", "attendees", "payment",
        "metadata", "url",
    ):  # fmt: skip
        assert name in event, name
    assert event["id"].startswith("event_") and event["state"] == "confirmed"
    assert event["metadata"] == {"crm_id": "42"} and event["duration"] == 30
    assert set(event["link"]) == {"id", "name", "slug"}
    scheduler = event["scheduler"]
    # The documented Attendee has no is_scheduler: the scheduler is the Event's field.
    assert "is_scheduler" not in scheduler and scheduler["phone_number"] == "+447700900123"
    assert scheduler["fields"] == [{"label": "Topic", "value": "x"}]
    assert {a["id"] for a in event["attendees"]} == {event["organizer"]["id"], scheduler["id"]}
