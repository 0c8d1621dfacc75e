"""Seated Cal.com bookings and per-attendee SavvyCal changes, from bodies built as the
providers build them (``real_bodies``): each seat is a booking change of its own."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from calflow.events import BookingEvent
from calflow.events.inbox import Inbox
from calflow.events.normalize import normalize
from calflow.events.ordering import ENDED, seat_uid

from . import real_bodies as rb

RECEIVED = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


def cal(body: dict[str, Any]) -> BookingEvent:
    return normalize("cal_com", body, received_at=RECEIVED)


def test_a_new_seat_is_its_own_event_for_the_new_seat_holder() -> None:
    first, second = cal(rb.first_seat()), cal(rb.second_seat())
    assert (first.kind, second.kind) == ("created", "created")
    assert first.booking_uid == second.booking_uid == rb.SEATED_UID
    assert [a.email for a in first.attendees] == ["ann@example.com"]
    assert [a.email for a in second.attendees] == ["Bob@Example.com"]  # only the new seat
    assert second.attendees[0].phone == "+14155550102"
    assert (first.seat, second.seat) == ("ann@example.com", "bob@example.com")
    assert first.dedupe_key() != second.dedupe_key()
    assert second.party == ("ann@example.com", "bob@example.com")


def test_a_seat_in_the_newer_only_the_seat_shape_is_the_same_change() -> None:
    """Newer Cal.com senders list only the seat's attendee: same seat, same key."""
    older = rb.second_seat()
    newer = copy.deepcopy(older)
    newer["payload"]["attendees"] = [rb.BOB]
    assert cal(older).dedupe_key() == cal(newer).dedupe_key()


def test_one_seat_leaving_is_attendee_cancelled_and_a_whole_cancel_is_cancelled() -> None:
    leave = cal(rb.seat_cancel())
    assert leave.kind == "attendee_cancelled"
    assert leave.seat == "ann@example.com"
    assert [a.email for a in leave.attendees] == ["ann@example.com"]
    assert leave.start == datetime(2031, 3, 4, 15, tzinfo=UTC)  # "+00:00" form
    whole = cal(rb.whole_cancel())
    assert whole.kind == "cancelled" and whole.seat is None
    assert whole.reason == "Host is sick"
    assert len(whole.attendees) == 2


def test_an_unseated_booking_is_unchanged() -> None:
    body = rb.second_seat()
    del body["payload"]["seatsPerTimeSlot"]
    del body["payload"]["attendeeSeatId"]
    event = cal(body)
    assert event.seat is None and len(event.attendees) == 2


def test_each_seat_is_stored_once_and_a_seat_cancel_ends_only_that_seat(inbox: Inbox) -> None:
    a = inbox.publish(cal(rb.first_seat()))
    b = inbox.publish(cal(rb.second_seat()))
    again = inbox.publish(cal(rb.second_seat()))  # a webhook retry
    assert not a.duplicate and not b.duplicate and a.event_id != b.event_id
    assert again.duplicate and again.event_id == b.event_id
    left = inbox.publish(cal(rb.seat_cancel()))
    assert not left.stale
    ann = inbox.booking_state("cal_com", seat_uid(rb.SEATED_UID, "ann@example.com"))
    bob = inbox.booking_state("cal_com", seat_uid(rb.SEATED_UID, "bob@example.com"))
    booking = inbox.booking_state("cal_com", rb.SEATED_UID)
    assert ann is not None and ann.phase == ENDED
    assert bob is not None and bob.phase < ENDED
    assert booking is not None and booking.phase < ENDED  # the booking goes on


def test_seats_arriving_out_of_order_are_not_stale(inbox: Inbox) -> None:
    """Bob's seat delivered before Ann's: each is judged against its own seat."""
    assert not inbox.publish(cal(rb.second_seat())).stale
    assert not inbox.publish(cal(rb.first_seat())).stale


def test_a_whole_cancel_ends_the_booking_and_a_late_seat_is_stale(inbox: Inbox) -> None:
    inbox.publish(cal(rb.first_seat()))
    inbox.publish(cal(rb.whole_cancel()))
    booking = inbox.booking_state("cal_com", rb.SEATED_UID)
    assert booking is not None and booking.kind == "cancelled"
    late = inbox.publish(cal(rb.second_seat()))  # occurred before the cancel
    assert late.stale


def savvy(type_: str, payload: dict[str, Any]) -> BookingEvent:
    body = {
        "type": type_,
        "id": "payload_01",
        "version": "2020-11-18",
        "occurred_at": "2031-03-01T10:00:00Z",
        "payload": payload,
    }
    return normalize("savvycal", body, received_at=RECEIVED)


def savvy_attendee(name: str, email: str, organizer: bool = False) -> dict[str, Any]:
    first, _, last = name.partition(" ")
    return {
        "id": f"attendee_{first}",
        "display_name": name,
        "first_name": first,
        "last_name": last,
        "email": email,
        "phone_number": None if organizer else "+14155550111",
        "time_zone": "America/Chicago",
        "is_organizer": organizer,
        "marketing_opt_in": False,
        "response_status": "accepted",
        "fields": [],
    }


def savvy_event(*attendees: dict[str, Any]) -> dict[str, Any]:
    host = savvy_attendee("Derrick Reimer", "derrick@savvycal.com", organizer=True)
    return {
        "id": "event_group1",
        "state": "confirmed",
        "summary": "Group session",
        "start_at": "2031-03-04T15:00:00Z",
        "end_at": "2031-03-04T16:00:00Z",
        "attendees": [host, *attendees],
        "organizer": host,
        "link": {"id": "link_1", "slug": "group", "name": "Group"},
        "description_settings": {},
        "location_settings": [],
    }


def test_savvycal_event_changed_reads_the_event_under_payload_event() -> None:
    event = savvy("event.changed", {"event": savvy_event(savvy_attendee("Ann Lee", "a@x.io"))})
    assert event.kind == "changed"
    assert event.booking_uid == "event_group1"
    assert event.start == datetime(2031, 3, 4, 15, tzinfo=UTC)
    assert [a.email for a in event.attendees] == ["a@x.io"]
    flat = savvy("event.changed", savvy_event(savvy_attendee("Ann Lee", "a@x.io")))
    assert flat.booking_uid == "event_group1"  # the older flat form still reads


def test_savvycal_attendee_events_are_per_attendee() -> None:
    ann, bob = savvy_attendee("Ann Lee", "a@x.io"), savvy_attendee("Bob Stone", "b@x.io")
    added = savvy("event.attendee.added", {"event": savvy_event(ann, bob), "attendee": bob})
    assert (added.kind, added.seat) == ("attendee_added", "b@x.io")
    assert [a.email for a in added.attendees] == ["b@x.io"]
    gone = savvy("event.attendee.canceled", {"event": savvy_event(ann), "attendee": bob})
    assert (gone.kind, gone.seat) == ("attendee_cancelled", "b@x.io")
    assert added.dedupe_key() != gone.dedupe_key()
    for type_ in ("poll.response.created", "workflow.action.triggered", "event.checkout.pending"):
        kept = savvy(type_, {"event": savvy_event(ann)})
        assert kept.original_type == type_


def test_calflows_own_seat_booking_is_the_same_change_as_cal_coms_webhook() -> None:
    """BookMeeting on a seated event type: Cal.com answers the booking with the new
    ``seatUid`` (CreateSeatedBookingOutput); the action's event is the webhook's seat."""
    from calflow.events.normalize import from_action
    from calflow.flowapp.context import BookingChange

    booking = {
        "id": 4242, "uid": rb.SEATED_UID, "status": "accepted", "seatUid": "seat-bob",
        "start": "2031-03-04T15:00:00.000Z", "end": "2031-03-04T16:00:00.000Z",
        "eventTypeId": 105,
        "attendees": [
            {"name": "Ann Lee", "email": "ann@example.com", "seatUid": "seat-ann"},
            {"name": "Bob Stone", "email": "Bob@Example.com", "seatUid": "seat-bob"},
        ],
    }  # fmt: skip
    given = {"attendee": {"name": "Bob Stone", "email": "Bob@Example.com",
                          "phoneNumber": "+14155550102"}}  # fmt: skip
    made = from_action(BookingChange("cal_com", "created", booking, None, given))
    assert made.seat == "bob@example.com"
    assert [a.email for a in made.attendees] == ["Bob@Example.com"]
    assert made.dedupe_key() == cal(rb.second_seat()).dedupe_key()
    left = from_action(
        BookingChange("cal_com", "cancelled", {**booking, "status": "accepted"}, None,
                      {"seatUid": "seat-ann"})
    )  # fmt: skip
    assert (left.kind, left.seat) == ("attendee_cancelled", "ann@example.com")
    assert left.dedupe_key() == cal(rb.seat_cancel()).dedupe_key()


def test_savvycal_attendee_reschedule_names_the_event_left_and_flat_bodies_still_read() -> None:
    """The inferred ``{event, attendee, previous_event}`` of a move to another session
    (docs/DESIGN.md, "SavvyCal per-attendee deliveries"), and a flat Event payload."""
    ann, bob = savvy_attendee("Ann Lee", "a@x.io"), savvy_attendee("Bob Stone", "b@x.io")
    left = savvy_event(ann)
    there = {**savvy_event(bob), "id": "event_group2", "start_at": "2031-03-05T15:00:00Z",
             "end_at": "2031-03-05T16:00:00Z"}  # fmt: skip
    moved = savvy("event.attendee.rescheduled",
                  {"event": there, "attendee": bob, "previous_event": left})  # fmt: skip
    assert (moved.kind, moved.seat) == ("attendee_rescheduled", "b@x.io")
    assert (moved.booking_uid, moved.previous_uid) == ("event_group2", "event_group1")
    assert moved.start == datetime(2031, 3, 5, 15, tzinfo=UTC)
    same = savvy("event.attendee.rescheduled",
                 {"event": savvy_event(ann, bob), "attendee": bob,
                  "previous_event": savvy_event(ann)})  # fmt: skip
    assert same.previous_uid is None  # the same event: nothing was left
    flat = savvy("event.attendee.added", savvy_event(bob))  # no wrapper, one attendee
    assert (flat.kind, flat.seat, flat.booking_uid) == ("attendee_added", "b@x.io", "event_group1")
    crowd = savvy("event.attendee.added", savvy_event(ann, bob))  # flat, no attendee named
    assert crowd.seat is None and crowd.party == ("a@x.io", "b@x.io")
