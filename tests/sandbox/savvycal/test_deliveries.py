"""SavvyCal deliveries as SavvyCal documents them (developers.savvycal.com schemas)."""

from __future__ import annotations

import json
from typing import Any

from ._support import Sandbox

ATTENDEE_KEYS = {
    "id",
    "display_name",
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "time_zone",
    "is_organizer",
    "marketing_opt_in",
    "response_status",
    "fields",
}


async def _hook(sc: Sandbox) -> dict[str, Any]:
    response = await sc.api.post("/v1/webhooks", json={"url": "https://h.example.com/savvy"})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _bodies(sc: Sandbox) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in sc.hooks.requests]


async def test_event_changed_puts_the_event_under_payload_event(sc: Sandbox) -> None:
    """EventChangedWebhook: ``payload`` is ``{event: Event}``; other types (e.g.
    EventCreatedWebhook) carry the Event directly in ``payload``."""
    await _hook(sc)
    event = (await sc.book()).json()
    await sc.root.post(f"/_sandbox/savvycal/events/{event['id']}/change", json={"summary": "New"})
    await sc.root.post("/_sandbox/savvycal/flush")
    created, changed = _bodies(sc)
    assert created["type"] == "event.created" and created["payload"]["id"] == event["id"]
    assert changed["type"] == "event.changed"
    assert list(changed["payload"]) == ["event"]
    assert changed["payload"]["event"]["id"] == event["id"]
    assert changed["payload"]["event"]["summary"] == "New"


async def test_attendees_are_the_documented_attendee(sc: Sandbox) -> None:
    """The Event schema's Attendee: display_name, first_name, last_name, email,
    phone_number, time_zone, is_organizer, marketing_opt_in, response_status, fields
    (and the opaque id), no ``is_scheduler``; the Event has ``description_settings`` and
    ``location_settings`` (required objects)."""
    await _hook(sc)
    event = (await sc.book()).json()
    await sc.root.post("/_sandbox/savvycal/flush")
    payload = _bodies(sc)[0]["payload"]
    for shape in (payload, event):
        assert all(set(a) == ATTENDEE_KEYS for a in shape["attendees"])
        assert set(shape["scheduler"]) == ATTENDEE_KEYS
        assert set(shape["organizer"]) == ATTENDEE_KEYS
        assert shape["description_settings"] == {} and shape["location_settings"] == {}
    fetched = (await sc.api.get(f"/v1/events/{event['id']}")).json()
    assert "is_scheduler" not in json.dumps(fetched)
