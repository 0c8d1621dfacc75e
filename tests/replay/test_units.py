"""Unit tests of the replay parts: URL guard, time specs, pacing, envelopes, signatures."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from calflow.apps.savvycal.webhook import verify_signature
from calflow.errors import ValidationError
from calflow.netguard import check_url, check_url_sync, is_public_address
from calflow.replay.calcom import CalComAdapter, cal_signature, trigger_for, webhook_payload
from calflow.replay.model import ReplayItem
from calflow.replay.pacing import Pacer
from calflow.replay.savvycal import SavvyCalAdapter, type_for
from calflow.replay.timespec import parse_when


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00::1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://2130706433/",
    ],
)
async def test_private_loopback_and_link_local_targets_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="allow-private"):
        await check_url(url)
    with pytest.raises(ValidationError):
        check_url_sync(url)
    assert await check_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "only http"),
        ("file:///etc/passwd", "only http"),
        ("http://user:pw@example.com/", "credentials"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
async def test_malformed_target_urls_are_refused_even_when_private_is_allowed(
    url: str, why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        await check_url(url, allow_private=True)


async def test_public_literals_pass_and_unresolvable_hosts_are_refused() -> None:
    assert await check_url("https://8.8.8.8/hook") == "https://8.8.8.8/hook"
    assert is_public_address("2606:4700::1111")
    assert not is_public_address("224.0.0.1")
    assert not is_public_address("not-an-ip")
    with pytest.raises(ValidationError, match=r"cannot be resolved|does not resolve"):
        await check_url("http://no-such-host.invalid/hook")


def test_parse_when_accepts_dates_times_and_ages() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert parse_when("2026-01-31", "since") == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_when("2026-01-31T09:00:00+01:00", "since") == datetime(2026, 1, 31, 8, tzinfo=UTC)
    assert parse_when("2026-01-31T09:00:00", "since") == datetime(2026, 1, 31, 9, tzinfo=UTC)
    assert parse_when("30d", "since", now) == datetime(2026, 10, 22, 12, tzinfo=UTC)
    assert parse_when("12h", "since", now) == datetime(2026, 11, 21, 0, tzinfo=UTC)
    assert parse_when("2w", "since", now) == datetime(2026, 11, 7, 12, tzinfo=UTC)
    assert parse_when(None, "since") is None


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "31/01/2026", "5y", "-3d"])
def test_parse_when_rejects_garbage_naming_the_option(bad: str) -> None:
    with pytest.raises(ValidationError, match="--until") as err:
        parse_when(bad, "until")
    assert err.value.errors[0].path == "until"


async def test_pacer_holds_the_rate_across_concurrent_callers() -> None:
    pacer = Pacer(200)
    started = time.monotonic()
    await asyncio.gather(*(pacer.acquire() for _ in range(41)))
    elapsed = time.monotonic() - started
    assert 0.19 <= elapsed < 1.0  # 40 intervals of 5 ms


async def test_pacer_pause_holds_everyone_back() -> None:
    pacer = Pacer(None)
    pacer.pause(0.15)
    started = time.monotonic()
    await asyncio.gather(pacer.acquire(), pacer.acquire())
    assert time.monotonic() - started >= 0.14
    with pytest.raises(ValueError):
        Pacer(0)


def _event(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "event_abc",
        "state": "confirmed",
        "start_at": "2026-12-01T09:00:00Z",
        "created_at": "2026-11-01T08:00:00Z",
        "canceled_at": None,
        "rescheduled_at": None,
        "attendees": [{"email": "a@example.com", "phone_number": "+33612345678"}],
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("over", "kind"),
    [
        ({}, "event.created"),
        ({"state": "canceled", "canceled_at": "2026-11-02T00:00:00Z"}, "event.canceled"),
        ({"state": "awaiting_approval"}, "event.requested"),
        ({"state": "declined"}, "event.declined"),
        ({"rescheduled_at": "2026-11-03T00:00:00Z"}, "event.rescheduled"),
        ({"state": "tentative"}, "event.created"),
    ],
)
def test_savvycal_type_follows_the_event_state(over: dict[str, Any], kind: str) -> None:
    assert type_for(_event(**over)) == kind


def test_savvycal_envelope_is_signed_deterministic_and_complete() -> None:
    adapter = SavvyCalAdapter.__new__(SavvyCalAdapter)
    event = _event(state="canceled", canceled_at="2026-11-02T10:00:00Z")
    item = adapter.item(event, "event.canceled")
    again = adapter.item(dict(event), "event.canceled")
    assert item.id == again.id and item.body == again.body
    assert item.id.startswith("payload_")
    envelope = json.loads(item.body)
    assert envelope == {
        "type": "event.canceled",
        "id": item.id,
        "version": "2020-11-18",
        "occurred_at": "2026-11-02T10:00:00Z",
        "payload": event,
    }
    assert b" " not in item.body.replace(b'" "', b"")  # compact JSON
    headers = adapter.headers("s3cret", item.body, item)
    sig = headers["x-savvycal-signature"]
    assert sig.startswith("sha256=") and sig[7:] == sig[7:].upper()
    assert verify_signature("s3cret", item.body, sig)
    assert not verify_signature("other", item.body, sig)
    assert headers["X-Calflow-Replay-Id"] == item.id


def test_ids_differ_per_kind_and_per_reschedule_time() -> None:
    adapter = SavvyCalAdapter.__new__(SavvyCalAdapter)
    e = _event()
    assert adapter.item_id(e, "event.created") != adapter.item_id(e, "event.canceled")
    r1 = _event(rescheduled_at="2026-11-03T00:00:00Z", start_at="2026-12-02T09:00:00Z")
    r2 = _event(rescheduled_at="2026-11-04T00:00:00Z", start_at="2026-12-03T09:00:00Z")
    assert adapter.item_id(r1, "event.rescheduled") != adapter.item_id(r2, "event.rescheduled")
    assert adapter.item_id(r1, "event.created") == adapter.item_id(r2, "event.created")


def _booking(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 7,
        "uid": "uid-1",
        "title": "30 min",
        "description": "",
        "hosts": [{"id": 1, "name": "Host", "email": "host@example.com", "username": "h",
                   "timeZone": "Europe/Paris"}],
        "status": "accepted",
        "start": "2026-12-01T09:00:00.000Z",
        "end": "2026-12-01T09:30:00.000Z",
        "duration": 30,
        "eventTypeId": 101,
        "eventType": {"id": 101, "slug": "30min"},
        "location": "https://meet.example.com/x",
        "meetingUrl": "https://meet.example.com/x",
        "createdAt": "2026-11-01T08:00:00.123Z",
        "updatedAt": "2026-11-02T08:00:00.000Z",
        "metadata": {},
        "attendees": [{"name": "Ann Lee", "email": "ann@example.com",
                       "timeZone": "America/New_York", "language": "en", "absent": False}],
        "bookingFieldsResponses": {"name": "Ann Lee", "email": "ann@example.com",
                                   "attendeePhoneNumber": "+14155550123"},
    }  # fmt: skip
    return {**base, **over}


@pytest.mark.parametrize(
    ("over", "trigger"),
    [
        ({}, "BOOKING_CREATED"),
        ({"rescheduledFromUid": "uid-0"}, "BOOKING_RESCHEDULED"),
        ({"status": "pending"}, "BOOKING_REQUESTED"),
        ({"status": "rejected"}, "BOOKING_REJECTED"),
        ({"status": "cancelled"}, "BOOKING_CANCELLED"),
        ({"status": "cancelled", "rescheduledToUid": "uid-2"}, None),
    ],
)
def test_calcom_trigger_follows_the_booking_status(
    over: dict[str, Any], trigger: str | None
) -> None:
    found, reason = trigger_for(_booking(**over))
    assert found == trigger
    assert bool(reason) == (trigger is None)


def test_calcom_payload_has_the_live_shape_with_the_phone_from_the_form() -> None:
    p = webhook_payload(_booking(rescheduledFromUid="uid-0"), "BOOKING_RESCHEDULED")
    assert p["startTime"] == "2026-12-01T09:00:00Z" and p["endTime"] == "2026-12-01T09:30:00Z"
    assert p["uid"] == "uid-1" and p["bookingId"] == 7 and p["type"] == "30min"
    assert p["status"] == "ACCEPTED" and p["rescheduleUid"] == "uid-0"
    assert p["organizer"]["email"] == "host@example.com"
    assert p["organizer"]["utcOffset"] == 60  # Paris in December
    ann = p["attendees"][0]
    assert ann["phoneNumber"] == "+14155550123" and ann["firstName"] == "Ann"
    assert ann["utcOffset"] == -300
    assert p["responses"]["attendeePhoneNumber"] == {
        "label": "phone_number", "value": "+14155550123"
    }  # fmt: skip
    assert p["metadata"]["videoCallUrl"] == "https://meet.example.com/x"


def test_calcom_delivery_signature_and_created_at() -> None:
    adapter = CalComAdapter.__new__(CalComAdapter)
    b = _booking(status="cancelled", cancellationReason="ill")
    item = adapter.item(b, "BOOKING_CANCELLED")
    body = json.loads(item.body)
    assert body["triggerEvent"] == "BOOKING_CANCELLED"
    assert body["createdAt"] == "2026-11-02T08:00:00.000Z"  # when it was cancelled
    assert body["payload"]["cancellationReason"] == "ill"
    headers = adapter.headers("k", item.body, item)
    assert headers["X-Cal-Signature-256"] == cal_signature("k", item.body)
    assert headers["X-Cal-Signature-256"] == headers["X-Cal-Signature-256"].lower()
    assert adapter.headers(None, item.body, item)["X-Cal-Signature-256"] == "no-secret-provided"
    assert isinstance(item, ReplayItem) and item.start == datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_a_seated_booking_replays_seat_by_seat_as_the_same_events_as_its_webhooks() -> None:
    """Each seat of a seated booking still on is its own BOOKING_CREATED (as Cal.com's
    createNewSeat.ts sent it): normalized, the same events, once each."""
    from calflow.events.normalize import normalize
    from calflow.replay.calcom import seats_of

    seated = _booking(
        attendees=[
            {"name": "Ann Lee", "email": "ann@example.com", "timeZone": "UTC", "seatUid": "s-a",
             "bookingFieldsResponses": {"name": "Ann Lee", "email": "ann@example.com"}},
            {"name": "Bob Stone", "email": "bob@example.com", "timeZone": "UTC",
             "seatUid": "s-b", "phoneNumber": "+14155550102"},
        ],
    )  # fmt: skip
    adapter = CalComAdapter.__new__(CalComAdapter)
    copies = seats_of(seated)
    assert [adapter.object_id(c) for c in copies] == ["uid-1#seat:s-a", "uid-1#seat:s-b"]
    events = [normalize("cal_com", json.loads(adapter.item(c, "BOOKING_CREATED").body))
              for c in copies]  # fmt: skip
    assert [(e.kind, e.seat) for e in events] == [
        ("created", "ann@example.com"), ("created", "bob@example.com")
    ]  # fmt: skip
    assert events[1].attendees[0].phone == "+14155550102"
    assert len({e.dedupe_key() for e in events}) == 2
    webhook = {"triggerEvent": "BOOKING_CREATED", "createdAt": "2026-11-01T09:00:00.000Z",
               "payload": {"uid": "uid-1", "attendeeSeatId": "s-b", "seatsPerTimeSlot": 3,
                           "startTime": "2026-12-01T09:00:00.000Z",
                           "attendees": [{"name": "Ann Lee", "email": "ann@example.com"},
                                         {"name": "Bob Stone", "email": "bob@example.com"}],
                           "responses": {"email": {"value": "bob@example.com"}}}}  # fmt: skip
    assert normalize("cal_com", webhook).dedupe_key() == events[1].dedupe_key()
    assert seats_of(_booking(status="cancelled", attendees=seated["attendees"])) != copies
