"""One attendee of a SavvyCal event added, canceled, rescheduled: the controls, the
``event.attendee.*`` deliveries they send (their shape is inferred, see
``docs/DESIGN.md`` "SavvyCal per-attendee deliveries") and the Event as the API shows it
after each change. The delivery tests run the sandbox as a real server."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from calflow.events.normalize import normalize
from calflow.sandbox import SandboxConfig
from calflow.sandbox.savvycal.seed import GROUP_SIZE
from calflow.sandbox.server import run_in_thread

from .._support import receiver
from ._support import CLOCK, TOKEN, Sandbox

PAYLOAD_ID = re.compile(r"^payload_[0-9A-F]{26}$")
Z_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ANN = {"display_name": "Ann Lee", "email": "ann@example.org", "time_zone": "Europe/Paris",
       "phone_number": "+33612345678"}  # fmt: skip
BOB = {"display_name": "Bob Stone", "email": "bob@example.org", "time_zone": "UTC",
       "phone_number": "+447700900123"}  # fmt: skip


@dataclass
class Live:
    """A real sandbox server, a client on its SavvyCal API, the webhook's secret and id,
    and what the local receiver got."""

    base: str
    api: httpx.Client
    secret: str
    hook_id: str
    received: list[tuple[dict[str, str], bytes]]

    def control(self, path: str, body: Any = None) -> httpx.Response:
        """``POST /_sandbox/savvycal/<path>``, then wait for the deliveries it started (so
        the receiver gets them in the order of the changes)."""
        answer = httpx.post(f"{self.base}/_sandbox/savvycal/{path}", json=body, timeout=10)
        self.flush()
        return answer

    def flush(self) -> None:
        assert httpx.post(f"{self.base}/_sandbox/flush", timeout=30).status_code == 200

    def deliveries(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """Every delivery so far (after flushing), headers lowercased, bodies parsed."""
        self.flush()
        return [({k.lower(): v for k, v in h.items()}, json.loads(b)) for h, b in self.received]

    def workshop_slots(self) -> list[dict[str, Any]]:
        links = self.api.get("/v1/links").json()["entries"]
        link = next(x for x in links if x["slug"] == "workshop")
        slots: list[dict[str, Any]] = self.api.get(f"/v1/links/{link['id']}/slots").json()
        return [{**s, "link": link["id"]} for s in slots]

    def book(self, slot: dict[str, Any], name: str, email: str) -> dict[str, Any]:
        made = self.api.post(f"/v1/links/{slot['link']}/events", json={
            "display_name": name, "email": email, "time_zone": "America/New_York",
            "start_at": slot["start_at"], "end_at": slot["end_at"]})  # fmt: skip
        assert made.status_code == 201, made.text
        self.flush()
        event: dict[str, Any] = made.json()
        return event


@contextmanager
def live() -> Iterator[Live]:
    config = SandboxConfig(savvycal_token=TOKEN, savvycal_seed=0, clock_start=CLOCK)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        receiver() as (url, received),
        run_in_thread(config) as base,
        httpx.Client(base_url=f"{base}/savvycal", headers=auth, timeout=10) as api,
    ):
        hook = api.post("/v1/webhooks", json={"url": url}).json()
        yield Live(base, api, hook["secret"], hook["id"], received)


def emails(event: dict[str, Any]) -> list[str]:
    return [a["email"] for a in event["attendees"] if not a["is_organizer"]]


def test_each_attendee_change_is_one_signed_delivery_and_the_event_shows_it() -> None:
    with live() as sb:
        slots = sb.workshop_slots()
        group = sb.book(slots[0], "Grace Hopper", "grace@example.org")
        assert group["is_group_session"] and group["maximum_group_size"] == GROUP_SIZE
        eid = group["id"]
        for person in (ANN, BOB):
            added = sb.control(f"events/{eid}/attendees", person)
            assert added.status_code == 201, added.text
        assert emails(added.json()) == ["grace@example.org", ANN["email"], BOB["email"]]
        gone = sb.control(f"events/{eid}/attendees/ANN@example.org/cancel")  # any case
        assert gone.status_code == 200 and gone.json()["state"] == "confirmed"
        later = slots[3]
        moved = sb.control(f"events/{eid}/attendees/{BOB['email']}/reschedule",
                           {"start_at": later["start_at"]})  # fmt: skip
        assert moved.status_code == 200, moved.text
        new = moved.json()
        after = sb.api.get(f"/v1/events/{eid}").json()
        listed = sb.api.get("/v1/events", params={"link": later["link"], "limit": 100}).json()
        got = sb.deliveries()

    assert new["id"] != eid and new["start_at"] == later["start_at"]
    assert new["is_group_session"] and emails(new) == [BOB["email"]]
    assert emails(after) == ["grace@example.org"] and after["state"] == "confirmed"
    assert {e["id"] for e in listed["entries"]} >= {eid, new["id"]}
    types = [body["type"] for _, body in got]
    assert types == ["event.created", "event.attendee.added", "event.attendee.added",
                     "event.attendee.canceled", "event.attendee.rescheduled"]  # fmt: skip
    for (headers, body), (_, raw) in zip(got, sb.received, strict=True):
        assert headers["user-agent"] == "SavvyCal Webhooks (https://savvycal.com)"
        assert headers["x-savvycal-webhook-id"] == sb.hook_id
        algo, _, given = headers["x-savvycal-signature"].partition("=")
        expected = hmac.new(sb.secret.encode(), raw, hashlib.sha256).hexdigest()
        assert algo == "sha256" and given == given.upper()
        assert hmac.compare_digest(given.lower(), expected)
        assert PAYLOAD_ID.match(body["id"]) and Z_SECONDS.match(body["occurred_at"])
        assert body["version"] == "2020-11-18"

    (_, bob_added), (_, ann_left), (_, bob_moved) = got[2], got[3], got[4]
    assert set(bob_added["payload"]) == {"event", "attendee"}
    assert bob_added["payload"]["attendee"]["email"] == BOB["email"]
    assert bob_added["payload"]["attendee"]["phone_number"] == BOB["phone_number"]
    assert emails(bob_added["payload"]["event"]) == ["grace@example.org", ANN["email"],
                                                    BOB["email"]]  # fmt: skip
    assert ann_left["payload"]["attendee"]["email"] == ANN["email"]
    assert ann_left["payload"]["attendee"]["response_status"] == "declined"
    assert emails(ann_left["payload"]["event"]) == ["grace@example.org", BOB["email"]]
    assert set(bob_moved["payload"]) == {"event", "attendee", "previous_event"}
    assert bob_moved["payload"]["event"]["id"] == new["id"]
    assert bob_moved["payload"]["previous_event"]["id"] == eid
    assert emails(bob_moved["payload"]["previous_event"]) == ["grace@example.org"]
    assert bob_moved["payload"]["attendee"]["id"] != bob_added["payload"]["attendee"]["id"]

    # calflow reads each one as that attendee's own change
    events = [normalize("savvycal", body) for _, body in got]
    assert [(e.kind, e.booking_uid, e.seat, e.previous_uid) for e in events[1:]] == [
        ("attendee_added", eid, "ann@example.org", None),
        ("attendee_added", eid, "bob@example.org", None),
        ("attendee_cancelled", eid, "ann@example.org", None),
        ("attendee_rescheduled", new["id"], "bob@example.org", eid),
    ]
    assert [a.phone for a in events[1].attendees] == [ANN["phone_number"]]
    assert (
        events[4].start is not None and events[4].start.isoformat()[:19] == (later["start_at"][:19])
    )


def test_a_whole_cancel_and_the_last_attendee_leaving_are_event_canceled() -> None:
    with live() as sb:
        slots = sb.workshop_slots()
        one = sb.book(slots[0], "Grace Hopper", "grace@example.org")
        sb.control(f"events/{one['id']}/attendees", ANN)
        whole = sb.api.post(f"/v1/events/{one['id']}/cancel", json={"cancel_reason": "Sick"})
        sb.flush()
        two = sb.book(slots[1], "Grace Hopper", "grace@example.org")
        last = sb.control(f"events/{two['id']}/attendees/grace@example.org/cancel")
        got = [body for _, body in sb.deliveries()]
    assert whole.status_code == 200 and last.status_code == 200
    assert last.json()["state"] == "canceled"
    types = [b["type"] for b in got]
    assert types == ["event.created", "event.attendee.added", "event.canceled",
                     "event.created", "event.canceled"]  # fmt: skip
    for body in (got[2], got[4]):  # the Event itself is the payload, every attendee listed
        assert body["payload"]["state"] == "canceled" and "attendees" in body["payload"]
    assert got[2]["payload"]["cancel_reason"] == "Sick"
    assert emails(got[2]["payload"]) == ["grace@example.org", ANN["email"]]


# --- the controls' rules (in-process sandbox) -----------------------------------------


async def _group(
    sc: Sandbox, index: int = 0, name: str = "Grace Hopper", email: str = "grace@example.org"
) -> dict[str, Any]:
    """A session of the group link ``workshop`` booked by ``name`` at its open slot
    ``index``."""
    slot = await sc.slot("workshop", index)
    made = await sc.book("workshop", email=email, display_name=name,
                         start_at=slot["start_at"], end_at=slot["end_at"])  # fmt: skip
    assert made.status_code == 201, made.text
    event: dict[str, Any] = made.json()
    return event


async def _control(sc: Sandbox, path: str, body: Any = None) -> httpx.Response:
    return await sc.root.post(f"/_sandbox/savvycal/{path}", json=body)


async def test_an_attendee_added_twice_or_badly_is_refused_naming_the_field(sc: Sandbox) -> None:
    eid = (await _group(sc))["id"]
    hook = await sc.api.post("/v1/webhooks", json={"url": "https://hooks.example.com/sc"})
    assert hook.status_code == 201
    bad = await _control(sc, f"events/{eid}/attendees", {**ANN, "email": "nope", "time_zone": ""})
    assert bad.status_code == 422
    assert bad.json() == {"errors": {"email": ["has invalid format"],
                                     "time_zone": ["can't be blank"]}}  # fmt: skip
    assert (await _control(sc, f"events/{eid}/attendees", ANN)).status_code == 201
    again = await _control(sc, f"events/{eid}/attendees", {**ANN, "email": "ANN@example.org"})
    assert again.status_code == 422
    assert again.json() == {"errors": {"email": ["has already been taken"]}}
    missing = await _control(sc, "events/event_NOPE/attendees", ANN)
    assert missing.status_code == 404
    await sc.state()
    types = [json.loads(r.content)["type"] for r in sc.hooks.requests]
    assert types == ["event.attendee.added"]  # refused changes send nothing


async def test_a_full_group_session_takes_no_one_else(sc: Sandbox) -> None:
    eid = (await _group(sc))["id"]
    for n in range(GROUP_SIZE - 1):  # Grace, the scheduler, holds the first place
        person = {**ANN, "email": f"p{n}@example.org"}
        assert (await _control(sc, f"events/{eid}/attendees", person)).status_code == 201
    full = await _control(sc, f"events/{eid}/attendees", BOB)
    assert full.status_code == 422
    assert full.json() == {"errors": [{"message": "Event is full"}]}
    shown = (await sc.api.get(f"/v1/events/{eid}")).json()
    assert len(emails(shown)) == GROUP_SIZE


async def test_one_attendee_of_an_event_that_is_no_group_session_cannot_leave_alone(
    sc: Sandbox,
) -> None:
    one = (await sc.book("30min")).json()  # Bob Smith's one-to-one
    guest = await _control(sc, f"events/{one['id']}/attendees", ANN)
    assert guest.status_code == 201  # a guest may be added to any event
    alone = await _control(sc, f"events/{one['id']}/attendees/{ANN['email']}/cancel")
    assert alone.status_code == 422
    assert alone.json() == {"errors": [{"message": "Event is not a group session"}]}
    eid = (await _group(sc))["id"]
    unknown = await _control(sc, f"events/{eid}/attendees/nobody@example.org/cancel")
    assert unknown.status_code == 404
    host = await _control(sc, f"events/{eid}/attendees/sam@example.com/cancel")
    assert host.status_code == 404  # the organizer is no attendee to cancel


async def test_an_attendee_moving_to_a_session_at_that_time_joins_it(sc: Sandbox) -> None:
    first = await _group(sc)
    second = await _group(sc, 2, "Cy Young", "cy@example.org")
    await _control(sc, f"events/{first['id']}/attendees", ANN)
    await _control(sc, f"events/{first['id']}/attendees", BOB)
    moved = await _control(sc, f"events/{first['id']}/attendees/{BOB['email']}/reschedule",
                           {"start_at": second["start_at"]})  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["id"] == second["id"]
    assert emails(moved.json()) == ["cy@example.org", BOB["email"]]
    assert moved.json()["scheduler"]["email"] == "cy@example.org"  # still Cy's session
    left = (await sc.api.get(f"/v1/events/{first['id']}")).json()
    assert emails(left) == ["grace@example.org", ANN["email"]]
    closed = await _control(sc, f"events/{first['id']}/attendees/{ANN['email']}/reschedule",
                            {"start_at": "2030-01-12T15:00:00Z"})  # a Saturday  # fmt: skip
    assert closed.status_code == 422
    assert closed.json() == {"errors": {"start_at": ["is not an available time slot"]}}
    bad = await _control(sc, f"events/{first['id']}/attendees/{ANN['email']}/reschedule", {})
    assert bad.status_code == 422 and bad.json() == {"errors": {"start_at": ["is invalid"]}}


async def test_the_last_attendee_moving_away_leaves_the_session_canceled(sc: Sandbox) -> None:
    group = await _group(sc)
    later = await sc.slot("workshop", 4)
    moved = await _control(sc, f"events/{group['id']}/attendees/grace@example.org/reschedule",
                           {"start_at": later["start_at"]})  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["scheduler"]["email"] == "grace@example.org"  # her own new session
    left = (await sc.api.get(f"/v1/events/{group['id']}")).json()
    assert left["state"] == "canceled" and emails(left) == []
