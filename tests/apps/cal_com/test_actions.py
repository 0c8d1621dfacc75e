"""Behaviour of the Cal.com actions and fetchers, against MockTransport fakes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from calflow.db import get_engine, migrate
from calflow.errors import ValidationError
from calflow.flowapp import BookingChange, RetryPolicy
from calflow.integrations import Integration, IntegrationStore
from calflow.vault import Vault
from db_fixtures import clean_calflow_env, sqlite_url

from ._support import (
    API_KEY,
    BASE_URL,
    FakeCalCom,
    Handler,
    Recorder,
    api_path,
    booking,
    error,
    event_type,
    json_of,
    make_integration,
    make_runner,
    ok,
    pagination,
    webhook,
)

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env", "sqlite_url"]

SLOT_TAKEN = "User either already has booking at this time or is not available"
HOOK_URL = "https://hooks.example.com/calflow/cal"
TRIGGERS = ["BOOKING_CREATED", "BOOKING_CANCELLED"]
BOOK = {
    "eventTypeId": 7,
    "start": "2050-09-05T11:00:00+02:00",
    "attendee": {"name": "Ada", "email": "ada@example.com", "timeZone": "Europe/Rome"},
}


def answer(*responses: httpx.Response) -> Recorder:
    """A recorder answering ``responses`` in order (the last one repeats)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return Recorder(handler)


async def run(
    handler: Handler,
    action: str,
    data: dict[str, Any],
    *,
    integration: Integration | None = None,
    store: IntegrationStore | None = None,
    sink: Any = None,
    policy: RetryPolicy | None = None,
) -> Any:
    async with make_runner(handler, store=store, sink=sink, policy=policy) as runner:
        return await runner.run_action("cal_com", action, data, integration or make_integration())


async def fetch(handler: Handler, fetcher: str, context: dict[str, Any] | None = None) -> Any:
    async with make_runner(handler) as runner:
        return await runner.fetch_options("cal_com", fetcher, make_integration(), context)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[IntegrationStore]:
    engine = get_engine(sqlite_url)
    migrate(engine)
    yield IntegrationStore(engine, Vault([Vault.generate_key()]))


@pytest.fixture
def stored(store: IntegrationStore) -> Integration:
    return store.add("cal_com", "cal main", {"base_url": BASE_URL}, {"api_key": API_KEY})


# BookMeeting


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"eventTypeId": 7}, {"eventTypeId": 7}),
        (
            {"username": "host", "eventTypeSlug": "intro", "organizationSlug": "acme"},
            {"username": "host", "eventTypeSlug": "intro", "organizationSlug": "acme"},
        ),
        (
            {"teamSlug": "sales", "eventTypeSlug": "demo"},
            {"teamSlug": "sales", "eventTypeSlug": "demo"},
        ),
    ],
    ids=["by-id", "by-username", "by-team"],
)
async def test_book_variants_send_their_selector_fields(
    selector: dict[str, Any], expected: dict[str, Any]
) -> None:
    rec = answer(ok(booking(), 201))
    data = {"start": "2050-09-05T09:00:00Z", "attendee": BOOK["attendee"], **selector}
    result = await run(rec, "BookMeeting", data)
    assert result.success and result.port == "success"
    body = json_of(rec.requests[0])
    selectors = {"eventTypeId", "eventTypeSlug", "username", "teamSlug", "organizationSlug"}
    assert {k: v for k, v in body.items() if k in selectors} == expected
    assert rec.requests[0].headers["cal-api-version"] == "2024-08-13"
    assert rec.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_book_needs_exactly_one_selector_variant() -> None:
    rec = answer(ok(booking(), 201))
    with pytest.raises(ValidationError):
        await run(rec, "BookMeeting", {"start": BOOK["start"], "attendee": BOOK["attendee"]})
    assert rec.requests == []


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("06 6982 0000", "IT", "+390669820000"),
        ("(650) 253-0000", "us", "+16502530000"),
        ("+44 20 7946 0958", None, "+442079460958"),
    ],
)
async def test_book_normalizes_the_phone_to_e164(raw: str, region: str | None, e164: str) -> None:
    rec = answer(ok(booking(), 201))
    data: dict[str, Any] = {**BOOK, "attendee": {**BOOK["attendee"], "phoneNumber": raw}}
    if region:
        data["defaultPhoneRegion"] = region
    result = await run(rec, "BookMeeting", data)
    assert result.success
    assert json_of(rec.requests[0])["attendee"]["phoneNumber"] == e164


@pytest.mark.parametrize(
    ("raw", "region"), [("12345", "US"), ("06 6982 0000", None), ("call me", "IT")]
)
async def test_book_rejects_an_invalid_phone_before_sending(raw: str, region: str | None) -> None:
    rec = answer(ok(booking(), 201))
    data: dict[str, Any] = {**BOOK, "attendee": {**BOOK["attendee"], "phoneNumber": raw}}
    if region:
        data["defaultPhoneRegion"] = region
    with pytest.raises(ValidationError) as info:
        await run(rec, "BookMeeting", data)
    assert [e.path for e in info.value.errors] == ["attendee.phoneNumber"]
    assert rec.requests == []


@pytest.mark.parametrize(
    ("start", "utc"),
    [
        ("2050-09-05T11:00:00+02:00", "2050-09-05T09:00:00.000Z"),
        ("2050-09-04T23:30:00-05:00", "2050-09-05T04:30:00.000Z"),
        ("2050-09-05T09:00:00Z", "2050-09-05T09:00:00.000Z"),
    ],
)
async def test_book_sends_start_in_utc(start: str, utc: str) -> None:
    rec = answer(ok(booking(), 201))
    await run(rec, "BookMeeting", {**BOOK, "start": start})
    assert json_of(rec.requests[0])["start"] == utc


async def test_book_notes_go_to_booking_field_responses() -> None:
    rec = answer(ok(booking(), 201))
    data = {**BOOK, "notes": "Bring slides", "bookingFieldsResponses": {"company": "AE"}}
    await run(rec, "BookMeeting", data)
    body = json_of(rec.requests[0])
    assert body["bookingFieldsResponses"] == {"company": "AE", "notes": "Bring slides"}
    assert "notes" not in body


@pytest.mark.parametrize(
    "response",
    [error(400, SLOT_TAKEN), error(409, "Booking seats are full", "ConflictException")],
    ids=["400-taken", "409"],
)
async def test_book_taken_time_answers_on_conflict(response: httpx.Response) -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    result = await run(answer(response), "BookMeeting", BOOK, sink=sink)
    assert result.success and result.port == "conflict"
    assert result.code == "SLOT_TAKEN"
    assert changes == []


async def test_book_other_400_is_an_error() -> None:
    result = await run(answer(error(400, "Attendee phone number is required")), "BookMeeting", BOOK)
    assert not result.success and result.port == "error"
    assert result.code == "PROVIDER_ERROR"
    assert "phone number is required" in (result.message or "")


async def test_book_unknown_event_type_is_not_found_error() -> None:
    rec = answer(error(404, "Event type with id=7 not found", "NotFoundException"))
    result = await run(rec, "BookMeeting", BOOK)
    assert not result.success and result.port == "error"
    assert result.code == "NOT_FOUND"
    assert "Event type with id=7 not found" in (result.message or "")


async def test_book_bad_api_key_is_auth_error() -> None:
    rec = answer(error(401, "Invalid API Key", "UnauthorizedException"))
    result = await run(rec, "BookMeeting", BOOK)
    assert not result.success and result.code == "AUTH_ERROR"
    assert "Invalid API Key" in (result.message or "")
    assert len(rec.requests) == 1  # an API key is not refreshed


@pytest.mark.parametrize(("status", "kind"), [("pending", "requested"), ("accepted", "created")])
async def test_book_publishes_the_change_with_the_phone(status: str, kind: str) -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    data = {
        **BOOK,
        "attendee": {**BOOK["attendee"], "phoneNumber": "06 6982 0000"},
        "defaultPhoneRegion": "IT",
    }
    result = await run(
        answer(ok(booking("bk_9", status=status), 201)), "BookMeeting", data, sink=sink
    )
    assert result.success and result.data["uid"] == "bk_9"
    assert result.meta["booking_changes"] == 1
    [change] = changes
    assert (change.provider, change.kind, change.booking["uid"]) == ("cal_com", kind, "bk_9")
    assert change.integration_id == "int_cal_test"
    assert change.input["attendee"]["phoneNumber"] == "+390669820000"


# RescheduleBooking


async def test_reschedule_returns_the_new_booking_linked_to_the_old() -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    new = booking("bk_new", rescheduledFromUid="bk_old", start="2050-09-06T08:00:00.000Z")
    rec = answer(ok(new, 201))
    data = {"bookingUid": "bk_old", "start": "2050-09-06T10:00:00+02:00", "reschedulingReason": "x"}
    result = await run(rec, "RescheduleBooking", data, sink=sink)
    assert result.success and result.data["uid"] == "bk_new"
    assert api_path(rec.requests[0]) == "/v2/bookings/bk_old/reschedule"
    assert json_of(rec.requests[0]) == {
        "start": "2050-09-06T08:00:00.000Z",
        "reschedulingReason": "x",
    }
    [change] = changes
    assert (change.kind, change.previous_uid, change.booking["uid"]) == (
        "rescheduled",
        "bk_old",
        "bk_new",
    )


async def test_reschedule_taken_time_is_conflict() -> None:
    data = {"bookingUid": "bk_1", "start": "2050-09-06T10:00:00Z"}
    result = await run(answer(error(400, SLOT_TAKEN)), "RescheduleBooking", data)
    assert result.success and result.port == "conflict"


async def test_reschedule_unknown_booking_is_not_found() -> None:
    data = {"bookingUid": "bk_x", "start": "2050-09-06T10:00:00Z"}
    rec = answer(error(404, "Booking with uid=bk_x was not found", "NotFoundException"))
    result = await run(rec, "RescheduleBooking", data)
    assert result.success and result.port == "not_found" and result.code == "NOT_FOUND"


# CancelBooking, GetBooking


async def test_cancel_sends_reason_and_publishes() -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    rec = answer(ok(booking("bk_1", status="cancelled")))
    data = {"bookingUid": "bk_1", "cancellationReason": "Sick"}
    result = await run(rec, "CancelBooking", data, sink=sink)
    assert result.success and result.data["status"] == "cancelled"
    assert json_of(rec.requests[0]) == {"cancellationReason": "Sick"}
    assert [c.kind for c in changes] == ["cancelled"]


async def test_cancel_unknown_booking_is_not_found() -> None:
    result = await run(
        answer(error(404, "Booking not found")), "CancelBooking", {"bookingUid": "x"}
    )
    assert result.success and result.port == "not_found"


async def test_cancel_already_cancelled_counts_as_done() -> None:
    rec = answer(error(400, "This booking has already been cancelled."))
    result = await run(rec, "CancelBooking", {"bookingUid": "bk_1"})
    assert result.success and result.port == "success"
    assert result.code == "ALREADY_CANCELLED"
    assert result.data == {"uid": "bk_1", "status": "cancelled"}


async def test_get_booking() -> None:
    rec = answer(ok(booking("bk_1")))
    result = await run(rec, "GetBooking", {"bookingUid": "bk_1"})
    assert result.success and result.data["uid"] == "bk_1"
    assert (rec.requests[0].method, api_path(rec.requests[0])) == ("GET", "/v2/bookings/bk_1")
    missing = await run(answer(error(404, "nope")), "GetBooking", {"bookingUid": "bk_2"})
    assert missing.port == "not_found"


# GetAllBookings


def bookings_server(total: int, cap: int) -> Recorder:
    """A bookings list of ``total`` items that never returns more than ``cap`` per page."""

    def handler(request: httpx.Request) -> httpx.Response:
        take = min(int(request.url.params["take"]), cap)
        skip = int(request.url.params["skip"])
        items = [booking(f"bk_{i}") for i in range(skip, min(skip + take, total))]
        return ok(items, pagination=pagination(total, skip, len(items), take))

    return Recorder(handler)


async def test_list_follows_pages_until_there_is_no_next() -> None:
    rec = bookings_server(total=5, cap=2)
    result = await run(rec, "GetAllBookings", {"status": ["upcoming", "past"]})
    assert result.success
    assert [b["uid"] for b in result.data["bookings"]] == [f"bk_{i}" for i in range(5)]
    assert result.data["count"] == 5
    assert [r.url.params["skip"] for r in rec.requests] == ["0", "2", "4"]
    assert {r.url.params["status"] for r in rec.requests} == {"upcoming,past"}
    assert all(r.url.params.get_list("status") == ["upcoming,past"] for r in rec.requests)


async def test_list_stops_at_limit() -> None:
    rec = bookings_server(total=50, cap=2)
    result = await run(rec, "GetAllBookings", {"limit": 3})
    assert [b["uid"] for b in result.data["bookings"]] == ["bk_0", "bk_1", "bk_2"]
    assert len(rec.requests) == 2
    assert rec.requests[0].url.params["take"] == "3"


async def test_list_sends_id_lists_as_comma_lists() -> None:
    rec = bookings_server(total=0, cap=10)
    data = {"eventTypeIds": [7, 8], "teamsIds": [3], "sortStart": "desc", "attendeeEmail": "a@x.io"}
    result = await run(rec, "GetAllBookings", data)
    assert result.success and result.data == {"bookings": [], "count": 0}
    params = dict(rec.requests[0].url.params)
    assert params == {
        "eventTypeIds": "7,8",
        "teamsIds": "3",
        "sortStart": "desc",
        "attendeeEmail": "a@x.io",
        "take": "100",
        "skip": "0",
    }


# GetSlots


async def test_slots_are_flattened_and_kept_per_day() -> None:
    days = {
        "2050-09-06": [
            {"start": "2050-09-06T09:00:00.000+02:00", "end": "2050-09-06T09:30:00.000+02:00"}
        ],
        "2050-09-05": [
            {"start": "2050-09-05T09:00:00.000+02:00", "end": "2050-09-05T09:30:00.000+02:00"},
            {"start": "2050-09-05T10:00:00.000+02:00", "end": "2050-09-05T10:30:00.000+02:00"},
        ],
    }
    rec = answer(ok(days))
    data = {"eventTypeId": 7, "start": "2050-09-05", "end": "2050-09-06", "timeZone": "Europe/Rome"}
    result = await run(rec, "GetSlots", data)
    assert result.success
    assert result.data["days"] == days
    assert result.data["count"] == 3
    assert [(s["day"], s["start"][11:16]) for s in result.data["slots"]] == [
        ("2050-09-05", "09:00"),
        ("2050-09-05", "10:00"),
        ("2050-09-06", "09:00"),
    ]
    request = rec.requests[0]
    assert request.headers["cal-api-version"] == "2024-09-04"
    assert dict(request.url.params) == {
        "start": "2050-09-05",
        "end": "2050-09-06",
        "timeZone": "Europe/Rome",
        "format": "range",
        "eventTypeId": "7",
    }


async def test_slots_send_date_times_in_utc_and_usernames_as_comma_list() -> None:
    rec = answer(ok({}))
    data = {
        "usernames": ["alice", "bob"],
        "start": "2050-09-05T09:00:00+02:00",
        "end": "2050-09-06T18:00:00-04:00",
    }
    result = await run(rec, "GetSlots", data)
    assert result.success and result.data["slots"] == []
    params = rec.requests[0].url.params
    assert params["start"] == "2050-09-05T07:00:00.000Z"
    assert params["end"] == "2050-09-06T22:00:00.000Z"
    assert params["usernames"] == "alice,bob"


async def test_slots_reject_a_time_that_is_not_iso() -> None:
    rec = answer(ok({}))
    with pytest.raises(ValidationError) as info:
        await run(rec, "GetSlots", {"eventTypeId": 7, "start": "tomorrow", "end": "2050-09-06"})
    assert [e.path for e in info.value.errors] == ["start"]
    assert rec.requests == []


# MarkAbsent, AddGuests, Confirm / Decline


async def test_mark_absent_before_the_start_is_too_early() -> None:
    rec = answer(
        error(403, "Cannot mark no-show before the meeting has started.", "ForbiddenException")
    )
    result = await run(rec, "MarkAbsent", {"bookingUid": "bk_1", "host": True})
    assert result.success and result.port == "too_early" and result.code == "TOO_EARLY"


async def test_mark_absent_other_403_is_auth_error() -> None:
    rec = answer(error(403, "You are not the organizer of this booking", "ForbiddenException"))
    result = await run(rec, "MarkAbsent", {"bookingUid": "bk_1", "host": True})
    assert not result.success and result.code == "AUTH_ERROR"


async def test_mark_absent_sends_attendees_and_publishes() -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    rec = answer(ok(booking("bk_1")))
    attendees = [{"email": "ada@example.com", "absent": True}]
    result = await run(rec, "MarkAbsent", {"bookingUid": "bk_1", "attendees": attendees}, sink=sink)
    assert result.success
    assert json_of(rec.requests[0]) == {"attendees": attendees}
    assert [c.kind for c in changes] == ["no_show_updated"]


async def test_add_guests_rejects_eleven_before_sending() -> None:
    rec = answer(ok(booking()))
    guests = [{"email": f"g{i}@example.com"} for i in range(11)]
    with pytest.raises(ValidationError) as info:
        await run(rec, "AddGuests", {"bookingUid": "bk_1", "guests": guests})
    assert any(e.path == "guests" for e in info.value.errors)
    assert rec.requests == []


async def test_add_guests_sends_e164_phones() -> None:
    rec = answer(ok(booking()))
    guests = [
        {"email": "a@example.com"},
        {"email": "b@example.com", "phoneNumber": "020 7946 0958"},
    ]
    data = {"bookingUid": "bk_1", "guests": guests, "defaultPhoneRegion": "GB"}
    result = await run(rec, "AddGuests", data)
    assert result.success
    assert json_of(rec.requests[0]) == {
        "guests": [
            {"email": "a@example.com"},
            {"email": "b@example.com", "phoneNumber": "+442079460958"},
        ]
    }
    assert rec.requests[0].headers["cal-api-version"] == "2024-08-13"
    bad = {"bookingUid": "bk_1", "guests": [{"email": "c@example.com", "phoneNumber": "12"}]}
    with pytest.raises(ValidationError) as info:
        await run(rec, "AddGuests", bad)
    assert [e.path for e in info.value.errors] == ["guests.0.phoneNumber"]


async def test_confirm_and_decline() -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    rec = answer(ok(booking("bk_1", status="accepted")), ok(booking("bk_2", status="rejected")))
    confirmed = await run(rec, "ConfirmBooking", {"bookingUid": "bk_1"}, sink=sink)
    declined = await run(rec, "DeclineBooking", {"bookingUid": "bk_2", "reason": "Full"}, sink=sink)
    assert confirmed.success and declined.success
    assert rec.calls() == [
        ("POST", "/v2/bookings/bk_1/confirm"),
        ("POST", "/v2/bookings/bk_2/decline"),
    ]
    assert rec.requests[0].content == b""
    assert json_of(rec.requests[1]) == {"reason": "Full"}
    assert [c.kind for c in changes] == ["approved", "declined"]
    missing = await run(answer(error(404, "nope")), "ConfirmBooking", {"bookingUid": "bk_x"})
    assert missing.port == "not_found"


# RegisterWebhook / UnregisterWebhook


async def test_register_creates_with_a_generated_secret_kept_in_the_vault(
    store: IntegrationStore, stored: Integration
) -> None:
    fake = FakeCalCom()
    rec = Recorder(fake)
    data = {"subscriberUrl": HOOK_URL, "triggers": TRIGGERS}
    result = await run(rec, "RegisterWebhook", data, integration=stored, store=store)
    assert result.success and result.data["reused"] is False
    assert rec.calls() == [("GET", "/v2/webhooks"), ("POST", "/v2/webhooks")]
    sent = json_of(rec.requests[1])
    assert sent["subscriberUrl"] == HOOK_URL and sent["triggers"] == TRIGGERS
    assert sent["active"] is True
    secret = sent["secret"]
    assert isinstance(secret, str) and len(secret) >= 32
    assert "secret" not in result.data and secret not in repr(result.data)
    saved = store.get(stored.id)
    assert saved.value("webhook_secret") == secret
    assert saved.value("webhook_id") == str(result.data["id"])
    assert "webhook_secret" in saved.secrets and "webhook_secret" not in saved.config

    # The same URL, triggers and active flag again: reused, nothing posted, secret kept.
    rec.requests.clear()
    again = await run(rec, "RegisterWebhook", data, integration=saved, store=store)
    assert again.success and again.data["reused"] is True
    assert again.data["id"] == result.data["id"]
    assert rec.calls() == [("GET", "/v2/webhooks")]
    assert store.get(stored.id).value("webhook_secret") == secret
    assert len(fake.webhooks) == 1


async def test_register_with_other_triggers_makes_a_new_webhook(
    store: IntegrationStore, stored: Integration
) -> None:
    fake = FakeCalCom(webhooks=[webhook(5, HOOK_URL, ["BOOKING_CREATED"])])
    rec = Recorder(fake)
    data = {"subscriberUrl": HOOK_URL, "triggers": TRIGGERS}
    result = await run(rec, "RegisterWebhook", data, integration=stored, store=store)
    assert result.data["reused"] is False
    assert [m for m, _ in rec.calls()] == ["GET", "POST"]
    assert len(fake.webhooks) == 2


async def test_register_finds_a_match_on_a_later_page(
    store: IntegrationStore, stored: Integration
) -> None:
    others = [webhook(i, f"https://other.example/{i}", TRIGGERS) for i in range(1, 261)]
    fake = FakeCalCom(webhooks=[*others, webhook(999, HOOK_URL, list(reversed(TRIGGERS)))])
    rec = Recorder(fake)
    data = {"subscriberUrl": HOOK_URL, "triggers": TRIGGERS}
    result = await run(rec, "RegisterWebhook", data, integration=stored, store=store)
    assert result.success and result.data["reused"] is True and result.data["id"] == 999
    gets = [r for r in rec.requests if r.method == "GET"]
    assert [(r.url.params["take"], r.url.params["skip"]) for r in gets] == [
        ("250", "0"),
        ("250", "250"),
    ]
    # Adopted a webhook calflow did not know: it sets a secret it keeps, and posts nothing.
    assert rec.calls()[-1] == ("PATCH", "/v2/webhooks/999")
    assert "POST" not in [m for m, _ in rec.calls()]
    secret = json_of(rec.requests[-1])["secret"]
    saved = store.get(stored.id)
    assert (saved.value("webhook_id"), saved.value("webhook_secret")) == ("999", secret)


async def test_unregister_counts_404_as_done_and_forgets_the_secret(
    store: IntegrationStore, stored: Integration
) -> None:
    known = store.update(stored.id, config={"webhook_id": "77"}, secrets={"webhook_secret": "s"})
    rec = Recorder(FakeCalCom())
    result = await run(
        rec, "UnregisterWebhook", {"webhookId": "77"}, integration=known, store=store
    )
    assert result.success
    assert result.data == {"deleted": [], "already_gone": ["77"]}
    assert rec.calls() == [("DELETE", "/v2/webhooks/77")]
    assert not store.get(stored.id).value("webhook_secret")


async def test_unregister_by_url_deletes_every_match() -> None:
    hooks = [
        webhook(1, HOOK_URL, TRIGGERS),
        webhook(2, "https://x.example", TRIGGERS),
        webhook(3, HOOK_URL, []),
    ]
    fake = FakeCalCom(webhooks=hooks)
    rec = Recorder(fake)
    result = await run(rec, "UnregisterWebhook", {"subscriberUrl": HOOK_URL})
    assert result.data == {"deleted": ["1", "3"], "already_gone": []}
    assert list(fake.webhooks) == [2]


# Transport-level behaviour


async def test_rate_limit_waits_for_the_reset_header_then_retries() -> None:
    limited = error(429, "ThrottlerException: Too Many Requests", "ThrottlerException")
    limited.headers["X-RateLimit-Reset-Default"] = "0.2"
    rec = answer(limited, ok(booking("bk_1")))
    # The default wait (30 s) is beyond the budget: only the header's 0.2 s lets it retry.
    policy = RetryPolicy(backoff_base_s=0.001, default_rate_wait_s=30, max_total_wait_s=5)
    began = time.monotonic()
    result = await run(rec, "GetBooking", {"bookingUid": "bk_1"}, policy=policy)
    assert result.success and result.data["uid"] == "bk_1"
    assert len(rec.requests) == 2
    assert time.monotonic() - began >= 0.2


async def test_rate_limit_beyond_the_budget_is_a_rate_limit_failure() -> None:
    limited = error(429, "Too many requests", "ThrottlerException")
    limited.headers["X-RateLimit-Reset-Default"] = "60"
    rec = answer(limited)
    policy = RetryPolicy(backoff_base_s=0.001, max_total_wait_s=5)
    result = await run(rec, "GetBooking", {"bookingUid": "bk_1"}, policy=policy)
    assert not result.success and result.code == "RATE_LIMIT"
    assert result.data == {"retry_after": 60.0}
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            200,
            text="<html><head><title>Cloudflare: origin unreachable</title></head></html>",
            headers={"content-type": "text/html"},
        ),
        httpx.Response(404, text="<html><title>Cloudflare: origin unreachable</title></html>"),
        httpx.Response(
            400, text="Cloudflare: origin unreachable {{", headers={"content-type": "text/plain"}
        ),
    ],
    ids=["200-html", "404-html", "400-garbage"],
)
async def test_a_body_that_is_not_json_is_a_clear_failure(response: httpx.Response) -> None:
    """Named by status and content type; none of the page is echoed (it may be what a
    base_url pointed at an internal host answered)."""
    result = await run(answer(response), "GetBooking", {"bookingUid": "bk_1"})
    assert not result.success and result.port == "error"
    assert result.code in ("BAD_RESPONSE", "PROVIDER_ERROR")
    message = result.message or ""
    assert "instead of JSON" in message and "Cloudflare" not in message
    assert str(response.status_code) in message
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    assert kind in message


async def test_oauth_token_is_refreshed_once_and_saved(
    store: IntegrationStore,
) -> None:
    integration = store.add(
        "cal_com",
        "cal oauth",
        {"base_url": BASE_URL, "oauth_client_id": "client_1"},
        {"access_token": "at_old", "refresh_token": "rt_old", "oauth_client_secret": "cs_1"},
    )
    fake = FakeCalCom(expire_token="at_old")
    rec = Recorder(fake)
    result = await run(
        rec, "GetBooking", {"bookingUid": "bk_1"}, integration=integration, store=store
    )
    assert result.success
    refresh = rec.requests[1]
    assert api_path(refresh) == "/v2/oauth/client_1/refresh"
    assert json_of(refresh) == {"refreshToken": "rt_old"}
    assert "authorization" not in refresh.headers
    assert rec.requests[2].headers["authorization"] == "Bearer at_new"
    saved = store.get(integration.id)
    assert (saved.value("access_token"), saved.value("refresh_token")) == ("at_new", "rt_new")


# Fetchers


async def test_event_types_fetcher_labels_and_values() -> None:
    types = [
        event_type(7, "Intro", "intro", 30),
        event_type(8, "Deep dive", "deep", 60),
        event_type(9, "Secret", "secret", 15, hidden=True),
    ]
    rec = answer(ok(types))
    options = await fetch(rec, "event_types")
    assert [(o.value, o.label) for o in options] == [(7, "Intro (30m)"), (8, "Deep dive (60m)")]
    assert rec.requests[0].headers["cal-api-version"] == "2024-06-14"
    assert not rec.requests[0].url.params


async def test_user_event_types_needs_a_username() -> None:
    rec = answer(ok([event_type(7, "Intro", "intro", 30)]))
    with pytest.raises(ValidationError, match="username"):
        await fetch(rec, "user_event_types", {})
    assert rec.requests == []
    options = await fetch(rec, "user_event_types", {"username": "host"})
    assert [(o.value, o.label) for o in options] == [("intro", "Intro (30m)")]
    assert rec.requests[0].url.params["username"] == "host"


async def test_slots_fetcher_values_are_utc() -> None:
    days = {
        "2050-09-05": [
            {"start": "2050-09-05T11:00:00.000+02:00"},
            {"start": "2050-09-05T11:30:00.000+02:00"},
        ]
    }
    rec = answer(ok(days))
    options = await fetch(
        rec, "slots", {"eventTypeId": 7, "date": "2050-09-05", "timeZone": "Europe/Rome"}
    )
    assert [o.value for o in options] == ["2050-09-05T09:00:00.000Z", "2050-09-05T09:30:00.000Z"]
    assert options[0].label == "Mon 05 Sep 11:00 (Europe/Rome)"
    params = rec.requests[0].url.params
    assert (params["start"], params["end"], params["eventTypeId"]) == (
        "2050-09-05",
        "2050-09-05",
        "7",
    )
    assert rec.requests[0].headers["cal-api-version"] == "2024-09-04"


async def test_bookings_and_webhooks_fetchers() -> None:
    rec = bookings_server(total=3, cap=2)
    options = await fetch(rec, "bookings")
    assert [o.value for o in options] == ["bk_0", "bk_1", "bk_2"]
    assert rec.requests[0].url.params["status"] == "upcoming,unconfirmed"
    hooks = Recorder(FakeCalCom(webhooks=[webhook(5, HOOK_URL, TRIGGERS)]))
    [option] = await fetch(hooks, "webhooks")
    assert (option.value, option.label, option.description) == (
        "5",
        HOOK_URL,
        "BOOKING_CREATED, BOOKING_CANCELLED",
    )
    assert "cal-api-version" not in hooks.requests[0].headers
