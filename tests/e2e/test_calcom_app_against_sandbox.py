"""The Cal.com app through ``Runner`` and a real ``IntegrationStore``, against the sandbox
running as a separate process (a real HTTP server, like the real provider)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from calflow.errors import AuthError, ValidationError
from calflow.flowapp import ActionResult
from calflow.flowapp.http import RetryPolicy
from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore

from .conftest import API_KEY, FAST_POLICY, Receiver
from .sandbox_process import SandboxProcess, sandbox_process

pytestmark = pytest.mark.slow

APP = "cal_com"
PHONE = "+33 6 12 34 56 78"
PHONE_E164 = "+33612345678"


def attendee(email: str = "ada@example.com") -> dict[str, Any]:
    return {
        "name": "Ada Lovelace",
        "email": email,
        "timeZone": "Europe/Paris",
        "phoneNumber": PHONE,
    }


def parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def open_slots(runner: Runner, event_type_id: int, **context: Any) -> list[str]:
    """Start times the ``slots`` fetcher offers (UTC, ``…Z``) over the next two weeks."""
    options = await runner.fetch_options(
        APP, "slots", "main", {"eventTypeId": event_type_id, "days": 14, **context}
    )
    return [str(o.value) for o in options]


async def run(runner: Runner, action: str, data: dict[str, Any]) -> ActionResult:
    return await runner.run_action(APP, action, data, "main")


async def book(runner: Runner, event_type_id: int = 101, **extra: Any) -> dict[str, Any]:
    """Book the first open slot of an event type; returns the booking."""
    start = (await open_slots(runner, event_type_id))[0]
    result = await run(
        runner,
        "BookMeeting",
        {"eventTypeId": event_type_id, "start": start, "attendee": attendee(), **extra},
    )
    assert result.port == "success", result
    assert isinstance(result.data, dict)
    return result.data


# --- fetchers and slots ---------------------------------------------------------------


async def test_event_types_fetcher_labels(runner: Runner, integration: str) -> None:
    options = await runner.fetch_options(APP, "event_types", integration)
    by_value = {o.value: o for o in options}
    assert by_value[101].label == "30 Minute Meeting (30m)"
    assert by_value[101].description == "30min"
    assert by_value[102].label == "60 Minute Meeting (60m)"
    assert by_value[104].label == "Consultation (requires confirmation) (30m)"
    assert 106 not in by_value  # hidden event types are not offered


async def test_slots_fetcher_values_are_utc_and_bookable(
    runner: Runner, integration: str, sandbox: SandboxProcess
) -> None:
    utc = await open_slots(runner, 101)
    paris = await open_slots(runner, 101, timeZone="Europe/Paris")
    assert utc, "the sandbox offered no slots"
    assert all(v.endswith("Z") for v in utc + paris)
    assert utc == sorted(utc, key=parse_instant)
    # The time zone changes labels, never the instants offered.
    assert set(paris) & set(utc)
    options = await runner.fetch_options(
        APP, "slots", integration, {"eventTypeId": 101, "timeZone": "Europe/Paris"}
    )
    assert options[0].label.endswith("(Europe/Paris)")

    result = await run(
        runner, "BookMeeting", {"eventTypeId": 101, "start": utc[0], "attendee": attendee()}
    )
    assert result.port == "success", result
    assert result.data["start"] == utc[0]
    assert sandbox.booking(result.data["uid"])["start"] == utc[0]
    assert utc[0] not in await open_slots(runner, 101)


async def test_get_slots_flattens_days_and_matches_the_fetcher(
    runner: Runner, integration: str
) -> None:
    first = datetime.now(UTC).date() + timedelta(days=1)
    last = first + timedelta(days=6)
    result = await run(
        runner,
        "GetSlots",
        {"eventTypeId": 101, "start": first.isoformat(), "end": last.isoformat()},
    )
    assert result.port == "success", result
    data = result.data
    assert data["count"] == len(data["slots"]) == sum(len(v) for v in data["days"].values())
    assert data["count"] > 0
    assert all(s["day"] in data["days"] for s in data["slots"])
    starts = [parse_instant(s["start"]) for s in data["slots"]]
    assert starts == sorted(starts)
    fetched = await runner.fetch_options(
        APP, "slots", integration, {"eventTypeId": 101, "date": first.isoformat(), "days": 7}
    )
    assert {parse_instant(str(o.value)) for o in fetched} == set(starts)


async def test_get_slots_refuses_a_bad_date(runner: Runner, integration: str) -> None:
    with pytest.raises(ValidationError):
        await run(runner, "GetSlots", {"eventTypeId": 101, "start": "tomorrow", "end": "later"})


# --- booking -------------------------------------------------------------------------

VARIANTS: dict[str, tuple[int, dict[str, Any]]] = {
    "id": (101, {"eventTypeId": 101}),
    "username+slug": (101, {"username": "demo", "eventTypeSlug": "30min"}),
    "team+slug": (201, {"teamSlug": "demo-team", "eventTypeSlug": "team-sync"}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_book_meeting_each_variant_then_conflict(
    runner: Runner, integration: str, sandbox: SandboxProcess, variant: str
) -> None:
    event_type_id, selector = VARIANTS[variant]
    start = (await open_slots(runner, event_type_id))[0]
    data = {**selector, "start": start, "attendee": attendee(), "notes": "e2e"}

    booked = await run(runner, "BookMeeting", data)
    assert booked.success and booked.port == "success", booked
    assert booked.data["eventTypeId"] == event_type_id
    assert booked.data["status"] == "accepted"
    stored = sandbox.booking(booked.data["uid"])
    assert stored["attendees"][0]["phoneNumber"] == PHONE_E164
    assert stored["attendees"][0]["email"] == "ada@example.com"
    assert stored["start"] == start

    again = await run(runner, "BookMeeting", data)
    assert again.success and again.port == "conflict", again
    assert again.code == "SLOT_TAKEN"
    assert "not available" in (again.message or "")


async def test_book_meeting_unknown_event_slug_is_a_failure(
    runner: Runner, integration: str
) -> None:
    start = (await open_slots(runner, 101))[0]
    result = await run(
        runner,
        "BookMeeting",
        {
            "username": "demo",
            "eventTypeSlug": "no-such-type",
            "start": start,
            "attendee": attendee(),
        },
    )
    assert not result.success
    assert result.port == "error"
    assert result.code == "NOT_FOUND"


async def test_reschedule_makes_a_new_booking_linked_to_the_old(
    runner: Runner, integration: str, sandbox: SandboxProcess
) -> None:
    old = await book(runner)
    new_start = (await open_slots(runner, 101))[-1]
    moved = await run(
        runner,
        "RescheduleBooking",
        {"bookingUid": old["uid"], "start": new_start, "reschedulingReason": "e2e"},
    )
    assert moved.port == "success", moved
    assert moved.data["uid"] != old["uid"]
    assert moved.data["start"] == new_start
    stored_old = sandbox.booking(old["uid"])
    assert stored_old["rescheduledToUid"] == moved.data["uid"]
    assert stored_old["status"] == "cancelled"
    assert sandbox.booking(moved.data["uid"])["rescheduledFromUid"] == old["uid"]

    missing = await run(runner, "RescheduleBooking", {"bookingUid": "nope", "start": new_start})
    assert missing.success and missing.port == "not_found"


async def test_reschedule_onto_a_taken_slot_is_a_conflict(runner: Runner, integration: str) -> None:
    first = await book(runner)
    second = await book(runner)
    result = await run(
        runner, "RescheduleBooking", {"bookingUid": second["uid"], "start": first["start"]}
    )
    assert result.port == "conflict", result
    assert result.code == "SLOT_TAKEN"


async def test_cancel_twice_is_success_both_times(
    runner: Runner, integration: str, sandbox: SandboxProcess
) -> None:
    booking = await book(runner)
    first = await run(
        runner, "CancelBooking", {"bookingUid": booking["uid"], "cancellationReason": "e2e"}
    )
    assert first.port == "success", first
    assert first.data["status"] == "cancelled"
    assert sandbox.booking(booking["uid"])["status"] == "cancelled"
    assert sandbox.booking(booking["uid"])["cancellationReason"] == "e2e"

    second = await run(runner, "CancelBooking", {"bookingUid": booking["uid"]})
    assert second.success and second.port == "success", second
    assert second.code == "ALREADY_CANCELLED"

    missing = await run(runner, "CancelBooking", {"bookingUid": "no-such-uid"})
    assert missing.port == "not_found"


async def test_get_booking_known_and_unknown(runner: Runner, integration: str) -> None:
    booking = await book(runner)
    found = await run(runner, "GetBooking", {"bookingUid": booking["uid"]})
    assert found.port == "success"
    assert found.data["uid"] == booking["uid"]
    assert found.data["attendees"][0]["phoneNumber"] == PHONE_E164

    missing = await run(runner, "GetBooking", {"bookingUid": "no-such-uid"})
    assert missing.success
    assert missing.port == "not_found"
    assert missing.code == "NOT_FOUND"
    assert "no-such-uid" in (missing.message or "")


async def test_get_all_bookings_follows_pages_up_to_limit(
    runner: Runner, integration: str, sandbox: SandboxProcess
) -> None:
    state = sandbox.state()["bookings"]
    assert len(state) > 100, "seed more bookings: a listing must span two pages"

    everything = await run(runner, "GetAllBookings", {"limit": 100000})
    assert everything.port == "success", everything
    uids = [b["uid"] for b in everything.data["bookings"]]
    assert everything.data["count"] == len(uids) == len(state)
    assert set(uids) == {b["uid"] for b in state}  # no page skipped or repeated

    some = await run(runner, "GetAllBookings", {"limit": 120})
    assert some.data["count"] == 120
    assert len({b["uid"] for b in some.data["bookings"]}) == 120

    few = await run(runner, "GetAllBookings", {"limit": 7})
    assert few.data["count"] == 7

    cancelled = await run(runner, "GetAllBookings", {"status": ["cancelled"], "limit": 100000})
    expected = {b["uid"] for b in state if b["status"] in ("cancelled", "rejected")}
    assert expected
    assert {b["uid"] for b in cancelled.data["bookings"]} == expected

    two = await run(runner, "GetAllBookings", {"status": ["cancelled"], "limit": 2})
    assert two.data["count"] == 2
    assert all(b["status"] in ("cancelled", "rejected") for b in two.data["bookings"])


async def test_mark_absent_too_early_then_after_the_start(
    runner: Runner, integration: str, sandbox: SandboxProcess
) -> None:
    booking = await book(runner)
    data = {
        "bookingUid": booking["uid"],
        "attendees": [{"email": "ada@example.com", "absent": True}],
    }
    early = await run(runner, "MarkAbsent", data)
    assert early.success and early.port == "too_early", early
    assert early.code == "TOO_EARLY"
    assert sandbox.booking(booking["uid"])["attendees"][0]["absent"] is False

    until_start = (parse_instant(booking["start"]) - datetime.now(UTC)).total_seconds()
    sandbox.control("clock", {"offset_s": until_start + 300})
    try:
        marked = await run(runner, "MarkAbsent", data)
        host = await run(runner, "MarkAbsent", {"bookingUid": booking["uid"], "host": True})
    finally:
        sandbox.control("clock", {"offset_s": 0})
    assert marked.port == "success", marked
    assert host.port == "success", host
    stored = sandbox.booking(booking["uid"])
    assert stored["attendees"][0]["absent"] is True
    assert stored["absentHost"] is True

    missing = await run(runner, "MarkAbsent", {"bookingUid": "no-such-uid", "host": True})
    assert missing.port == "not_found"


async def test_add_guests(runner: Runner, integration: str, sandbox: SandboxProcess) -> None:
    booking = await book(runner)
    result = await run(
        runner,
        "AddGuests",
        {
            "bookingUid": booking["uid"],
            "guests": [
                {"email": "grace@example.com", "name": "Grace Hopper"},
                {"email": "alan@example.com", "phoneNumber": "+1 650-253-0000"},
            ],
        },
    )
    assert result.port == "success", result
    stored = sandbox.booking(booking["uid"])
    emails = [a["email"] for a in stored["attendees"]]
    assert emails == ["ada@example.com", "grace@example.com", "alan@example.com"]
    assert stored["attendees"][2]["phoneNumber"] == "+16502530000"

    missing = await run(
        runner, "AddGuests", {"bookingUid": "no-such-uid", "guests": [{"email": "x@example.com"}]}
    )
    assert missing.port == "not_found"


async def test_requires_confirmation_then_confirm_and_decline(
    runner: Runner, integration: str, sandbox: SandboxProcess
) -> None:
    to_confirm = await book(runner, 104)
    to_decline = await book(runner, 104)
    assert to_confirm["status"] == to_decline["status"] == "pending"

    confirmed = await run(runner, "ConfirmBooking", {"bookingUid": to_confirm["uid"]})
    assert confirmed.port == "success", confirmed
    assert confirmed.data["status"] == "accepted"
    assert sandbox.booking(to_confirm["uid"])["status"] == "accepted"

    declined = await run(
        runner, "DeclineBooking", {"bookingUid": to_decline["uid"], "reason": "e2e says no"}
    )
    assert declined.port == "success", declined
    assert sandbox.booking(to_decline["uid"])["status"] == "rejected"

    # Confirming a booking that is no longer pending is Cal.com's 400, a failure.
    again = await run(runner, "ConfirmBooking", {"bookingUid": to_confirm["uid"]})
    assert not again.success
    assert again.code == "PROVIDER_ERROR"
    assert "not pending" in (again.message or "")
    missing = await run(runner, "DeclineBooking", {"bookingUid": "no-such-uid"})
    assert missing.port == "not_found"


# --- webhooks --------------------------------------------------------------------------


def _deliveries(receiver: Receiver, trigger: str) -> list[tuple[bytes, dict[str, str], Any]]:
    out = []
    for r in receiver.requests:
        body = json.loads(r.body)
        if body.get("triggerEvent") == trigger:
            out.append((r.body, r.headers, body))
    return out


async def test_register_webhook_deliveries_are_signed_with_the_stored_secret(
    runner: Runner,
    integration: str,
    store: IntegrationStore,
    sandbox: SandboxProcess,
    receiver: Receiver,
) -> None:
    triggers = ["BOOKING_CREATED", "BOOKING_CANCELLED", "MEETING_ENDED"]
    registered = await run(
        runner, "RegisterWebhook", {"subscriberUrl": receiver.url, "triggers": triggers}
    )
    assert registered.port == "success", registered
    assert registered.data["reused"] is False
    assert "secret" not in registered.data
    hook_id = str(registered.data["id"])
    saved = store.get(integration)
    secret = saved.value("webhook_secret")
    assert isinstance(secret, str) and len(secret) >= 32
    assert saved.value("webhook_id") == hook_id
    assert secret not in repr(saved)

    try:
        booking = await book(runner)
        sandbox.control(f"calcom/bookings/{booking['uid']}/meeting-ended")
        sandbox.control("flush")

        created = _deliveries(receiver, "BOOKING_CREATED")
        assert [d[2]["payload"]["uid"] for d in created] == [booking["uid"]]
        ended = _deliveries(receiver, "MEETING_ENDED")
        assert len(ended) == 1
        for raw, headers, _ in created + ended:
            expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            assert headers["x-cal-signature-256"] == expected
        assert all(r.path == "/hooks/calcom" for r in receiver.requests)

        # Registering again reuses the webhook and keeps the secret calflow knows.
        again = await run(
            runner, "RegisterWebhook", {"subscriberUrl": receiver.url, "triggers": triggers}
        )
        assert again.port == "success", again
        assert again.data["reused"] is True
        assert str(again.data["id"]) == hook_id
        hooks = [w for w in sandbox.state()["webhooks"] if w["subscriberUrl"] == receiver.url]
        assert len(hooks) == 1
        assert store.get(integration).value("webhook_secret") == secret
        assert hooks[0]["secret"] == secret
    finally:
        removed = await run(runner, "UnregisterWebhook", {"webhookId": hook_id})
    assert removed.port == "success", removed
    assert removed.data == {"deleted": [hook_id], "already_gone": []}
    assert not [w for w in sandbox.state()["webhooks"] if w["subscriberUrl"] == receiver.url]
    forgotten = store.get(integration)
    assert "webhook_secret" not in forgotten.secrets  # removed, not kept as an empty secret
    assert "webhook_id" not in forgotten.config

    gone = await run(runner, "UnregisterWebhook", {"webhookId": hook_id})
    assert gone.success and gone.port == "success", gone
    assert gone.data == {"deleted": [], "already_gone": [hook_id]}


async def test_register_webhook_adopts_an_unknown_existing_hook(
    runner: Runner,
    integration: str,
    store: IntegrationStore,
    sandbox: SandboxProcess,
    receiver: Receiver,
) -> None:
    """A matching webhook calflow has no secret for gets a fresh secret, not a twin."""
    async with httpx.AsyncClient(timeout=10) as http:
        made = await http.post(
            f"{sandbox.calcom}/v2/webhooks",
            headers={"Authorization": f"Bearer {API_KEY}"},
            json={
                "subscriberUrl": receiver.url,
                "triggers": ["BOOKING_CREATED"],
                "active": True,
                "secret": "someone-elses-secret",
            },
        )
    assert made.status_code == 201, made.text
    try:
        result = await run(
            runner,
            "RegisterWebhook",
            {"subscriberUrl": receiver.url, "triggers": ["BOOKING_CREATED"]},
        )
        assert result.port == "success", result
        assert result.data["reused"] is True
        secret = store.get(integration).value("webhook_secret")
        hooks = [w for w in sandbox.state()["webhooks"] if w["subscriberUrl"] == receiver.url]
        assert len(hooks) == 1
        assert hooks[0]["secret"] == secret != "someone-elses-secret"
    finally:
        removed = await run(runner, "UnregisterWebhook", {"subscriberUrl": receiver.url})
    assert removed.port == "success"
    assert len(removed.data["deleted"]) == 1


# --- failures --------------------------------------------------------------------------


async def test_wrong_api_key_is_auth_error(
    runner: Runner, store: IntegrationStore, sandbox: SandboxProcess
) -> None:
    store.add("cal_com", "bad", {"base_url": sandbox.calcom}, {"api_key": "cal_live_wrong"})
    result = await runner.run_action(APP, "GetBooking", {"bookingUid": "x"}, "bad")
    assert not result.success
    assert result.port == "error"
    assert result.code == "AUTH_ERROR"
    assert "cal_live_wrong" not in json.dumps(result.to_dict())
    with pytest.raises(AuthError):
        await runner.fetch_options(APP, "event_types", "bad")


async def test_server_errors_are_retried_then_unavailable(
    store: IntegrationStore, integration: str, sandbox: SandboxProcess
) -> None:
    sent: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request)

    sandbox.control("faults", {"fail_rate": 1})
    try:
        async with (
            httpx.AsyncClient(timeout=10, event_hooks={"request": [count]}) as http,
            Runner(store=store, http=http, policy=FAST_POLICY) as runner,
        ):
            started = time.monotonic()
            result = await run(runner, "GetBooking", {"bookingUid": "anything"})
            elapsed = time.monotonic() - started
    finally:
        sandbox.control("faults", {"fail_rate": 0})
    assert not result.success
    assert result.port == "error"
    assert result.code == "UNAVAILABLE"
    assert result.data["status"] in (500, 502, 503)
    assert len(sent) == FAST_POLICY.max_retries + 1
    assert elapsed < 5


async def test_rate_limit_gives_rate_limit_when_the_wait_is_too_long(
    store: IntegrationStore,
) -> None:
    key = "cal_live_e2e_throttled"
    with sandbox_process(key, rate_limit=3) as limited:
        store.add("cal_com", "limited", {"base_url": limited.calcom}, {"api_key": key})
        async with Runner(store=store, policy=RetryPolicy(max_total_wait_s=1)) as runner:
            for _ in range(3):
                allowed = await runner.run_action(APP, "GetBooking", {"bookingUid": "u"}, "limited")
                assert allowed.port == "not_found", allowed
            started = time.monotonic()
            refused = await runner.run_action(APP, "GetBooking", {"bookingUid": "u"}, "limited")
            elapsed = time.monotonic() - started
            raw = await runner.http.get(
                f"{limited.calcom}/v2/bookings/u",
                headers={"Authorization": f"Bearer {key}", "cal-api-version": "2024-08-13"},
            )
    assert not refused.success
    assert refused.code == "RATE_LIMIT"
    assert refused.data["retry_after"] > 1
    assert elapsed < 1  # the wait Cal.com asks for exceeds the bound: no waiting at all
    assert raw.status_code == 429
    assert float(raw.headers["X-RateLimit-Reset-Default"]) > 1
