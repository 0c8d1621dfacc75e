"""Cal.com deliveries, as the sandbox sends them, normalized field by field."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from calflow.events import BookingEvent, EventType, Person
from calflow.events.normalize import normalize

from ._support import BOOKINGS, RECEIVED, Sandbox, parse

PHONE = "+14155550123"
HOST = Person(
    name="Demo Host",
    email="demo@example.com",
    time_zone="Europe/Paris",
    language="en",
    first_name="Demo",
    last_name="Host",
)
BOB = Person(
    name="Bob Smith",
    email="bob@example.com",
    time_zone="Europe/London",
    language="en",
    first_name="Bob",
    last_name="Smith",
)
THIRTY = EventType(id="101", slug="30min", title="30 Minute Meeting")
CONSULTATION = EventType(
    id="104", slug="consultation", title="Consultation (requires confirmation)"
)


def only(bodies: list[dict[str, Any]], trigger: str) -> dict[str, Any]:
    found = [b for b in bodies if b["triggerEvent"] == trigger]
    assert len(found) == 1, [b["triggerEvent"] for b in bodies]
    return found[0]


def video(uid: str) -> str:
    return f"https://app.cal.com/video/{uid}"


def cal(body: dict[str, Any], **kwargs: Any) -> BookingEvent:
    kwargs.setdefault("received_at", RECEIVED)
    return normalize("cal_com", body, **kwargs)


def expected(body: dict[str, Any], booking: dict[str, Any], **fields: Any) -> BookingEvent:
    """The event of a delivery about ``booking``; ``fields`` override the defaults."""
    base: dict[str, Any] = {
        "provider": "cal_com",
        "booking_uid": booking["uid"],
        "source": "webhook",
        "occurred_at": parse(body["createdAt"]),
        "received_at": RECEIVED,
        "start": parse(booking["start"]),
        "end": parse(booking["end"]),
        "event_type": THIRTY,
        "organizer": HOST,
        "location": "integrations:daily",
        "meeting_url": video(booking["uid"]),
        "metadata": {"videoCallUrl": video(booking["uid"])},
        "raw": body,
    }
    base.update(fields)
    return BookingEvent(**base)


async def test_created_with_phone_guests_and_metadata(sb: Sandbox) -> None:
    booking = await sb.cal_book(
        attendee={**BOB_INPUT, "phoneNumber": PHONE},
        guests=["carol@example.com"],
        metadata={"crm": "42"},
    )
    body = only(await sb.cal_hooks(), "BOOKING_CREATED")
    event = cal(body, integration_id="int_1")
    carol = Person(
        name="carol@example.com",
        email="carol@example.com",
        time_zone="Europe/London",
        language="en",
    )
    assert event == expected(
        body,
        booking,
        kind="created",
        original_type="BOOKING_CREATED",
        status="accepted",
        title="30 Minute Meeting between Demo Host and Bob Smith",
        attendees=(Person(**{**BOB.to_dict(), "phone": PHONE}), carol),
        integration_id="int_1",
        metadata={"crm": "42", "videoCallUrl": video(booking["uid"])},
    )
    assert event.occurred_at != RECEIVED and event.occurred_at.tzinfo is not None
    assert event.phones == [PHONE]


async def test_phone_given_only_in_the_booking_form_is_the_attendees(sb: Sandbox) -> None:
    """A booking-page booking whose phone is a form response, not on the attendee: the
    class of bug where a thinner path loses the phone."""
    booking = await sb.cal_book(
        web=True, bookingFieldsResponses={"attendeePhoneNumber": "+1 415-555-0123"}
    )
    body = only(await sb.cal_hooks(), "BOOKING_CREATED")
    assert "phoneNumber" not in body["payload"]["attendees"][0]
    event = cal(body)
    assert event.booking_uid == booking["uid"]
    assert event.attendees == (Person(**{**BOB.to_dict(), "phone": PHONE}),)


async def test_requested_then_confirmed(sb: Sandbox) -> None:
    booking = await sb.cal_book(104)
    await sb.cal_post(f"/v2/bookings/{booking['uid']}/confirm")
    bodies = await sb.cal_hooks()
    assert [b["triggerEvent"] for b in bodies] == ["BOOKING_REQUESTED", "BOOKING_CREATED"]
    requested, created = (cal(b) for b in bodies)
    common = {
        "event_type": CONSULTATION,
        "title": "Consultation (requires confirmation) between Demo Host and Bob Smith",
        "attendees": (BOB,),
    }
    assert requested == expected(
        bodies[0],
        booking,
        kind="requested",
        original_type="BOOKING_REQUESTED",
        status="pending",
        **common,
    )
    assert created == expected(
        bodies[1],
        booking,
        kind="created",
        original_type="BOOKING_CREATED",
        status="accepted",
        **common,
    )
    assert requested.dedupe_key() != created.dedupe_key()


async def test_rescheduled_keys_on_the_new_booking_and_start(sb: Sandbox) -> None:
    old = await sb.cal_book()
    target = await sb.cal_slot(index=4)
    new = await sb.cal_post(
        f"/v2/bookings/{old['uid']}/reschedule",
        {"start": target, "reschedulingReason": "Clash"},
    )
    body = only(await sb.cal_hooks(), "BOOKING_RESCHEDULED")
    event = cal(body)
    assert new["uid"] != old["uid"] and parse(new["start"]) == parse(target)
    assert event == expected(
        body,
        new,
        kind="rescheduled",
        original_type="BOOKING_RESCHEDULED",
        previous_uid=old["uid"],
        status="accepted",
        title="30 Minute Meeting between Demo Host and Bob Smith",
        attendees=(BOB,),
        reason="Clash",
    )
    moved_again = copy.deepcopy(body)
    moved_again["payload"]["startTime"] = "2099-01-01T10:00:00Z"
    assert cal(moved_again).dedupe_key() != event.dedupe_key()


async def test_cancelled_with_and_without_reason(sb: Sandbox) -> None:
    first = await sb.cal_book()
    second = await sb.cal_book()
    await sb.cal_post(f"/v2/bookings/{first['uid']}/cancel", {"cancellationReason": "Ill"})
    await sb.cal_post(f"/v2/bookings/{second['uid']}/cancel")
    bodies = [b for b in await sb.cal_hooks() if b["triggerEvent"] == "BOOKING_CANCELLED"]
    with_reason, without = (cal(b) for b in bodies)
    assert with_reason == expected(
        bodies[0],
        first,
        kind="cancelled",
        original_type="BOOKING_CANCELLED",
        status="cancelled",
        title="30 Minute Meeting between Demo Host and Bob Smith",
        attendees=(BOB,),
        reason="Ill",
    )
    assert bodies[1]["payload"]["cancellationReason"] == ""
    assert without.reason is None and without.booking_uid == second["uid"]


async def test_rejected(sb: Sandbox) -> None:
    booking = await sb.cal_book(104)
    await sb.cal_post(f"/v2/bookings/{booking['uid']}/decline", {"reason": "Fully booked"})
    body = only(await sb.cal_hooks(), "BOOKING_REJECTED")
    assert cal(body) == expected(
        body,
        booking,
        kind="declined",
        original_type="BOOKING_REJECTED",
        status="rejected",
        event_type=CONSULTATION,
        title="Consultation (requires confirmation) between Demo Host and Bob Smith",
        attendees=(BOB,),
        reason="Fully booked",
    )


async def test_guest_listed_twice_is_one_attendee_with_its_phone(sb: Sandbox) -> None:
    """After ``/guests`` the sandbox lists a guest both as attendee and as guest."""
    booking = await sb.cal_book()
    guest = {"email": "dan@example.com", "name": "Dan Ng", "phoneNumber": "+33612345678"}
    await sb.cal_post(f"/v2/bookings/{booking['uid']}/guests", {"guests": [guest]})
    await sb.cal_post(f"/v2/bookings/{booking['uid']}/cancel")
    body = only(await sb.cal_hooks(), "BOOKING_CANCELLED")
    emails = [a["email"] for a in body["payload"]["attendees"]]
    assert emails.count("dan@example.com") == 2
    dan = Person(
        name="Dan Ng",
        email="dan@example.com",
        time_zone="Europe/London",
        language="en",
        phone="+33612345678",
        first_name="Dan",
        last_name="Ng",
    )
    assert cal(body).attendees == (BOB, dan)


async def test_no_show_updated_lists_only_the_changed_attendees(sb: Sandbox) -> None:
    booking = await sb.cal_book()
    await sb.cal_post(
        f"/v2/bookings/{booking['uid']}/guests", {"guests": [{"email": "dan@example.com"}]}
    )
    await sb.clock(90 * 86400)
    path = f"/v2/bookings/{booking['uid']}/mark-absent"
    await sb.cal_post(path, {"attendees": [{"email": "bob@example.com", "absent": True}]})
    await sb.cal_post(path, {"attendees": [{"email": "bob@example.com", "absent": False}]})
    await sb.cal_post(path, {"host": True})
    bodies = [b for b in await sb.cal_hooks() if b["triggerEvent"] == "BOOKING_NO_SHOW_UPDATED"]
    marked, unmarked, host = (cal(b) for b in bodies)
    assert marked == BookingEvent(
        provider="cal_com",
        kind="no_show_updated",
        original_type="BOOKING_NO_SHOW_UPDATED",
        booking_uid=booking["uid"],
        source="webhook",
        occurred_at=parse(bodies[0]["createdAt"]),
        received_at=RECEIVED,
        attendees=(Person(email="bob@example.com", no_show=True),),
        raw=bodies[0],
    )
    assert parse(bodies[0]["createdAt"]) - parse(booking["createdAt"]) > timedelta(days=89)
    assert unmarked.attendees == (Person(email="bob@example.com", no_show=False),)
    assert host.attendees == () and host.booking_uid == booking["uid"]
    keys = {e.dedupe_key() for e in (marked, unmarked, host)}
    assert len(keys) == 3


async def test_meeting_started_and_ended_are_flat_rows(sb: Sandbox) -> None:
    """The older flat shape (the sandbox's ``meeting_payload: flat``); the nested one is
    in ``test_real_calcom_shapes``."""
    resp = await sb.root.post("/_sandbox/calcom/options", json={"meeting_payload": "flat"})
    assert resp.status_code == 200, resp.text
    booking = await sb.cal_book(attendee={**BOB_INPUT, "phoneNumber": PHONE})
    await sb.cal_control(f"/bookings/{booking['uid']}/meeting-started")
    await sb.cal_control(f"/bookings/{booking['uid']}/meeting-ended")
    bodies = (await sb.cal_hooks())[1:]
    assert [b["triggerEvent"] for b in bodies] == ["MEETING_STARTED", "MEETING_ENDED"]
    assert all("payload" not in b for b in bodies)
    # the row's createdAt is the booking's, not the delivery's: not when it occurred
    assert bodies[0]["createdAt"] == booking["createdAt"]
    started, ended = (cal(b) for b in bodies)
    host = Person(**{**HOST.to_dict()})
    assert started == BookingEvent(
        provider="cal_com",
        kind="meeting_started",
        original_type="MEETING_STARTED",
        booking_uid=booking["uid"],
        source="webhook",
        occurred_at=RECEIVED,
        received_at=RECEIVED,
        start=parse(booking["start"]),
        end=parse(booking["end"]),
        status="accepted",
        title="30 Minute Meeting between Demo Host and Bob Smith",
        event_type=THIRTY,
        organizer=host,
        attendees=(Person(**{**BOB.to_dict(), "phone": PHONE, "no_show": False}),),
        location="integrations:daily",
        raw=bodies[0],
    )
    assert ended.kind == "meeting_ended" and ended.original_type == "MEETING_ENDED"
    assert started.dedupe_key() != ended.dedupe_key()


async def test_flat_row_phone_from_sms_reminder_number(sb: Sandbox) -> None:
    """A row whose attendee has no phone still yields it from ``smsReminderNumber``."""
    resp = await sb.root.post("/_sandbox/calcom/options", json={"meeting_payload": "flat"})
    assert resp.status_code == 200, resp.text
    await sb.cal_book(attendee={**BOB_INPUT, "phoneNumber": PHONE},
                      bookingFieldsResponses={"smsReminderNumber": PHONE})  # fmt: skip
    booking = (await sb.cal_hooks())[0]["payload"]
    await sb.cal_control(f"/bookings/{booking['uid']}/meeting-ended")
    body = only(await sb.cal_hooks(), "MEETING_ENDED")
    assert body["smsReminderNumber"] == PHONE
    thinner = copy.deepcopy(body)
    thinner["attendees"][0]["phoneNumber"] = None
    del thinner["responses"]["attendeePhoneNumber"]
    assert cal(thinner).attendees[0].phone == PHONE
    thinner["smsReminderNumber"] = None
    assert cal(thinner).attendees[0].phone == PHONE  # responses.smsReminderNumber still has it
    thinner["responses"].pop("smsReminderNumber", None)
    assert cal(thinner).attendees[0].phone is None


async def test_form_name_split_and_unusable_phone(sb: Sandbox) -> None:
    await sb.cal_book(web=True, bookingFieldsResponses={"attendeePhoneNumber": "n/a"})
    body = only(await sb.cal_hooks(), "BOOKING_CREATED")
    event = cal(body)
    assert event.attendees[0].phone is None  # unparseable: dropped, never an error
    split = copy.deepcopy(body)
    split["payload"]["responses"]["name"]["value"] = {"firstName": "Bob", "lastName": "Smith Jr"}
    split["payload"]["attendees"][0].pop("lastName")
    split["payload"]["attendees"][0].pop("firstName")
    person = cal(split).attendees[0]
    assert (person.first_name, person.last_name) == ("Bob", "Smith Jr")


async def test_replay_and_redelivery_share_the_key(sb: Sandbox) -> None:
    await sb.cal_book()
    body = only(await sb.cal_hooks(), "BOOKING_CREATED")
    first = cal(body)
    again = cal(copy.deepcopy(body), source="replay", received_at=RECEIVED + timedelta(hours=5))
    later = copy.deepcopy(body)
    later["createdAt"] = "2099-01-01T00:00:00.000Z"  # a resend carries a new createdAt
    assert again.source == "replay"
    assert first.dedupe_key() == again.dedupe_key() == cal(later).dedupe_key()


async def test_other_triggers_are_kept_with_their_name(sb: Sandbox) -> None:
    booking = await sb.cal_book()
    dispatcher = sb.handle.calcom.service.dispatcher
    form = {"formId": "f1", "formName": "Intake", "responses": {"email": {"value": "x@y.z"}}}
    dispatcher.emit(1, "FORM_SUBMITTED", form)
    dispatcher.emit(1, "FORM_SUBMITTED", {**form, "formId": "f2"})
    dispatcher.emit(1, "OOO_CREATED", {"oooEntry": {"id": 7, "start": "2050-01-01"}})
    bodies = await sb.cal_hooks()
    created = cal(bodies[0])
    form1, form2, ooo = (cal(b) for b in bodies[1:])
    for event, name in ((form1, "FORM_SUBMITTED"), (ooo, "OOO_CREATED")):
        assert (event.kind, event.original_type, event.booking_uid) == ("other", name, "")
        assert event.occurred_at == parse(event.raw["createdAt"])
    assert form1.dedupe_key() != form2.dedupe_key()
    assert form1.dedupe_key() == cal(copy.deepcopy(bodies[1])).dedupe_key()

    future = copy.deepcopy(bodies[0])
    future["triggerEvent"] = "BOOKING_TELEPORTED"
    unknown = cal(future)
    assert (unknown.kind, unknown.original_type) == ("other", "BOOKING_TELEPORTED")
    assert unknown.booking_uid == booking["uid"] and unknown.attendees == created.attendees
    assert unknown.dedupe_key() != created.dedupe_key()

    nameless = copy.deepcopy(bodies[0])
    del nameless["payload"]["uid"]
    assert (cal(nameless).kind, cal(nameless).booking_uid) == ("other", "")


async def test_every_trigger_maps_to_its_kind(sb: Sandbox) -> None:
    await sb.cal_book()
    body = only(await sb.cal_hooks(), "BOOKING_CREATED")
    table = {
        "BOOKING_CREATED": "created",
        "BOOKING_RESCHEDULED": "rescheduled",
        "BOOKING_CANCELLED": "cancelled",
        "BOOKING_REQUESTED": "requested",
        "BOOKING_REJECTED": "declined",
        "BOOKING_PAYMENT_INITIATED": "payment_initiated",
        "BOOKING_PAID": "paid",
        "BOOKING_NO_SHOW_UPDATED": "no_show_updated",
        "MEETING_STARTED": "meeting_started",
        "MEETING_ENDED": "meeting_ended",
        "FORM_SUBMITTED": "other",
        "FORM_SUBMITTED_NO_EVENT": "other",
        "RECORDING_READY": "other",
        "RECORDING_TRANSCRIPTION_GENERATED": "other",
        "INSTANT_MEETING": "other",
        "OOO_CREATED": "other",
        "AFTER_HOSTS_CAL_VIDEO_NO_SHOW": "other",
        "AFTER_GUESTS_CAL_VIDEO_NO_SHOW": "other",
    }
    for trigger, kind in table.items():
        event = cal({**body, "triggerEvent": trigger})
        assert (event.kind, event.original_type) == (kind, trigger)


BOB_INPUT = {"name": "Bob Smith", "email": "bob@example.com", "timeZone": "Europe/London"}
__all__ = ["BOOKINGS"]
