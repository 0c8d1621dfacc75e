"""The REST API refuses what an action or fetcher does not declare, by the field's path,
before anything reaches the provider (a recording stand-in must see no request)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cli.recorder import Recorder, recording_server

from .conftest import Api

pytestmark = pytest.mark.slow

START = "2030-01-07T09:00:00Z"  # never sent: every call here is refused first
ATTENDEE = {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Paris"}
BOOK = {"eventTypeId": 101, "start": START, "attendee": ATTENDEE}

REFUSED_INPUT = [
    pytest.param("BookMeeting", {**BOOK, "nots": "x"}, "input.nots", id="misspelt-top-level"),
    pytest.param(
        "BookMeeting",
        {**BOOK, "attendee": {**ATTENDEE, "emial": "a@example.com"}},
        "input.attendee.emial",
        id="unknown-nested",
    ),
    pytest.param(
        "BookMeeting", {**BOOK, "username": "ada"}, "input.username", id="another-variant"
    ),
    pytest.param(
        "CancelBooking",
        {"bookingUid": "uid-1", "cancelationReason": "typo"},
        "input.cancelationReason",
        id="misspelt-optional-no-variants",
    ),
    pytest.param(
        "BookMeeting",
        {**BOOK, "location": {"type": "address", "adress": "1 Main St"}},
        "input.location.adress",
        id="unknown-in-location",
    ),
]


@pytest.fixture
def provider() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


def _connect(api: Api, provider: Recorder) -> None:
    api.a.store.add("cal_com", "cal", {"base_url": provider.url}, {"api_key": "cal_live_x_1234"})


def _details(resp: Any) -> dict[str, str]:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    return {d["field"]: d["message"] for d in error["details"]}


@pytest.mark.parametrize(("action", "data", "field"), REFUSED_INPUT)
async def test_undeclared_input_is_422_naming_the_field_and_nothing_is_sent(
    api: Api, provider: Recorder, action: str, data: dict[str, Any], field: str
) -> None:
    _connect(api, provider)
    resp = await api.a.client.post(
        f"/api/v1/actions/cal_com/{action}/run", json={"integration": "cal", "input": data}
    )
    details = _details(resp)
    assert list(details) == [field]
    assert "additionalProperties: false" in details[field]  # the rule
    assert repr(field.rpartition(".")[2]) in details[field]
    if field == "input.username":
        assert "belongs to variant 'By username and event slug'" in details[field]
    assert field.removeprefix("input.") in resp.json()["error"]["message"]
    assert provider.requests == []


@pytest.mark.parametrize(
    ("context", "field"),
    [
        pytest.param({"eventTypeId": {"x": 1}}, "context.eventTypeId", id="wrong-type"),
        pytest.param({"eventTypeId": 101, "evenTypeId": 1}, "context.evenTypeId", id="unknown"),
        pytest.param({"eventTypeId": "abc"}, "context.eventTypeId", id="not-a-number"),
        pytest.param({"eventTypeId": 101, "days": 99}, "context.days", id="out-of-range"),
    ],
)
async def test_fetcher_context_is_validated_before_the_provider_is_asked(
    api: Api, provider: Recorder, context: dict[str, Any], field: str
) -> None:
    _connect(api, provider)
    resp = await api.a.client.post(
        "/api/v1/fetchers/cal_com/slots", json={"integration": "cal", "context": context}
    )
    assert list(_details(resp)) == [field]
    assert provider.requests == []


async def test_fetcher_context_strings_are_coerced_as_forms_send_them(
    api: Api, provider: Recorder
) -> None:
    _connect(api, provider)
    context = {"eventTypeId": "123", "date": "2030-01-07", "days": "2", "timeZone": ""}
    resp = await api.a.client.post(
        "/api/v1/fetchers/cal_com/slots", json={"integration": "cal", "context": context}
    )
    assert resp.status_code == 200, resp.text
    ((method, path, query),) = provider.requests
    assert (method, path) == ("GET", "/v2/slots")
    assert (query["eventTypeId"], query["start"], query["end"]) == (
        ["123"], ["2030-01-07"], ["2030-01-08"]
    )  # fmt: skip
    described = (await api.a.client.get("/api/v1/apps/cal_com")).json()
    slots = next(f for f in described["fetchers"] if f["key"] == "slots")
    assert slots["context_schema"]["properties"]["eventTypeId"]["type"] == "integer"
    assert slots["context_schema"]["additionalProperties"] is False


MISSING_OK = {"allow_missing_integrations": "true"}


def _workflow(step_input: dict[str, Any], action: str = "cal_com.BookMeeting") -> dict[str, Any]:
    return {
        "name": "strict",
        "trigger": {"kinds": ["created"]},
        "steps": [{"id": "act", "action": action, "integration": "cal", "input": step_input}],
    }


TEMPLATED = {
    "eventTypeId": "{{ booking.event_type.id }}",
    "start": "{{ booking.start }}",
    "attendee": {"name": "{{ attendee.name }}", "email": "{{ attendee.email }}"},
}
REFUSED_STEPS = [
    pytest.param({**TEMPLATED, "nots": "x"}, "steps.0.input.nots", id="misspelt-top-level"),
    pytest.param(
        {**TEMPLATED, "attendee": {**TEMPLATED["attendee"], "emial": "{{ attendee.email }}"}},
        "steps.0.input.attendee.emial",
        id="unknown-nested",
    ),
    pytest.param(
        {**TEMPLATED, "username": "{{ organizer.name }}"},
        "steps.0.input.username",
        id="another-variant",
    ),
]


@pytest.mark.parametrize(("step_input", "field"), REFUSED_STEPS)
async def test_workflow_step_input_keys_the_action_does_not_declare_are_refused(
    api: Api, step_input: dict[str, Any], field: str
) -> None:
    a = api.a.client
    # the integration "cal" is not created: allowed, so only the input keys are refused
    created = await a.post("/api/v1/workflows", json=_workflow(step_input), params=MISSING_OK)
    details = _details(created)
    assert list(details) == [field]
    assert "additionalProperties: false" in details[field]
    checked = await a.post(
        "/api/v1/workflows/validate", json=_workflow(step_input), params=MISSING_OK
    )
    assert checked.status_code == 200 and checked.json()["valid"] is False
    assert [e["field"] for e in checked.json()["errors"]] == [field]
    assert (await a.get("/api/v1/workflows")).json()["items"] == []


async def test_templated_values_of_declared_keys_are_fine(api: Api) -> None:
    checked = await api.a.client.post(
        "/api/v1/workflows/validate", json=_workflow(TEMPLATED), params=MISSING_OK
    )
    assert checked.json() == {
        "valid": True,
        "name": "strict",
        "errors": [],
        "warnings": [
            {
                "field": "steps.0.integration",
                "message": "no integration 'cal' in this workspace "
                "(it has no cal_com integration yet)",
            }
        ],
    }
