"""calflow's own actions, run through ``Runner`` against the sandbox: the event each
BookingChange normalizes to has the dedupe key of the webhook the provider sent for
the same change, and carries the attendee phone in E.164."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from calflow.errors import ConfigError, ValidationError
from calflow.events import BookingEvent, Person
from calflow.events.normalize import from_action, normalize
from calflow.flowapp import BookingChange

from ._support import RECEIVED, Sandbox, parse

ANN = {
    "name": "Ann Lee",
    "email": "ann@example.com",
    "timeZone": "America/New_York",
    "phoneNumber": "(415) 555-0123",
}
ANN_E164 = "+14155550123"


def webhook(provider: str, body: dict[str, Any]) -> BookingEvent:
    return normalize(provider, body, received_at=RECEIVED)


def last_change(sb: Sandbox) -> BookingEvent:
    return from_action(sb.changes[-1], received_at=RECEIVED)


async def cal_book(sb: Sandbox, event_type_id: int = 101, **extra: Any) -> BookingEvent:
    data = {
        "eventTypeId": event_type_id,
        "start": await sb.cal_slot(event_type_id),
        "attendee": ANN,
        "defaultPhoneRegion": "US",
        **extra,
    }
    await sb.run("cal_com", "BookMeeting", data)
    return last_change(sb)


async def cal_hook(sb: Sandbox, before: int, trigger: str) -> BookingEvent:
    bodies = [b for b in await sb.new_cal_hooks(before) if b["triggerEvent"] == trigger]
    assert len(bodies) == 1, bodies
    return webhook("cal_com", bodies[0])


# Cal.com --------------------------------------------------------------------------


async def test_book_meeting_matches_booking_created(sb: Sandbox) -> None:
    action = await cal_book(sb, metadata={"crm": "42"})
    hook = await cal_hook(sb, 0, "BOOKING_CREATED")
    assert action.dedupe_key() == hook.dedupe_key()
    assert (action.source, action.kind, action.original_type) == (
        "action",
        "created",
        "BOOKING_CREATED",
    )
    assert action.booking_uid == hook.booking_uid and action.integration_id == "int_cal"
    assert action.phones == [ANN_E164] == hook.phones
    # the same booking, the same facts, whichever door it came through
    for name in ("start", "end", "status", "title", "meeting_url"):
        assert getattr(action, name) == getattr(hook, name), name
    # API v2 answers absent=false where the webhook says nothing; its host has no locale
    assert [replace(a, no_show=None) for a in action.attendees] == list(hook.attendees)
    assert action.attendees[0].no_show is False
    assert hook.organizer is not None
    assert action.organizer == replace(hook.organizer, language=None)
    assert action.event_type is not None and hook.event_type is not None
    assert (action.event_type.id, action.event_type.slug) == ("101", "30min")
    assert action.raw == sb.changes[-1].booking
    assert action.occurred_at == parse(action.raw["createdAt"])
    assert action.received_at == RECEIVED


async def test_pending_booking_then_confirm(sb: Sandbox) -> None:
    requested = await cal_book(sb, 104)
    assert sb.changes[-1].kind == "requested" and requested.kind == "requested"
    assert requested.dedupe_key() == (await cal_hook(sb, 0, "BOOKING_REQUESTED")).dedupe_key()
    before = len(await sb.cal_hooks())
    await sb.run("cal_com", "ConfirmBooking", {"bookingUid": requested.booking_uid})
    assert sb.changes[-1].kind == "approved"
    confirmed = last_change(sb)
    hook = await cal_hook(sb, before, "BOOKING_CREATED")
    assert (confirmed.kind, confirmed.original_type) == ("created", "BOOKING_CREATED")
    assert confirmed.dedupe_key() == hook.dedupe_key() != requested.dedupe_key()
    assert confirmed.phones == [ANN_E164]


async def test_decline(sb: Sandbox) -> None:
    requested = await cal_book(sb, 104)
    before = len(await sb.cal_hooks())
    data = {"bookingUid": requested.booking_uid, "reason": "Fully booked"}
    await sb.run("cal_com", "DeclineBooking", data)
    declined = last_change(sb)
    hook = await cal_hook(sb, before, "BOOKING_REJECTED")
    assert (declined.kind, declined.reason, declined.status) == (
        "declined",
        "Fully booked",
        "rejected",
    )
    assert declined.dedupe_key() == hook.dedupe_key()
    assert hook.reason == "Fully booked"


async def test_reschedule_keys_on_the_new_booking(sb: Sandbox) -> None:
    booked = await cal_book(sb)
    before = len(await sb.cal_hooks())
    target = await sb.cal_slot(index=4)
    data = {"bookingUid": booked.booking_uid, "start": target, "reschedulingReason": "Clash"}
    await sb.run("cal_com", "RescheduleBooking", data)
    moved = last_change(sb)
    hook = await cal_hook(sb, before, "BOOKING_RESCHEDULED")
    assert moved.kind == "rescheduled" and moved.booking_uid != booked.booking_uid
    assert moved.previous_uid == booked.booking_uid == hook.previous_uid
    assert moved.start == parse(target) and moved.reason == "Clash" == hook.reason
    assert moved.dedupe_key() == hook.dedupe_key()
    assert moved.phones == [ANN_E164]


async def test_reschedule_needing_confirmation_is_a_request(sb: Sandbox) -> None:
    booked = await cal_book(sb, 104)
    before = len(await sb.cal_hooks())
    target = await sb.cal_slot(104, index=4)
    await sb.run(
        "cal_com", "RescheduleBooking", {"bookingUid": booked.booking_uid, "start": target}
    )
    moved = last_change(sb)
    assert sb.changes[-1].kind == "rescheduled"
    hook = await cal_hook(sb, before, "BOOKING_REQUESTED")
    assert (moved.kind, moved.status, moved.original_type) == (
        "requested",
        "pending",
        "BOOKING_REQUESTED",
    )
    assert moved.previous_uid == booked.booking_uid == hook.previous_uid
    assert moved.dedupe_key() == hook.dedupe_key()


async def test_cancel(sb: Sandbox) -> None:
    booked = await cal_book(sb)
    before = len(await sb.cal_hooks())
    data = {"bookingUid": booked.booking_uid, "cancellationReason": "Ill"}
    await sb.run("cal_com", "CancelBooking", data)
    cancelled = last_change(sb)
    hook = await cal_hook(sb, before, "BOOKING_CANCELLED")
    assert (cancelled.kind, cancelled.reason, cancelled.status) == ("cancelled", "Ill", "cancelled")
    assert cancelled.dedupe_key() == hook.dedupe_key()
    assert cancelled.phones == [ANN_E164]


async def test_mark_absent_matches_the_no_show_webhooks(sb: Sandbox) -> None:
    booked = await cal_book(sb)
    uid = booked.booking_uid
    guest = {"email": "dan@example.com", "name": "Dan Ng", "phoneNumber": "06 12 34 56 78"}
    await sb.run(
        "cal_com",
        "AddGuests",
        {"bookingUid": uid, "guests": [guest], "defaultPhoneRegion": "FR"},
    )
    added = last_change(sb)
    assert added.kind == "guests_added"
    assert [a.phone for a in added.attendees] == [ANN_E164, "+33612345678"]
    await sb.clock(90 * 86400)

    before = len(await sb.cal_hooks())
    entries = [
        {"email": "dan@example.com", "absent": True},
        {"email": "stranger@example.com", "absent": True},  # not on the booking
        {"email": "ann@example.com", "absent": False},
    ]
    await sb.run("cal_com", "MarkAbsent", {"bookingUid": uid, "attendees": entries})
    marked = last_change(sb)
    hook = await cal_hook(sb, before, "BOOKING_NO_SHOW_UPDATED")
    assert [(a["email"], a["noShow"]) for a in hook.raw["payload"]["attendees"]] == [
        ("dan@example.com", True),
        ("ann@example.com", False),
    ]
    assert [(a.email, a.no_show) for a in marked.attendees] == [
        ("dan@example.com", True),
        ("ann@example.com", False),
    ]
    assert marked.dedupe_key() == hook.dedupe_key()
    assert marked.attendees[1].phone == ANN_E164

    before = len(await sb.cal_hooks())
    await sb.run("cal_com", "MarkAbsent", {"bookingUid": uid, "host": True})
    host_only = last_change(sb)
    hook = await cal_hook(sb, before, "BOOKING_NO_SHOW_UPDATED")
    assert host_only.attendees == () == hook.attendees
    assert host_only.dedupe_key() == hook.dedupe_key() != marked.dedupe_key()

    before = len(await sb.cal_hooks())
    both = {"bookingUid": uid, "host": False, "attendees": [entries[0]]}
    await sb.run("cal_com", "MarkAbsent", both)
    together = last_change(sb)
    bodies = [b for b in await sb.new_cal_hooks(before)]
    assert [len(b["payload"]["attendees"]) for b in bodies] == [0, 1]
    # Cal.com sends the host's and the attendees' updates apart; the action is the latter
    assert together.dedupe_key() == webhook("cal_com", bodies[1]).dedupe_key()


async def test_phone_from_the_action_input_when_the_booking_does_not_echo_it(
    sb: Sandbox,
) -> None:
    """The point of it all: an API booking reaches workflows with the attendee phone even
    when the provider's answer leaves it out."""
    await cal_book(sb)
    change = sb.changes[-1]
    assert change.input["attendee"]["phoneNumber"] == ANN_E164  # what was sent
    thin = copy.deepcopy(dict(change.booking))
    for attendee in thin["attendees"]:
        attendee.pop("phoneNumber", None)
    thin["bookingFieldsResponses"].pop("attendeePhoneNumber", None)
    event = from_action(replace(change, booking=thin))
    assert event.phones == [ANN_E164]
    without_input = replace(change, booking=thin, input={**change.input, "attendee": {}})
    assert from_action(without_input).phones == []


# SavvyCal -------------------------------------------------------------------------


async def sc_book(sb: Sandbox, slug: str = "30min") -> BookingEvent:
    slot = await sb.sc_slot(slug)
    data = {
        "link_id": sb.link_id(slug),
        "display_name": "Ann Lee",
        "email": "ann@example.com",
        "start_at": slot["start_at"],
        "duration": slot["duration"],
        "time_zone": "America/New_York",
        "phone_number": "(415) 555-0123",
        "default_phone_region": "US",
    }
    await sb.run("savvycal", "BookEvent", data)
    return last_change(sb)


async def sc_hook(sb: Sandbox, before: int, type_: str) -> BookingEvent:
    bodies = [b for b in await sb.new_sc_hooks(before) if b["type"] == type_]
    assert len(bodies) == 1, bodies
    return webhook("savvycal", bodies[0])


async def test_book_event_matches_event_created(sb: Sandbox) -> None:
    action = await sc_book(sb)
    hook = await sc_hook(sb, 0, "event.created")
    assert (action.source, action.kind, action.original_type) == (
        "action",
        "created",
        "event.created",
    )
    assert action.dedupe_key() == hook.dedupe_key()
    assert action.phones == [ANN_E164] == hook.phones
    for name in ("start", "end", "status", "title", "meeting_url", "organizer", "attendees"):
        assert getattr(action, name) == getattr(hook, name), name
    assert action.occurred_at == parse(action.raw["created_at"])


async def test_book_event_needing_approval_matches_event_requested(sb: Sandbox) -> None:
    action = await sc_book(sb, "discovery")
    hook = await sc_hook(sb, 0, "event.requested")
    assert action.kind == "requested" and action.status == "awaiting_approval"
    assert action.dedupe_key() == hook.dedupe_key()
    as_created = from_action(replace(sb.changes[-1], kind="created"))
    assert as_created.kind == "requested"  # the state decides, as SavvyCal's webhook does


async def test_cancel_event_matches_event_canceled(sb: Sandbox) -> None:
    booked = await sc_book(sb)
    before = len(await sb.sc_hooks())
    data = {"event_id": booked.booking_uid, "cancel_reason": "Ill"}
    await sb.run("savvycal", "CancelEvent", data)
    cancelled = last_change(sb)
    hook = await sc_hook(sb, before, "event.canceled")
    assert (cancelled.kind, cancelled.reason, cancelled.status) == ("cancelled", "Ill", "canceled")
    assert cancelled.dedupe_key() == hook.dedupe_key() != booked.dedupe_key()
    assert cancelled.phones == [ANN_E164]
    assert cancelled.occurred_at == parse(cancelled.raw["canceled_at"])


async def test_savvycal_phone_from_input_when_not_echoed(sb: Sandbox) -> None:
    await sc_book(sb)
    change = sb.changes[-1]
    thin = copy.deepcopy(dict(change.booking))
    for attendee in thin["attendees"]:
        attendee["phone_number"] = None
    thin["scheduler"]["phone_number"] = None
    assert from_action(replace(change, booking=thin)).phones == [ANN_E164]
    no_phone = {k: v for k, v in change.input.items() if k != "phone_number"}
    assert from_action(replace(change, booking=thin, input=no_phone)).phones == []


# bad changes ----------------------------------------------------------------------


def test_bad_changes() -> None:
    with pytest.raises(ConfigError, match="no normalizer"):
        from_action(BookingChange("zoom", "created", {"uid": "x"}, None))
    for provider, field in (("cal_com", "uid"), ("savvycal", "id")):
        with pytest.raises(ValidationError, match=field):
            from_action(BookingChange(provider, "created", {"title": "no id"}, None))
    unknown = from_action(BookingChange("cal_com", "teleported", {"uid": "u1"}, None))
    assert (unknown.kind, unknown.original_type, unknown.booking_uid) == (
        "other",
        "teleported",
        "u1",
    )


def test_person_equality_is_what_the_key_uses() -> None:
    """A no-show key depends on emails and flags only (not names or phones)."""
    a = BookingEvent(
        provider="cal_com",
        kind="no_show_updated",
        booking_uid="u",
        source="action",
        occurred_at=RECEIVED,
        received_at=RECEIVED,
        attendees=(Person(name="Ann", email="a@x.io", phone="+14155550123", no_show=True),),
    )
    b = replace(a, source="webhook", attendees=(Person(email="a@x.io", no_show=True),))
    assert a.dedupe_key() == b.dedupe_key()
    assert (
        a.dedupe_key()
        != replace(b, attendees=(Person(email="a@x.io", no_show=False),)).dedupe_key()
    )
