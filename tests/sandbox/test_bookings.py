"""Booking lifecycle against the ASGI app."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from ._support import BOOKINGS, Sandbox

BOOKING_KEYS = {
    "id",
    "uid",
    "title",
    "description",
    "hosts",
    "status",
    "cancellationReason",
    "start",
    "end",
    "duration",
    "eventTypeId",
    "eventType",
    "location",
    "absentHost",
    "createdAt",
    "updatedAt",
    "metadata",
    "attendees",
    "bookingFieldsResponses",
}


async def test_create_returns_201_booking_object_and_strips_unknown_fields(sb: Sandbox) -> None:
    start = await sb.first_slot()
    response = await sb.book(
        start,
        unknownField="x",
        guests=["g@example.com"],
        metadata={"crm": "42", "n": 3},
        attendee={
            "name": "Bob Smith",
            "email": "bob@example.com",
            "timeZone": "America/New_York",
            "phoneNumber": "+14155550123",
            "language": "fr",
        },
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert set(data) >= BOOKING_KEYS
    assert "unknownField" not in data
    assert data["status"] == "accepted"
    assert data["start"].endswith(".000Z") and data["duration"] == 30
    assert data["eventType"] == {"id": 101, "slug": "30min"}
    assert data["hosts"][0]["username"] == "demo"
    assert data["attendees"] == [
        {
            "name": "Bob Smith",
            "email": "bob@example.com",
            "timeZone": "America/New_York",
            "language": "fr",
            "absent": False,
            "phoneNumber": "+14155550123",
        }
    ]
    assert data["guests"] == ["g@example.com"]
    assert data["metadata"] == {"crm": "42", "n": 3}
    assert data["title"] == "30 Minute Meeting between Demo Host and Bob Smith"


async def test_slot_taken_is_400(sb: Sandbox) -> None:
    start = await sb.first_slot()
    assert (await sb.book(start)).status_code == 201
    taken = await sb.book(start)
    assert taken.status_code == 400
    assert taken.json()["error"]["message"] == (
        "User either already has booking at this time or is not available"
    )


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"start": "2001-01-01T09:00:00Z"}, 400, "in the past"),
        ({"start": "2099-01-05T09:00:00Z"}, 400, 'can\'t be booked at the "start" time'),
        ({"eventTypeId": 999}, 404, "Event type with id 999 not found."),
        ({"attendee": {"name": "X"}}, 400, "timeZone"),
        ({"attendee": {"name": "X", "timeZone": "UTC"}}, 400, "email"),
        ({"attendee": {"name": "X", "timeZone": "UTC", "phoneNumber": "0612"}}, 400, "phone"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, 400, "at most 50 keys"),
        ({"metadata": {"k" * 41: "v"}}, 400, "at most 50 keys"),
        ({"lengthInMinutes": 60}, 400, "does not have multiple possible lengths"),
        ({"eventTypeId": None, "eventTypeSlug": "nope", "username": "demo"}, 404, "slug nope"),
    ],
)
async def test_create_errors(
    sb: Sandbox, change: dict[str, Any], status: int, fragment: str
) -> None:
    response = await sb.book(await sb.first_slot(), **change)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]["message"]


async def test_outside_working_hours_is_unavailable(sb: Sandbox) -> None:
    # 02:00 UTC of the day after the first open slot: never past nor too soon (02:00 of the
    # first slot's own day is past when the tests run after 02:00 and that day is today)
    day = date.fromisoformat((await sb.first_slot())[:10]) + timedelta(days=1)
    night = f"{day}T02:00:00Z"
    response = await sb.book(night)
    assert response.status_code == 400
    assert "not available" in response.json()["error"]["message"]


async def test_length_options_and_slug_forms(sb: Sandbox) -> None:
    start = await sb.first_slot(103)
    response = await sb.book(
        start, eventTypeId=None, eventTypeSlug="flexible", username="demo", lengthInMinutes=60
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["duration"] == 60
    bad = await sb.book(await sb.first_slot(103, 20), eventTypeId=103, lengthInMinutes=45)
    assert "possible lengths" in bad.json()["error"]["message"]
    team = await sb.book(
        await sb.first_slot(201), eventTypeId=None, eventTypeSlug="team-sync", teamSlug="demo-team"
    )
    assert team.status_code == 201, team.text
    assert len(team.json()["data"]["hosts"]) == 2


async def test_list_filters_and_pagination(sb: Sandbox) -> None:
    uids = []
    for i in range(3):
        start = await sb.first_slot(index=i * 2)
        email = "pat@example.com" if i < 2 else "kim@example.com"
        attendee = {"name": f"P{i}", "email": email, "timeZone": "UTC"}
        uids.append((await sb.book(start, attendee=attendee)).json()["data"]["uid"])
    page = await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"take": 2, "skip": 0})
    body = page.json()
    assert [b["uid"] for b in body["data"]] == uids[:2]
    assert body["pagination"] == {
        "totalItems": 3,
        "remainingItems": 1,
        "returnedItems": 2,
        "itemsPerPage": 2,
        "currentPage": 1,
        "totalPages": 2,
        "hasNextPage": True,
        "hasPreviousPage": False,
    }
    second = await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"take": 2, "skip": 2})
    assert second.json()["pagination"]["hasPreviousPage"] is True
    assert [b["uid"] for b in second.json()["data"]] == uids[2:]
    by_email = await sb.api.get(
        "/v2/bookings", headers=BOOKINGS, params={"attendeeEmail": "pat@example.com"}
    )
    assert len(by_email.json()["data"]) == 2
    listed = body["data"] + second.json()["data"]
    after = await sb.api.get(
        "/v2/bookings", headers=BOOKINGS, params={"afterStart": listed[1]["start"]}
    )
    assert [b["uid"] for b in after.json()["data"]] == uids[1:]
    before = await sb.api.get(
        "/v2/bookings", headers=BOOKINGS, params={"beforeEnd": listed[0]["end"]}
    )
    assert [b["uid"] for b in before.json()["data"]] == uids[:1]
    desc = await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"sortStart": "desc"})
    assert [b["uid"] for b in desc.json()["data"]] == uids[::-1]
    await sb.api.post(f"/v2/bookings/{uids[0]}/cancel", headers=BOOKINGS, json={})
    cancelled = await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"status": "cancelled"})
    assert [b["uid"] for b in cancelled.json()["data"]] == [uids[0]]
    upcoming = await sb.api.get(
        "/v2/bookings", headers=BOOKINGS, params={"status": "upcoming,unconfirmed"}
    )
    assert len(upcoming.json()["data"]) == 2
    bad = await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"status": "soon"})
    assert bad.status_code == 400
    assert (
        await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"take": 251})
    ).status_code == 400


async def test_get_cancel_and_double_cancel(sb: Sandbox) -> None:
    uid = (await sb.book(await sb.first_slot())).json()["data"]["uid"]
    got = await sb.api.get(f"/v2/bookings/{uid}", headers=BOOKINGS)
    assert got.json()["data"]["uid"] == uid
    cancel = await sb.api.post(
        f"/v2/bookings/{uid}/cancel", headers=BOOKINGS, json={"cancellationReason": "Sick"}
    )
    assert cancel.status_code == 200
    assert cancel.json()["data"]["status"] == "cancelled"
    assert cancel.json()["data"]["cancellationReason"] == "Sick"
    again = await sb.api.post(f"/v2/bookings/{uid}/cancel", headers=BOOKINGS, json={})
    assert again.status_code == 400
    unknown = await sb.api.post("/v2/bookings/zzz/cancel", headers=BOOKINGS, json={})
    assert unknown.json()["error"]["message"] == "Booking with uid=zzz not found"


async def test_reschedule_links_old_and_new(sb: Sandbox) -> None:
    old = (await sb.book(await sb.first_slot(), metadata={"k": "v"})).json()["data"]
    new_start = await sb.first_slot(index=3)
    response = await sb.api.post(
        f"/v2/bookings/{old['uid']}/reschedule",
        headers=BOOKINGS,
        json={"start": new_start, "reschedulingReason": "Clash"},
    )
    assert response.status_code == 201, response.text
    new = response.json()["data"]
    assert new["uid"] != old["uid"]
    assert new["rescheduledFromUid"] == old["uid"]
    assert new["reschedulingReason"] == "Clash"
    assert new["metadata"] == {"k": "v"}
    assert new["attendees"] == old["attendees"]
    old_now = (await sb.api.get(f"/v2/bookings/{old['uid']}", headers=BOOKINGS)).json()["data"]
    assert old_now["status"] == "cancelled"
    assert old_now["rescheduledToUid"] == new["uid"]
    twice = await sb.api.post(
        f"/v2/bookings/{old['uid']}/reschedule", headers=BOOKINGS, json={"start": new_start}
    )
    assert twice.status_code == 400


async def test_reschedule_onto_taken_slot(sb: Sandbox) -> None:
    a = (await sb.book(await sb.first_slot())).json()["data"]
    b_start = await sb.first_slot(index=2)
    await sb.book(b_start)
    response = await sb.api.post(
        f"/v2/bookings/{a['uid']}/reschedule", headers=BOOKINGS, json={"start": b_start}
    )
    assert response.status_code == 400
    assert "not available" in response.json()["error"]["message"]


async def test_mark_absent_before_and_after_start(sb: Sandbox) -> None:
    booking = (await sb.book(await sb.first_slot())).json()["data"]
    body = {"attendees": [{"email": "bob@example.com", "absent": True}]}
    path = f"/v2/bookings/{booking['uid']}/mark-absent"
    early = await sb.api.post(path, headers=BOOKINGS, json=body)
    assert early.status_code == 403
    assert early.json()["error"]["message"] == "Cannot mark no-show before the meeting has started."
    await sb.root.post("/_sandbox/clock", json={"offset_s": 90 * 86400})
    late = await sb.api.post(path, headers=BOOKINGS, json={**body, "host": True})
    assert late.status_code == 200
    assert late.json()["data"]["attendees"][0]["absent"] is True
    assert late.json()["data"]["absentHost"] is True


async def test_guests_limits(sb: Sandbox) -> None:
    uid = (await sb.book(await sb.first_slot())).json()["data"]["uid"]
    path = f"/v2/bookings/{uid}/guests"
    eleven = [{"email": f"g{i}@example.com"} for i in range(11)]
    too_many = await sb.api.post(path, headers=BOOKINGS, json={"guests": eleven})
    assert too_many.status_code == 400
    ok = await sb.api.post(path, headers=BOOKINGS, json={"guests": eleven[:10]})
    assert ok.status_code == 200
    assert len(ok.json()["data"]["attendees"]) == 11
    for batch in range(2):
        guests = [{"email": f"h{batch}-{i}@example.com"} for i in range(10)]
        response = await sb.api.post(path, headers=BOOKINGS, json={"guests": guests})
        assert response.status_code == 200
    over = await sb.api.post(path, headers=BOOKINGS, json={"guests": [{"email": "x@example.com"}]})
    assert over.status_code == 400
    assert "at most 30" in over.json()["error"]["message"]
    throttled = await sb.api.post(path, headers=BOOKINGS, json={"guests": [{"email": "y@e.com"}]})
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "ThrottlerException"


async def test_confirm_and_decline(sb: Sandbox) -> None:
    first = (await sb.book(await sb.first_slot(104), eventTypeId=104)).json()["data"]
    assert first["status"] == "pending"
    second = (await sb.book(await sb.first_slot(104, 2), eventTypeId=104)).json()["data"]
    confirm = await sb.api.post(f"/v2/bookings/{first['uid']}/confirm", headers=BOOKINGS)
    assert confirm.json()["data"]["status"] == "accepted"
    decline = await sb.api.post(
        f"/v2/bookings/{second['uid']}/decline", headers=BOOKINGS, json={"reason": "Busy"}
    )
    assert decline.json()["data"]["status"] == "rejected"
    again = await sb.api.post(f"/v2/bookings/{first['uid']}/confirm", headers=BOOKINGS)
    assert again.status_code == 400


async def test_seats_fill_then_409(sb: Sandbox) -> None:
    start = await sb.first_slot(105)
    uids = set()
    for i in range(3):
        attendee = {"name": f"S{i}", "email": f"s{i}@example.com", "timeZone": "UTC"}
        response = await sb.book(start, eventTypeId=105, attendee=attendee)
        assert response.status_code == 201, response.text
        uids.add(response.json()["data"]["uid"])
    assert len(uids) == 1
    full = await sb.book(start, eventTypeId=105)
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "ConflictException"


async def test_web_booking_control_endpoint(sb: Sandbox) -> None:
    start = await sb.first_slot()
    body = {
        "start": start,
        "eventTypeId": 101,
        "attendee": {"name": "Web", "email": "web@example.com", "timeZone": "UTC"},
    }
    response = await sb.root.post("/_sandbox/calcom/bookings", json=body)
    assert response.status_code == 201
    taken = await sb.book(start)
    assert taken.status_code == 400
    again = await sb.root.post("/_sandbox/calcom/bookings", json=body)
    assert again.status_code == 400
    assert again.json()["path"] == "/_sandbox/calcom/bookings"
