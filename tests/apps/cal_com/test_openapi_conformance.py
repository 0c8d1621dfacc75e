"""Every request the Cal.com app sends conforms to Cal.com's OpenAPI spec (see _openapi.py).

Each action and fetcher runs against a recording fake with representative inputs (every
``oneOf`` variant, the optional fields); every recorded request is then checked for path,
method, headers (exact ``cal-api-version``), query parameters and JSON body.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from calflow.apps.cal_com import APP
from calflow.db import get_engine, migrate
from calflow.integrations import Integration, IntegrationStore
from calflow.vault import Vault
from db_fixtures import clean_calflow_env, sqlite_url

from ._openapi import (
    GUESTS_PATH,
    Nonconformance,
    SpecValidator,
    load_spec,
    spec_file,
)
from ._support import API_KEY, BASE_URL, FakeCalCom, Recorder, make_runner, webhook

pytestmark = pytest.mark.slow

__all__ = ["clean_calflow_env", "sqlite_url"]

HOOK_URL = "https://hooks.example.com/calflow/cal"
TRIGGERS = ["BOOKING_CREATED", "BOOKING_CANCELLED"]


@pytest.fixture(scope="module")
def validator() -> SpecValidator:
    path = spec_file()
    if not path.exists():
        message = f"Cal.com's OpenAPI spec not found at {path} (set CALFLOW_CALCOM_OPENAPI)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SpecValidator(load_spec(path), BASE_URL)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[IntegrationStore]:
    engine: Engine = get_engine(sqlite_url)
    migrate(engine)
    yield IntegrationStore(engine, Vault([Vault.generate_key()]))


@dataclass
class Case:
    """One run: an action (with input) or a fetcher (with context)."""

    id: str
    key: str
    data: dict[str, Any] = field(default_factory=dict)
    fetcher: bool = False
    hooks: list[dict[str, Any]] = field(default_factory=list)
    oauth: bool = False
    calls: list[tuple[str, str]] | None = None
    """The exact (method, path) sequence expected, when it matters."""


ATTENDEE = {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Rome"}

CASES = [
    Case(
        "book-by-id-all-fields",
        "BookMeeting",
        {
            "eventTypeId": 7,
            "start": "2050-09-05T11:00:00+02:00",
            "attendee": {**ATTENDEE, "phoneNumber": "06 6982 0000", "language": "it"},
            "defaultPhoneRegion": "IT",
            "guests": ["bob@example.com"],
            "lengthInMinutes": 30,
            "notes": "Bring the slides",
            "location": {"type": "integration", "integration": "cal-video"},
            "metadata": {"crm_id": "42"},
            "bookingFieldsResponses": {"company": "Analytical Engines"},
        },
        calls=[("POST", "/v2/bookings")],
    ),
    Case(
        "book-by-username",
        "BookMeeting",
        {
            "username": "host",
            "eventTypeSlug": "intro",
            "organizationSlug": "acme",
            "start": "2050-09-05T09:00:00Z",
            "attendee": {"name": "Ada", "timeZone": "UTC", "phoneNumber": "+1 650-253-0000"},
            "location": {"type": "attendeePhone", "phone": "+16502530000"},
        },
    ),
    Case(
        "book-by-team",
        "BookMeeting",
        {
            "teamSlug": "sales",
            "eventTypeSlug": "demo",
            "start": "2050-09-05T09:00:00.000Z",
            "attendee": ATTENDEE,
        },
    ),
    Case(
        "reschedule",
        "RescheduleBooking",
        {
            "bookingUid": "bk_1",
            "start": "2050-09-06T10:00:00-04:00",
            "rescheduledBy": "host@example.com",
            "reschedulingReason": "Conflict",
        },
        calls=[("POST", "/v2/bookings/bk_1/reschedule")],
    ),
    Case(
        "reschedule-minimal",
        "RescheduleBooking",
        {"bookingUid": "bk_1", "start": "2050-09-06T10:00:00Z"},
    ),
    Case(
        "cancel",
        "CancelBooking",
        {"bookingUid": "bk_1", "cancellationReason": "Sick", "cancelSubsequentBookings": True},
    ),
    Case("cancel-minimal", "CancelBooking", {"bookingUid": "bk_1"}),
    Case("get", "GetBooking", {"bookingUid": "bk_1"}, calls=[("GET", "/v2/bookings/bk_1")]),
    Case(
        "list-all-filters",
        "GetAllBookings",
        {
            "status": ["upcoming", "unconfirmed"],
            "attendeeEmail": "ada@example.com",
            "attendeeName": "Ada",
            "bookingUid": "bk_1",
            "eventTypeId": 7,
            "eventTypeIds": [7, 8],
            "teamId": 3,
            "teamsIds": [3, 4],
            "afterStart": "2050-09-01T00:00:00Z",
            "beforeEnd": "2050-10-01T00:00:00Z",
            "afterCreatedAt": "2050-01-01T00:00:00Z",
            "beforeCreatedAt": "2050-12-01T00:00:00Z",
            "afterUpdatedAt": "2050-01-01T00:00:00Z",
            "beforeUpdatedAt": "2050-12-01T00:00:00Z",
            "sortStart": "asc",
            "sortEnd": "desc",
            "sortCreated": "asc",
            "sortUpdatedAt": "desc",
            "limit": 2,
        },
    ),
    Case("list-paged", "GetAllBookings", {"status": ["past"], "limit": 500}),
    Case(
        "slots-by-id",
        "GetSlots",
        {
            "eventTypeId": 7,
            "start": "2050-09-05",
            "end": "2050-09-06",
            "timeZone": "Europe/Rome",
            "duration": 30,
            "format": "range",
            "bookingUidToReschedule": "bk_1",
        },
    ),
    Case(
        "slots-with-offsets",
        "GetSlots",
        {
            "eventTypeId": 7,
            "start": "2050-09-05T09:00:00+02:00",
            "end": "2050-09-06T18:00:00-04:00",
            "timeZone": "Europe/Rome",
        },
    ),
    Case(
        "slots-by-username",
        "GetSlots",
        {
            "username": "host",
            "eventTypeSlug": "intro",
            "organizationSlug": "acme",
            "start": "2050-09-05",
            "end": "2050-09-05",
            "format": "time",
        },
    ),
    Case(
        "slots-by-team",
        "GetSlots",
        {"teamSlug": "sales", "eventTypeSlug": "demo", "start": "2050-09-05", "end": "2050-09-06"},
    ),
    Case(
        "slots-by-usernames",
        "GetSlots",
        {"usernames": ["alice", "bob"], "start": "2050-09-05T00:00:00Z", "end": "2050-09-06"},
    ),
    Case("mark-absent-host", "MarkAbsent", {"bookingUid": "bk_1", "host": True}),
    Case(
        "mark-absent-attendees",
        "MarkAbsent",
        {"bookingUid": "bk_1", "attendees": [{"email": "ada@example.com", "absent": True}]},
    ),
    Case(
        "add-guests",
        "AddGuests",
        {
            "bookingUid": "bk_1",
            "defaultPhoneRegion": "GB",
            "guests": [
                {"email": "bob@example.com"},
                {
                    "email": "cy@example.com",
                    "name": "Cy",
                    "timeZone": "Europe/London",
                    "phoneNumber": "020 7946 0958",
                    "language": "en",
                },
            ],
        },
        calls=[("POST", "/v2/bookings/bk_1/guests")],
    ),
    Case("confirm", "ConfirmBooking", {"bookingUid": "bk_1"}),
    Case("decline", "DeclineBooking", {"bookingUid": "bk_1", "reason": "Fully booked"}),
    Case("decline-minimal", "DeclineBooking", {"bookingUid": "bk_1"}),
    Case(
        "register-webhook-new",
        "RegisterWebhook",
        {"subscriberUrl": HOOK_URL, "triggers": TRIGGERS, "payloadTemplate": '{"x":1}'},
        calls=[("GET", "/v2/webhooks"), ("POST", "/v2/webhooks")],
    ),
    Case(
        "register-webhook-default-triggers",
        "RegisterWebhook",
        {"subscriberUrl": HOOK_URL, "active": False},
    ),
    Case(
        "register-webhook-adopt",
        "RegisterWebhook",
        {"subscriberUrl": HOOK_URL, "triggers": TRIGGERS},
        hooks=[webhook(55, HOOK_URL, TRIGGERS)],
        calls=[("GET", "/v2/webhooks"), ("PATCH", "/v2/webhooks/55")],
    ),
    Case(
        "unregister-by-id",
        "UnregisterWebhook",
        {"webhookId": "55"},
        hooks=[webhook(55, HOOK_URL, TRIGGERS)],
        calls=[("DELETE", "/v2/webhooks/55")],
    ),
    Case(
        "unregister-by-url",
        "UnregisterWebhook",
        {"subscriberUrl": HOOK_URL},
        hooks=[webhook(55, HOOK_URL, TRIGGERS), webhook(56, "https://other.example", TRIGGERS)],
        calls=[("GET", "/v2/webhooks"), ("DELETE", "/v2/webhooks/55")],
    ),
    Case(
        "oauth-refresh-on-401",
        "GetBooking",
        {"bookingUid": "bk_1"},
        oauth=True,
        calls=[
            ("GET", "/v2/bookings/bk_1"),
            ("POST", "/v2/oauth/client_1/refresh"),
            ("GET", "/v2/bookings/bk_1"),
        ],
    ),
    Case("fetch-event-types", "event_types", fetcher=True),
    Case("fetch-user-event-types", "user_event_types", {"username": "host"}, fetcher=True),
    Case(
        "fetch-slots",
        "slots",
        {"eventTypeId": 7, "date": "2050-09-05", "days": 3, "timeZone": "America/New_York"},
        fetcher=True,
    ),
    Case("fetch-slots-default-week", "slots", {"eventTypeId": "7"}, fetcher=True),
    Case("fetch-bookings", "bookings", fetcher=True),
    Case("fetch-bookings-status", "bookings", {"status": "past"}, fetcher=True),
    Case(
        "fetch-webhooks",
        "webhooks",
        hooks=[webhook(55, HOOK_URL, TRIGGERS)],
        fetcher=True,
    ),
]


def _add(store: IntegrationStore, case: Case) -> Integration:
    if case.oauth:
        return store.add(
            "cal_com",
            f"cal {case.id}",
            {"base_url": BASE_URL, "oauth_client_id": "client_1"},
            {"access_token": "at_old", "refresh_token": "rt_old", "oauth_client_secret": "cs_1"},
        )
    return store.add("cal_com", f"cal {case.id}", {"base_url": BASE_URL}, {"api_key": API_KEY})


async def _run(case: Case, store: IntegrationStore) -> tuple[Recorder, Any, FakeCalCom]:
    fake = FakeCalCom(webhooks=case.hooks, expire_token="at_old" if case.oauth else "")
    recorder = Recorder(fake)
    integration = _add(store, case)
    async with make_runner(recorder, store=store) as runner:
        if case.fetcher:
            result: Any = await runner.fetch_options("cal_com", case.key, integration, case.data)
        else:
            result = await runner.run_action("cal_com", case.key, case.data, integration)
    return recorder, result, fake


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_requests_conform_to_the_spec(
    case: Case, store: IntegrationStore, validator: SpecValidator
) -> None:
    recorder, result, fake = await _run(case, store)
    if case.fetcher:
        assert isinstance(result, list) and result, f"{case.key} offered no options"
    else:
        assert result.success and result.port == "success", (result.code, result.message)
    assert recorder.requests, "nothing was sent"
    failures = []
    for request in recorder.requests:
        try:
            validator.check(request)
        except Nonconformance as exc:
            failures.append(str(exc))
    if failures:
        pytest.fail(f"{case.id}: requests do not conform:\n" + "\n".join(failures))
    if case.calls is not None:
        assert recorder.calls() == case.calls
    if case.oauth:
        assert fake.refreshed
        refresh = recorder.requests[1]
        assert refresh.headers["x-cal-secret-key"] == "cs_1"
        assert recorder.requests[2].headers["authorization"] == "Bearer at_new"


def test_every_action_and_fetcher_is_covered() -> None:
    actions = {c.key for c in CASES if not c.fetcher}
    fetchers = {c.key for c in CASES if c.fetcher}
    assert actions == {a.key for a in APP.actions}
    assert fetchers == {f.key for f in APP.fetchers}


async def test_operations_and_versions_used(
    store: IntegrationStore, validator: SpecValidator
) -> None:
    """The app reaches exactly these operations, each with the version the spec names."""
    seen: dict[str, str | None] = {}
    for case in CASES:
        recorder, _, _ = await _run(case, store)
        for request in recorder.requests:
            matched = validator.check(request)
            seen[f"{matched.method.upper()} {matched.template}"] = request.headers.get(
                "cal-api-version"
            )
    assert seen == {
        "POST /v2/bookings": "2024-08-13",
        "GET /v2/bookings": "2024-08-13",
        "GET /v2/bookings/{bookingUid}": "2024-08-13",
        "POST /v2/bookings/{bookingUid}/reschedule": "2024-08-13",
        "POST /v2/bookings/{bookingUid}/cancel": "2024-08-13",
        "POST /v2/bookings/{bookingUid}/mark-absent": "2024-08-13",
        f"POST {GUESTS_PATH}": "2024-08-13",
        "POST /v2/bookings/{bookingUid}/confirm": "2024-08-13",
        "POST /v2/bookings/{bookingUid}/decline": "2024-08-13",
        "GET /v2/slots": "2024-09-04",
        "GET /v2/event-types": "2024-06-14",
        "GET /v2/webhooks": None,
        "POST /v2/webhooks": None,
        "PATCH /v2/webhooks/{webhookId}": None,
        "DELETE /v2/webhooks/{webhookId}": None,
        "POST /v2/oauth/{clientId}/refresh": None,
    }


# The validator itself must be able to fail.


def _request(
    method: str,
    path: str,
    body: Any = None,
    version: str | None = "2024-08-13",
    params: dict[str, str] | None = None,
) -> httpx.Request:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if version:
        headers["cal-api-version"] = version
    return httpx.Request(method, BASE_URL + path, json=body, headers=headers, params=params)


GOOD_BOOKING = {
    "start": "2050-09-05T09:00:00.000Z",
    "attendee": {"name": "Ada", "timeZone": "UTC"},
    "eventTypeId": 7,
}


def test_validator_accepts_a_good_request(validator: SpecValidator) -> None:
    matched = validator.check(_request("POST", "/v2/bookings", GOOD_BOOKING))
    assert matched.operation["operationId"] == "BookingsController_2024_08_13_createBooking"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(
            _request(
                "POST", "/v2/bookings", {k: v for k, v in GOOD_BOOKING.items() if k != "start"}
            ),
            r"createBooking.*'start' is a required property",
            id="body-missing-start",
        ),
        pytest.param(
            _request(
                "POST", "/v2/bookings", {**GOOD_BOOKING, "start": "2050-09-05T11:00:00+02:00"}
            ),
            r"\$\.start: .* does not match",
            id="start-not-utc",
        ),
        pytest.param(
            _request(
                "POST",
                "/v2/bookings",
                {
                    **GOOD_BOOKING,
                    "attendee": {"name": "A", "timeZone": "UTC", "phoneNumber": "0669820000"},
                },
            ),
            r"\$\.attendee\.phoneNumber",
            id="phone-not-e164",
        ),
        pytest.param(
            _request("POST", "/v2/bookings", {**GOOD_BOOKING, "location": {"type": "nowhere"}}),
            r"\$\.location",
            id="unknown-location-type",
        ),
        pytest.param(
            _request("POST", "/v2/bookings", GOOD_BOOKING, version="2024-06-14"),
            r"cal-api-version: '2024-06-14', the spec names '2024-08-13'",
            id="wrong-version",
        ),
        pytest.param(
            _request("POST", "/v2/bookings", GOOD_BOOKING, version=None),
            r"'cal-api-version' is required and missing",
            id="missing-version",
        ),
        pytest.param(
            _request(
                "GET",
                "/v2/slots",
                params={"eventTypeId": "7", "start": "2050-09-05", "end": "2050-09-06"},
            ),
            r"the spec names '2024-09-04'",
            id="slots-with-bookings-version",
        ),
        pytest.param(
            _request("GET", "/v2/webhooks"),
            r"operation declares no version header",
            id="version-on-webhooks",
        ),
        pytest.param(
            _request("GET", "/v2/me"),
            r"operation declares no version header",
            id="version-on-me",
        ),
        pytest.param(
            _request(
                "GET",
                "/v2/slots",
                version="2024-09-04",
                params={
                    "eventTypeId": "7",
                    "start": "2050-09-05T09:00:00+02:00",
                    "end": "2050-09-06",
                },
            ),
            r"query start=.* does not match",
            id="slots-start-not-utc",
        ),
        pytest.param(
            _request("POST", "/v2/oauth/client_1/refresh", {"refreshToken": "rt"}, version=None),
            r"'x-cal-secret-key' is required and missing",
            id="refresh-without-secret-key",
        ),
        pytest.param(
            httpx.Request(
                "POST",
                BASE_URL + "/v2/oauth/client_1/refresh",
                json={"refreshToken": "rt"},
                headers={"x-cal-secret-key": "cs", "Authorization": ""},
            ),
            r"Authorization: '' is not 'Bearer <token>'",
            id="empty-authorization",
        ),
        pytest.param(
            _request("GET", "/v2/bookings", params={"status": "upcoming,soon"}),
            r"'soon' is not one of",
            id="status-enum",
        ),
        pytest.param(
            _request("GET", "/v2/bookings", params={"limit": "5"}),
            r"query 'limit' is not a parameter",
            id="undeclared-query",
        ),
        pytest.param(
            _request("GET", "/v2/webhooks", version=None, params={"take": "500"}),
            r"greater than the maximum of 250",
            id="webhook-take-too-big",
        ),
        pytest.param(
            _request(
                "GET",
                "/v2/slots",
                version="2024-09-04",
                params={"eventTypeId": "7", "end": "2050-09-06"},
            ),
            r"query 'start' is required",
            id="slots-missing-start",
        ),
        pytest.param(
            _request(
                "GET",
                "/v2/slots",
                version="2024-09-04",
                params={
                    "eventTypeId": "7",
                    "start": "2050-09-05",
                    "end": "2050-09-06",
                    "format": "list",
                },
            ),
            r"'list' is not one of \['time', 'range'\]",
            id="slots-format",
        ),
        pytest.param(
            _request(
                "POST",
                "/v2/webhooks",
                {"subscriberUrl": HOOK_URL, "triggers": "BOOKING_CREATED", "active": True},
                version=None,
            ),
            r"\$\.triggers: 'BOOKING_CREATED' is not of type 'array'",
            id="triggers-erratum",
        ),
        pytest.param(
            _request(
                "POST",
                "/v2/webhooks",
                {"subscriberUrl": HOOK_URL, "triggers": ["BOOKING_CONFIRMED"], "active": True},
                version=None,
            ),
            r"'BOOKING_CONFIRMED' is not one of",
            id="no-booking-confirmed-trigger",
        ),
        pytest.param(
            _request(
                "POST",
                "/v2/bookings/bk_1/guests",
                {"guests": [{"email": f"g{i}@x.io"} for i in range(11)]},
            ),
            r"PROVIDERS.md: add guests.*is too long",
            id="eleven-guests",
        ),
        pytest.param(
            _request(
                "POST",
                "/v2/bookings/bk_1/guests",
                {"guests": [{"email": "g@x.io"}]},
                version="2024-09-04",
            ),
            r"the spec names '2024-08-13'",
            id="guests-version",
        ),
        pytest.param(
            _request("POST", "/v2/bookings/bk_1/confirm", {"note": "x"}),
            r"the operation takes none",
            id="body-where-none",
        ),
        pytest.param(
            _request("PUT", "/v2/bookings/bk_1/cancel", {}),
            r"only for \['POST'\]",
            id="wrong-method",
        ),
        pytest.param(
            _request("GET", "/v2/bookings/bk_1/attendees"),
            r"no path of the spec matches",
            id="unknown-path",
        ),
        pytest.param(
            httpx.Request("GET", "http://sandbox.test/v2/webhooks"),
            r"not below the base URL",
            id="outside-base-url",
        ),
        pytest.param(
            httpx.Request("GET", BASE_URL + "/v2/webhooks", headers={"Authorization": "Token x"}),
            r"not 'Bearer <token>'",
            id="auth-scheme",
        ),
    ],
)
def test_validator_catches_nonconforming_requests(
    validator: SpecValidator, request_: httpx.Request, expected: str
) -> None:
    with pytest.raises(Nonconformance, match=f"(?s){expected}"):
        validator.check(request_)
