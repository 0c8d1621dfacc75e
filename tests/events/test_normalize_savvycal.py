"""SavvyCal deliveries, as the sandbox sends them, normalized field by field."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from calflow.events import BookingEvent, EventType, Person
from calflow.events.normalize import normalize

from ._support import RECEIVED, Sandbox, parse

SAM = Person(
    name="Sam Rivera",
    email="sam@example.com",
    time_zone="America/New_York",
    first_name="Sam",
    last_name="Rivera",
)
BOB = Person(
    name="Bob Smith",
    email="bob@example.com",
    time_zone="Europe/London",
    first_name="Bob",
    last_name="Smith",
)


def savvy(body: dict[str, Any], **kwargs: Any) -> BookingEvent:
    kwargs.setdefault("received_at", RECEIVED)
    return normalize("savvycal", body, **kwargs)


def of_type(bodies: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    found = [b for b in bodies if b["type"] == type_]
    assert len(found) == 1, [b["type"] for b in bodies]
    return found[0]


def expected(sb: Sandbox, body: dict[str, Any], event: dict[str, Any], **fields: Any) -> Any:
    """The event of a delivery about ``event`` (the API's view); ``fields`` override."""
    slug = fields.pop("slug", "30min")
    names = {"30min": "30 Minute Meeting", "discovery": "Discovery Call"}
    base: dict[str, Any] = {
        "provider": "savvycal",
        "booking_uid": event["id"],
        "source": "webhook",
        "occurred_at": parse(body["occurred_at"]),
        "received_at": RECEIVED,
        "start": parse(event["start_at"]),
        "end": parse(event["end_at"]),
        "status": "confirmed",
        "title": f"{names[slug]}: Bob Smith and Sam Rivera",
        "event_type": EventType(id=sb.link_id(slug), slug=slug, title=names[slug]),
        "organizer": SAM,
        "attendees": (BOB,),
        "location": "Google Meet",
        "meeting_url": event["conferencing"]["join_url"],
        "raw": body,
    }
    base.update(fields)
    return BookingEvent(**base)


async def test_created_with_phone(sb: Sandbox) -> None:
    event = await sb.sc_book(phone_number="+1 415-555-0123", metadata={"crm": "42"})
    body = of_type(await sb.sc_hooks(), "event.created")
    assert body["payload"]["attendees"][1]["phone_number"] == "+1 415-555-0123"
    normalized = savvy(body, integration_id="int_sc")
    assert normalized == expected(
        sb,
        body,
        event,
        kind="created",
        original_type="event.created",
        attendees=(Person(**{**BOB.to_dict(), "phone": "+14155550123"}),),
        integration_id="int_sc",
        metadata={"crm": "42"},
    )
    assert event["conferencing"]["join_url"].startswith("https://meet.google.com/")
    assert normalized.occurred_at != RECEIVED


async def test_phone_from_the_booking_form_field(sb: Sandbox) -> None:
    field = {"id": "field_phone", "label": "Phone", "type": "phone", "value": "+33 6 12 34 56 78"}
    await sb.sc_book(fields=[field])
    body = of_type(await sb.sc_hooks(), "event.created")
    assert body["payload"]["attendees"][1]["phone_number"] is None
    assert savvy(body).attendees[0].phone == "+33612345678"


async def test_requested_then_approved_sends_approved_and_created(sb: Sandbox) -> None:
    event = await sb.sc_book("discovery")
    await sb.sc_control(f"/events/{event['id']}/approve")
    bodies = await sb.sc_hooks()
    assert [b["type"] for b in bodies] == ["event.requested", "event.approved", "event.created"]
    requested, approved, created = (savvy(b) for b in bodies)
    assert requested == expected(
        sb,
        bodies[0],
        event,
        slug="discovery",
        kind="requested",
        original_type="event.requested",
        status="awaiting_approval",
    )
    for normalized, body, kind in (
        (approved, bodies[1], "approved"),
        (created, bodies[2], "created"),
    ):
        assert normalized == expected(
            sb, body, event, slug="discovery", kind=kind, original_type=body["type"]
        )
    keys = [e.dedupe_key() for e in (requested, approved, created)]
    assert len(set(keys)) == 3

    # a replay rebuilds the envelope from GET /v1/events (state confirmed → event.created)
    fetched = (await sb.sc.get(f"/v1/events/{event['id']}")).json()
    replayed = {
        "type": "event.created",
        "id": "payload_replay_1",
        "version": "2020-11-18",
        "occurred_at": fetched["created_at"],
        "payload": fetched,
    }
    replay = savvy(replayed, source="replay", received_at=RECEIVED + timedelta(days=3))
    assert replay.source == "replay" and replay.kind == "created"
    assert replay.dedupe_key() == created.dedupe_key() != approved.dedupe_key()
    # SavvyCal's own retry re-sends the same body
    assert savvy(copy.deepcopy(bodies[2])).dedupe_key() == created.dedupe_key()


async def test_declined(sb: Sandbox) -> None:
    event = await sb.sc_book("discovery")
    await sb.sc_control(f"/events/{event['id']}/decline", {"reason": "Busy that week"})
    body = of_type(await sb.sc_hooks(), "event.declined")
    assert savvy(body) == expected(
        sb,
        body,
        event,
        slug="discovery",
        kind="declined",
        original_type="event.declined",
        status="declined",
        reason="Busy that week",
    )


async def test_rescheduled_keeps_the_id_and_keys_on_the_start(sb: Sandbox) -> None:
    event = await sb.sc_book()
    slot = await sb.sc_slot(index=3)
    body_in = {"start_at": slot["start_at"], "reschedule_reason": "Dentist"}
    moved = await sb.sc_control(f"/events/{event['id']}/reschedule", body_in)
    later = await sb.sc_slot(index=5)
    await sb.sc_control(f"/events/{event['id']}/reschedule", {"start_at": later["start_at"]})
    bodies = [b for b in await sb.sc_hooks() if b["type"] == "event.rescheduled"]
    first, second = (savvy(b) for b in bodies)
    assert moved["id"] == event["id"] and moved["start_at"] == slot["start_at"]
    assert first == expected(
        sb,
        bodies[0],
        moved,
        kind="rescheduled",
        original_type="event.rescheduled",
        reason="Dentist",
    )
    assert second.start == parse(later["start_at"]) and second.reason is None
    assert first.dedupe_key() != second.dedupe_key()


async def test_changed(sb: Sandbox) -> None:
    event = await sb.sc_book()
    await sb.sc_control(f"/events/{event['id']}/change", {"summary": "Renamed", "location": "Cafe"})
    body = of_type(await sb.sc_hooks(), "event.changed")
    assert savvy(body) == expected(
        sb,
        body,
        event,
        kind="changed",
        original_type="event.changed",
        title="Renamed",
        location="Cafe",
    )


async def test_canceled(sb: Sandbox) -> None:
    event = await sb.sc_book()
    response = await sb.sc.post(f"/v1/events/{event['id']}/cancel", json={"cancel_reason": "Ill"})
    assert response.status_code == 200, response.text
    body = of_type(await sb.sc_hooks(), "event.canceled")
    assert savvy(body) == expected(
        sb,
        body,
        event,
        kind="cancelled",
        original_type="event.canceled",
        status="canceled",
        reason="Ill",
    )


async def test_every_type_maps_to_its_kind(sb: Sandbox) -> None:
    await sb.sc_book()
    body = of_type(await sb.sc_hooks(), "event.created")
    table = {
        "event.created": "created",
        "event.requested": "requested",
        "event.approved": "approved",
        "event.declined": "declined",
        "event.rescheduled": "rescheduled",
        "event.changed": "changed",
        "event.canceled": "cancelled",
        "event.checkout.pending": "checkout_pending",
        "event.checkout.expired": "checkout_expired",
        "event.checkout.completed": "paid",
        "event.attendee.added": "attendee_added",
        "event.attendee.canceled": "attendee_cancelled",
        "event.attendee.rescheduled": "attendee_rescheduled",
        "event.teleported": "other",
    }
    for type_, kind in table.items():
        event = savvy({**body, "type": type_})
        assert (event.kind, event.original_type) == (kind, type_)
        assert event.booking_uid == body["payload"]["id"]


async def test_polls_and_workflow_actions_are_other(sb: Sandbox) -> None:
    await sb.sc_book()
    body = of_type(await sb.sc_hooks(), "event.created")
    poll = {
        **body,
        "type": "poll.response.created",
        "payload": {"id": "poll_resp_1", "poll": {"id": "poll_1"}, "email": "x@y.z"},
    }
    other_poll = {**poll, "payload": {**poll["payload"], "id": "poll_resp_2"}}
    normalized = savvy(poll)
    assert (normalized.kind, normalized.original_type) == ("other", "poll.response.created")
    assert normalized.booking_uid == "" and normalized.attendees == ()
    assert normalized.dedupe_key() != savvy(other_poll).dedupe_key()
    workflow = {**body, "type": "workflow.action.triggered", "payload": {"event": body["payload"]}}
    triggered = savvy(workflow)
    assert (triggered.kind, triggered.booking_uid) == ("other", body["payload"]["id"])
    assert triggered.attendees == savvy(body).attendees


async def test_an_event_type_without_an_event_id_is_other(sb: Sandbox) -> None:
    await sb.sc_book()
    body = copy.deepcopy(of_type(await sb.sc_hooks(), "event.created"))
    del body["payload"]["id"]
    normalized = savvy(body)
    assert (normalized.kind, normalized.original_type) == ("other", "event.created")
    assert normalized.booking_uid == "" and normalized.attendees == (BOB,)
