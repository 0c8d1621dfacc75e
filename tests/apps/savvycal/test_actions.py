"""Behaviour of the SavvyCal actions and fetchers, against MockTransport fakes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from calflow.db import get_engine, migrate
from calflow.errors import ValidationError
from calflow.flowapp import BookingChange, RetryPolicy
from calflow.integrations import Integration, IntegrationStore
from calflow.vault import Vault
from db_fixtures import clean_calflow_env, sqlite_url

from ._support import (
    BASE_URL,
    TOKEN,
    TOKEN_URL,
    Handler,
    Recorder,
    answer,
    errors,
    event,
    json_of,
    link,
    make_integration,
    make_runner,
    page,
    webhook,
)

__all__ = ["clean_calflow_env", "sqlite_url"]

HOOK_URL = "https://hooks.example.com/calflow/savvycal"
BOOK: dict[str, Any] = {
    "link_id": "link_1",
    "start_at": "2050-09-05T11:00:00+02:00",
    "duration": 30,
    "display_name": "Ada Lovelace",
    "email": "ada@example.com",
    "time_zone": "Europe/Rome",
}


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
        return await runner.run_action("savvycal", action, data, integration or make_integration())


async def fetch(handler: Handler, fetcher: str, context: dict[str, Any] | None = None) -> Any:
    async with make_runner(handler) as runner:
        return await runner.fetch_options("savvycal", fetcher, make_integration(), context)


def query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[IntegrationStore]:
    engine = get_engine(sqlite_url)
    migrate(engine)
    yield IntegrationStore(engine, Vault([Vault.generate_key()]))


@pytest.fixture
def stored(store: IntegrationStore) -> Integration:
    return store.add("savvycal", "savvy main", {"base_url": BASE_URL}, {"token": TOKEN})


# GetMe, auth, base URL


@pytest.mark.parametrize("base", [BASE_URL, BASE_URL + "/", BASE_URL + "/v1", BASE_URL + "/v1/"])
async def test_get_me_with_bearer_token_and_any_base_url_form(base: str) -> None:
    me = {"id": "user_1", "email": "host@example.com", "display_name": "Host"}
    rec = answer(httpx.Response(200, json=me))
    result = await run(rec, "GetMe", {}, integration=make_integration({"base_url": base}))
    assert result.success and result.data == me
    assert rec.calls() == [("GET", "/v1/me")]
    assert rec.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_unauthenticated_is_auth_error_with_savvycals_message() -> None:
    rec = answer(errors(401, [{"message": "Unauthenticated"}]))
    result = await run(rec, "GetMe", {})
    assert not result.success and result.code == "AUTH_ERROR"
    assert "Unauthenticated" in (result.message or "")
    assert len(rec.requests) == 1  # a personal token is never refreshed


@pytest.mark.parametrize(
    ("errs", "text"),
    [
        ([{"message": "Something is wrong"}], "Something is wrong"),
        ({"email": [{"message": "is invalid"}]}, "email: is invalid"),
        ({"email": ["is invalid"], "display_name": ["can't be blank"]}, "email: is invalid"),
    ],
    ids=["list", "field-objects", "field-strings"],
)
async def test_every_error_shape_becomes_readable_text(errs: Any, text: str) -> None:
    result = await run(answer(errors(422, errs)), "BookEvent", BOOK)
    assert not result.success and result.port == "error" and result.code == "PROVIDER_ERROR"
    assert text in (result.message or "")
    if isinstance(errs, dict) and "display_name" in errs:
        assert "display_name: can't be blank" in (result.message or "")
    result = await run(answer(errors(400, errs)), "GetEvent", {"event_id": "event_1"})
    assert not result.success and text in (result.message or "")


async def test_rate_limit_honours_retry_after_then_retries() -> None:
    limited = errors(429, [{"message": "Too many requests"}])
    limited.headers["Retry-After"] = "0.2"
    rec = answer(limited, httpx.Response(200, json=event()))
    policy = RetryPolicy(backoff_base_s=0.001, default_rate_wait_s=30, max_total_wait_s=5)
    began = time.monotonic()
    result = await run(rec, "GetEvent", {"event_id": "event_1"}, policy=policy)
    assert result.success and result.data["id"] == "event_1"
    assert len(rec.requests) == 2
    assert time.monotonic() - began >= 0.2


async def test_server_errors_are_retried_then_unavailable() -> None:
    rec = answer(errors(503, [{"message": "down"}]))
    result = await run(rec, "GetMe", {})
    assert not result.success and result.code == "UNAVAILABLE"
    assert len(rec.requests) == 4


# OAuth


def _oauth_handler(refresh_status: int = 200) -> Recorder:
    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            if refresh_status != 200:
                return httpx.Response(
                    refresh_status,
                    json={"error": "invalid_grant", "error_description": "refresh token revoked"},
                )
            return httpx.Response(
                200,
                json={
                    "access_token": "at_new",
                    "refresh_token": "rt_new",
                    "token_type": "bearer",
                    "expires_in": 7200,
                },
            )
        if request.headers.get("authorization") != "Bearer at_new":
            return errors(401, [{"message": "Unauthenticated"}])
        return httpx.Response(200, json={"id": "user_1"})

    return Recorder(handler)


def _oauth_integration(store: IntegrationStore) -> Integration:
    return store.add(
        "savvycal",
        "savvy oauth",
        {"base_url": BASE_URL, "oauth_client_id": "client_1", "token_url": TOKEN_URL},
        {"access_token": "at_old", "refresh_token": "rt_old", "oauth_client_secret": "cs_1"},
    )


async def test_oauth_token_is_refreshed_once_saved_and_the_call_retried(
    store: IntegrationStore,
) -> None:
    integration = _oauth_integration(store)
    rec = _oauth_handler()
    result = await run(rec, "GetMe", {}, integration=integration, store=store)
    assert result.success and result.data == {"id": "user_1"}
    assert len(rec.requests) == 3
    refresh = rec.requests[1]
    assert refresh.method == "POST" and str(refresh.url) == TOKEN_URL
    assert refresh.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(refresh.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["rt_old"],
        "client_id": ["client_1"],
        "client_secret": ["cs_1"],
    }
    assert "authorization" not in refresh.headers
    assert rec.requests[2].headers["authorization"] == "Bearer at_new"
    saved = store.get(integration.id)
    assert (saved.value("access_token"), saved.value("refresh_token")) == ("at_new", "rt_new")


async def test_a_refused_refresh_is_the_original_auth_error(store: IntegrationStore) -> None:
    integration = _oauth_integration(store)
    rec = _oauth_handler(refresh_status=400)
    result = await run(rec, "GetMe", {}, integration=integration, store=store)
    assert not result.success and result.code == "AUTH_ERROR"
    assert len(rec.requests) == 2
    assert store.get(integration.id).value("access_token") == "at_old"


async def test_oauth_without_refresh_fields_is_not_refreshed() -> None:
    rec = answer(errors(401, [{"message": "Unauthenticated"}]))
    integration = make_integration(secrets={"access_token": "at_old"})
    result = await run(rec, "GetMe", {}, integration=integration)
    assert result.code == "AUTH_ERROR" and len(rec.requests) == 1


# ListEvents


async def test_list_events_sends_savvycals_defaults() -> None:
    rec = answer(page([event()]))
    result = await run(rec, "ListEvents", {})
    assert result.success and result.data["count"] == 1
    assert query(rec.requests[0]) == {
        "period": "upcoming",
        "state": "confirmed",
        "attendance": "attending",
        "limit": "100",
    }


async def test_list_events_sends_every_filter() -> None:
    rec = answer(page([]))
    data = {
        "period": "fixed",
        "from": "2050-09-01",
        "until": "2050-09-30",
        "state": "all",
        "attendance": "any",
        "direction": "asc",
        "link": "link_1",
    }
    result = await run(rec, "ListEvents", data)
    assert result.success and result.data == {"events": [], "count": 0}
    assert query(rec.requests[0]) == {**data, "limit": "100"}


@pytest.mark.parametrize(
    "data",
    [{"period": "fixed", "from": "2050-09-01"}, {"from": "2050-09-01", "until": "2050-09-30"}],
    ids=["fixed-without-until", "dates-without-fixed"],
)
async def test_list_events_dates_go_with_a_fixed_period(data: dict[str, Any]) -> None:
    rec = answer(page([]))
    with pytest.raises(ValidationError):
        await run(rec, "ListEvents", data)
    assert rec.requests == []


async def test_list_events_follows_cursors_across_three_pages() -> None:
    rec = answer(
        page([event("event_1"), event("event_2")], after="c1"),
        page([event("event_3")], after="c2"),
        page([event("event_4")], after=None),
    )
    result = await run(rec, "ListEvents", {"period": "all", "state": "all"})
    assert [e["id"] for e in result.data["events"]] == ["event_1", "event_2", "event_3", "event_4"]
    assert [query(r).get("after") for r in rec.requests] == [None, "c1", "c2"]
    assert all(query(r)["limit"] == "100" and query(r)["period"] == "all" for r in rec.requests)


async def test_list_events_stops_at_the_limit() -> None:
    rec = answer(
        page([event("event_1"), event("event_2")], after="c1"),
        page([event("event_3"), event("event_4")], after="c2"),
        page([event("event_5")], after=None),
    )
    result = await run(rec, "ListEvents", {"limit": 3})
    assert [e["id"] for e in result.data["events"]] == ["event_1", "event_2", "event_3"]
    assert len(rec.requests) == 2
    assert query(rec.requests[0])["limit"] == "3"


# GetEvent / CancelEvent


async def test_get_event_and_not_found() -> None:
    rec = answer(httpx.Response(200, json=event("event_9")))
    result = await run(rec, "GetEvent", {"event_id": "event_9"})
    assert result.success and result.data["id"] == "event_9"
    assert rec.calls() == [("GET", "/v1/events/event_9")]
    missing = await run(
        answer(errors(404, [{"message": "Not found"}])), "GetEvent", {"event_id": "x"}
    )
    assert missing.success and missing.port == "not_found" and missing.code == "NOT_FOUND"


async def test_cancel_sends_the_reason_and_publishes() -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    canceled = event("event_1", state="canceled", cancel_reason="Sick")
    rec = answer(httpx.Response(200, json=canceled))
    data = {"event_id": "event_1", "cancel_reason": "Sick"}
    result = await run(rec, "CancelEvent", data, sink=sink)
    assert result.success and result.data["state"] == "canceled"
    assert rec.calls() == [("POST", "/v1/events/event_1/cancel")]
    assert json_of(rec.requests[0]) == {"cancel_reason": "Sick"}
    assert [(c.provider, c.kind, c.booking["id"]) for c in changes] == [
        ("savvycal", "cancelled", "event_1")
    ]
    assert result.meta["booking_changes"] == 1


async def test_cancel_unknown_event_is_not_found_and_publishes_nothing() -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    rec = answer(errors(404, [{"message": "Not found"}]))
    result = await run(rec, "CancelEvent", {"event_id": "event_x"}, sink=sink)
    assert result.port == "not_found" and changes == []


# BookEvent


async def test_book_sends_utc_times_e164_phone_and_publishes_created() -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    rec = answer(httpx.Response(201, json=event("event_new")))
    data = {
        **BOOK,
        "phone_number": "(415) 555-0123",
        "default_phone_region": "us",
        "fields": [{"id": "field_1", "value": "Acme"}],
        "metadata": {"crm_id": "42"},
    }
    result = await run(rec, "BookEvent", data, sink=sink)
    assert result.success and result.port == "success" and result.data["id"] == "event_new"
    assert rec.calls() == [("POST", "/v1/links/link_1/events")]
    assert json_of(rec.requests[0]) == {
        "start_at": "2050-09-05T09:00:00Z",
        "end_at": "2050-09-05T09:30:00Z",
        "display_name": "Ada Lovelace",
        "email": "ada@example.com",
        "time_zone": "Europe/Rome",
        "phone_number": "+14155550123",
        "fields": [{"id": "field_1", "value": "Acme"}],
        "metadata": {"crm_id": "42"},
    }
    assert [c.kind for c in changes] == ["created"]
    assert changes[0].input["phone_number"] == "+14155550123"


async def test_book_with_an_end_time_and_awaiting_approval_is_requested() -> None:
    changes: list[BookingChange] = []

    async def sink(change: BookingChange) -> None:
        changes.append(change)

    rec = answer(httpx.Response(201, json=event("event_new", state="awaiting_approval")))
    data = {k: v for k, v in BOOK.items() if k != "duration"}
    data["end_at"] = "2050-09-05T10:00:00Z"
    result = await run(rec, "BookEvent", data, sink=sink)
    assert result.success
    assert json_of(rec.requests[0])["end_at"] == "2050-09-05T10:00:00Z"
    assert [c.kind for c in changes] == ["requested"]


@pytest.mark.parametrize(
    "change",
    [
        {"end_at": "2050-09-05T10:00:00Z"},  # both an end and a duration
        {"duration": None},  # neither
        {"phone_number": "12"},
        {"phone_number": "4155550123"},  # no region, no +country code
        {"email": "not an email"},
    ],
    ids=["end-and-duration", "no-end", "bad-phone", "phone-without-region", "bad-email"],
)
async def test_book_rejects_bad_input_before_sending(change: dict[str, Any]) -> None:
    data = {**BOOK, **change}
    data = {k: v for k, v in data.items() if v is not None}
    rec = answer(httpx.Response(201, json=event()))
    with pytest.raises(ValidationError) as caught:
        await run(rec, "BookEvent", data)
    assert rec.requests == []
    if "phone_number" in change:
        assert "defaultPhoneRegion" not in str(caught.value)


async def test_book_an_end_before_the_start_is_rejected() -> None:
    data = {k: v for k, v in BOOK.items() if k != "duration"}
    data["end_at"] = "2050-09-05T08:00:00Z"
    rec = answer(httpx.Response(201, json=event()))
    with pytest.raises(ValidationError):
        await run(rec, "BookEvent", data)
    assert rec.requests == []


async def test_book_a_time_that_is_not_open_is_conflict() -> None:
    rec = answer(errors(422, {"start_at": [{"message": "is not available"}]}))
    result = await run(rec, "BookEvent", BOOK)
    assert result.success and result.port == "conflict" and result.code == "SLOT_TAKEN"
    assert "start_at: is not available" in (result.message or "")


async def test_book_on_an_unknown_link_is_a_not_found_error() -> None:
    rec = answer(errors(404, [{"message": "Not found"}]))
    result = await run(rec, "BookEvent", {**BOOK, "link_id": "link_missing"})
    assert not result.success and result.port == "error" and result.code == "NOT_FOUND"
    assert rec.calls() == [("POST", "/v1/links/link_missing/events")]


# Links and slots


async def test_get_link_slots_returns_the_bare_array_with_a_count() -> None:
    slots = [
        {
            "start_at": "2050-09-05T09:00:00Z",
            "end_at": "2050-09-05T09:30:00Z",
            "duration": 30,
            "rank": 1,
        },
        {
            "start_at": "2050-09-05T10:00:00Z",
            "end_at": "2050-09-05T10:30:00Z",
            "duration": 30,
            "rank": 2,
        },
    ]
    rec = answer(httpx.Response(200, json=slots))
    data = {"link_id": "link_1", "from": "2050-09-05", "until": "2050-09-06T12:00:00+02:00"}
    result = await run(rec, "GetLinkSlots", data)
    assert result.success and result.data == {"slots": slots, "count": 2}
    assert rec.calls() == [("GET", "/v1/links/link_1/slots")]
    assert query(rec.requests[0]) == {"from": "2050-09-05", "until": "2050-09-06T10:00:00Z"}


async def test_get_link_slots_of_an_unknown_link_is_not_found() -> None:
    rec = answer(errors(404, [{"message": "Not found"}]))
    result = await run(rec, "GetLinkSlots", {"link_id": "link_missing"})
    assert result.port == "not_found"


async def test_list_links_follows_cursors() -> None:
    rec = answer(
        page([link("link_1", "Intro")], after="c1"), page([link("link_2", "Deep dive", 60)])
    )
    result = await run(rec, "ListLinks", {})
    assert [x["id"] for x in result.data["links"]] == ["link_1", "link_2"]
    assert result.data["count"] == 2
    assert [query(r).get("after") for r in rec.requests] == [None, "c1"]


async def test_links_fetcher_labels_with_the_default_duration() -> None:
    rec = answer(
        page([link("link_1", "Intro"), link("link_2", "Deep dive", 60)], after="c1"),
        page([link("link_3", "Open", None)]),
    )
    options = await fetch(rec, "links")
    assert [(o.value, o.label) for o in options] == [
        ("link_1", "Intro (30m)"),
        ("link_2", "Deep dive (60m)"),
        ("link_3", "Open"),
    ]


async def test_link_slots_fetcher_values_are_utc() -> None:
    slots = [
        {
            "start_at": "2050-09-05T11:00:00+02:00",
            "end_at": "2050-09-05T11:30:00+02:00",
            "duration": 30,
        }
    ]
    rec = answer(httpx.Response(200, json=slots))
    context = {
        "link_id": "link_1",
        "from": "2050-09-05",
        "until": "2050-09-06",
        "time_zone": "Europe/Rome",
    }
    options = await fetch(rec, "link_slots", context)
    assert [o.value for o in options] == ["2050-09-05T09:00:00Z"]
    assert options[0].label == "Mon 05 Sep 11:00 (Europe/Rome)"
    assert query(rec.requests[0]) == {"from": "2050-09-05", "until": "2050-09-06"}


async def test_link_slots_fetcher_needs_a_link() -> None:
    rec = answer(httpx.Response(200, json=[]))
    with pytest.raises(ValidationError):
        await fetch(rec, "link_slots", {})
    assert rec.requests == []


async def test_book_event_start_is_filled_by_the_link_slots_fetcher() -> None:
    from calflow.apps.savvycal import APP

    refs = APP.action("BookEvent").fetcher_refs()
    assert ("start_at", "link_slots", ["link_id"]) in refs
    assert ("link_id", "links", []) in refs


# Webhooks


async def test_register_creates_and_keeps_id_and_secret(
    store: IntegrationStore, stored: Integration
) -> None:
    created = {**webhook("wh_1", HOOK_URL), "secret": "shh_from_savvycal"}
    rec = answer(httpx.Response(201, json=created))
    result = await run(rec, "RegisterWebhook", {"url": HOOK_URL}, integration=stored, store=store)
    assert result.success and result.data["id"] == "wh_1" and result.data["reused"] is False
    assert "secret" not in result.data
    assert rec.calls() == [("POST", "/v1/webhooks")]  # nothing known: no need to list
    assert json_of(rec.requests[0]) == {"url": HOOK_URL}
    saved = store.get(stored.id)
    assert saved.value("webhook_id") == "wh_1"
    assert saved.value("webhook_secret") == "shh_from_savvycal"


async def test_register_reuses_the_webhook_calflow_knows(
    store: IntegrationStore, stored: Integration
) -> None:
    known = store.update(stored.id, config={"webhook_id": "wh_7"}, secrets={"webhook_secret": "s7"})
    rec = answer(
        page([webhook("wh_3", "https://other.example.com")], after="c1"),
        page([webhook("wh_7", HOOK_URL)]),
    )
    result = await run(rec, "RegisterWebhook", {"url": HOOK_URL}, integration=known, store=store)
    assert result.success and result.data == {**webhook("wh_7", HOOK_URL), "reused": True}
    assert [m for m, _ in rec.calls()] == ["GET", "GET"]
    assert store.get(stored.id).value("webhook_secret") == "s7"


async def test_register_with_an_unknown_webhook_for_the_url_creates_a_new_one(
    store: IntegrationStore, stored: Integration
) -> None:
    known = store.update(stored.id, config={"webhook_id": "wh_7"}, secrets={"webhook_secret": "s7"})
    created = {**webhook("wh_8", HOOK_URL), "secret": "s8"}
    rec = answer(page([webhook("wh_5", HOOK_URL)]), httpx.Response(201, json=created))
    result = await run(rec, "RegisterWebhook", {"url": HOOK_URL}, integration=known, store=store)
    assert result.success and result.data["id"] == "wh_8" and result.data["reused"] is False
    assert rec.calls() == [("GET", "/v1/webhooks"), ("POST", "/v1/webhooks")]
    saved = store.get(stored.id)
    assert (saved.value("webhook_id"), saved.value("webhook_secret")) == ("wh_8", "s8")


async def test_register_an_invalid_url_is_an_error_with_the_field(stored: Integration) -> None:
    rec = answer(errors(422, {"url": [{"message": "must be a valid URL"}]}))
    result = await run(rec, "RegisterWebhook", {"url": "http://localhost"}, integration=stored)
    assert not result.success and "url: must be a valid URL" in (result.message or "")


async def test_unregister_counts_404_as_done_and_forgets_the_secret(
    store: IntegrationStore, stored: Integration
) -> None:
    known = store.update(stored.id, config={"webhook_id": "wh_7"}, secrets={"webhook_secret": "s"})
    rec = answer(errors(404, [{"message": "Not found"}]))
    result = await run(rec, "UnregisterWebhook", {}, integration=known, store=store)
    assert result.success and result.data == {"deleted": [], "already_gone": ["wh_7"]}
    assert rec.calls() == [("DELETE", "/v1/webhooks/wh_7")]
    saved = store.get(stored.id)
    assert not saved.value("webhook_id") and not saved.value("webhook_secret")


async def test_unregister_by_url_deletes_every_match() -> None:
    rec = Recorder(
        lambda r: page(
            [
                webhook("wh_1", HOOK_URL),
                webhook("wh_2", "https://x.example"),
                webhook("wh_3", HOOK_URL),
            ]
        )
        if r.method == "GET"
        else httpx.Response(204)
    )
    result = await run(rec, "UnregisterWebhook", {"url": HOOK_URL})
    assert result.data == {"deleted": ["wh_1", "wh_3"], "already_gone": []}
    assert [p for m, p in rec.calls() if m == "DELETE"] == [
        "/v1/webhooks/wh_1",
        "/v1/webhooks/wh_3",
    ]


async def test_unregister_with_nothing_to_remove_says_what_to_give() -> None:
    rec = answer(httpx.Response(204))
    with pytest.raises(ValidationError):
        await run(rec, "UnregisterWebhook", {})
    assert rec.requests == []
