"""Links, slots, booking validation and conflicts, and the sandbox controls."""

from __future__ import annotations

from datetime import datetime

from ._support import Sandbox


async def test_links_and_slots(sc: Sandbox) -> None:
    page = (await sc.api.get("/v1/links")).json()
    assert page["metadata"] == {"before": None, "after": None, "limit": 20}
    slugs = {link["slug"] for link in page["entries"]}
    assert slugs == {"30min", "discovery", "team-intro", "workshop"}
    team = next(link for link in page["entries"] if link["slug"] == "team-intro")
    assert team["scope"]["slug"] == "acme" and team["id"].startswith("link_")
    one = await sc.api.get(f"/v1/links/{team['id']}")
    assert one.json() == team
    assert (await sc.api.get("/v1/links/link_NOPE")).status_code == 404
    slots = (await sc.api.get(f"/v1/links/{sc.link_id('discovery')}/slots")).json()
    assert isinstance(slots, list) and slots
    assert set(slots[0]) == {"start_at", "end_at", "duration", "rank"}
    assert {s["duration"] for s in slots} == {30, 60}
    for slot in slots:
        start = datetime.fromisoformat(slot["start_at"])
        assert start.weekday() < 5 or start.hour < 6  # Mon-Fri in New York
    ranged = await sc.api.get(
        f"/v1/links/{sc.link_id('30min')}/slots",
        params={"from": slots[0]["start_at"][:10], "until": slots[0]["start_at"][:10]},
    )
    assert all(s["start_at"][:10] == slots[0]["start_at"][:10] for s in ranged.json())


async def test_booking_validation_and_conflict(sc: Sandbox) -> None:
    link = sc.link_id("30min")
    empty = await sc.api.post(f"/v1/links/{link}/events", json={})
    assert empty.status_code == 422
    assert set(empty.json()["errors"]) == {
        "display_name",
        "email",
        "start_at",
        "end_at",
        "time_zone",
    }
    bad_zone = await sc.book(time_zone="Mars/Base")
    assert bad_zone.json() == {"errors": {"time_zone": ["is invalid"]}}
    first = await sc.book()
    assert first.status_code == 201
    taken = await sc.api.post(
        f"/v1/links/{link}/events",
        json={
            "display_name": "Eve",
            "email": "eve@example.com",
            "start_at": first.json()["start_at"],
            "end_at": first.json()["end_at"],
            "time_zone": "UTC",
        },
    )
    assert taken.status_code == 422
    assert "start_at" in taken.json()["errors"]
    weekend = await sc.api.post(
        f"/v1/links/{link}/events",
        json={
            "display_name": "Eve",
            "email": "eve@example.com",
            "start_at": "2030-01-05T15:00:00Z",
            "end_at": "2030-01-05T15:30:00Z",
            "time_zone": "UTC",
        },
    )
    assert weekend.json() == {"errors": {"start_at": ["is not an available time slot"]}}
    # a seeded upcoming confirmed event also blocks its time
    seeded = next(
        e
        for e in sc.sim.state.events.values()
        if e.state == "confirmed" and e.source == "seed" and e.host_id == sc.sim.state.me.id
        and e.start > sc.sim.runtime.now()
        and e.duration == 30
    )  # fmt: skip
    clash = await sc.api.post(
        f"/v1/links/{link}/events",
        json={
            "display_name": "Eve",
            "email": "eve@example.com",
            "start_at": seeded.start.isoformat(),
            "end_at": seeded.end.isoformat(),
            "time_zone": "UTC",
        },
    )
    assert clash.status_code == 422


async def test_approval_flow_and_controls(sc: Sandbox) -> None:
    hook = (await sc.api.post("/v1/webhooks", json={"url": "https://hooks.example.com/s"})).json()
    assert hook["id"].startswith("wh_")
    requested = (await sc.book("discovery")).json()
    assert requested["state"] == "awaiting_approval"
    approved = await sc.root.post(f"/_sandbox/savvycal/events/{requested['id']}/approve")
    assert approved.json()["state"] == "confirmed"
    again = await sc.root.post(f"/_sandbox/savvycal/events/{requested['id']}/approve")
    assert again.status_code == 422
    other = (await sc.book("discovery")).json()
    declined = await sc.root.post(
        f"/_sandbox/savvycal/events/{other['id']}/decline", json={"reason": "No"}
    )
    assert declined.json()["state"] == "declined"
    web = await sc.root.post(
        f"/_sandbox/savvycal/links/{sc.link_id('team-intro')}/events",
        json={
            "display_name": "Web Person",
            "email": "web@example.com",
            "start_at": (await sc.slot("team-intro"))["start_at"],
            "end_at": (await sc.slot("team-intro"))["end_at"],
            "time_zone": "Asia/Tokyo",
        },
    )
    assert web.status_code == 201 and web.json()["scope"]["slug"] == "acme"
    # a slot of the event's own link (60 min, on the hour); one of "30min" may start at :30
    new_slot = await sc.slot("team-intro", 5)
    moved = await sc.root.post(
        f"/_sandbox/savvycal/events/{web.json()['id']}/reschedule",
        json={"start_at": new_slot["start_at"], "reschedule_reason": "Moved"},
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["rescheduled_at"] and body["reschedule_reason"] == "Moved"
    assert body["original_start_at"] == web.json()["start_at"]
    assert body["start_at"] == new_slot["start_at"] and body["duration"] == 60
    changed = await sc.root.post(
        f"/_sandbox/savvycal/events/{body['id']}/change", json={"summary": "Renamed"}
    )
    assert changed.json()["summary"] == "Renamed"
    await sc.root.post("/_sandbox/savvycal/flush")
    types = [d["type"] for d in (await sc.state())["deliveries"]]
    assert types == [
        "event.requested",
        "event.approved",
        "event.created",
        "event.requested",
        "event.declined",
        "event.created",
        "event.rescheduled",
        "event.changed",
    ]
