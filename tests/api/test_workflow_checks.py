"""Workflow mistakes are refused at apply time, each by its field (422 ``details``), and
nothing is saved; ``allow_missing_integrations`` saves before the integrations exist."""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from calflow.workflows import builtin

from .conftest import Api

TWILIO = {"app": "twilio", "name": "sms",
          "config": {"from_number": "+15005550006", "account_sid": "AC" + "0" * 32},
          "secrets": {"auth_token": "t"}}  # fmt: skip
EMAIL = {"app": "email", "name": "email", "config": {"host": "127.0.0.1"}}
ALLOW = {"allow_missing_integrations": "true"}


def reminder(**sms_over: Any) -> dict[str, Any]:
    text = {"to": "{{ attendee.phone }}", "body": "See you {{ booking.start | local('UTC') }}"}
    sms = {"id": "sms", "action": "twilio.SendSms", "integration": "sms",
           "at": {"before_start": "24h"}, "input": text}  # fmt: skip
    return {"name": "reminder", "trigger": {"kinds": ["created"]}, "steps": [{**sms, **sms_over}]}


def details(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    return {d["field"]: d["message"] for d in error["details"]}


MISTAKES = {
    "name": "reminder",
    "trigger": {"kinds": ["BOOKING_CREATED"], "providers": "calcom"},
    "steps": [
        {"id": "sms", "action": "twilio.SendSms", "integration": "sms",
         "at": {"before_start": "24 hours"},
         "input": {"to": "{{ attendee.phone_number }}",
                   "body": "See you {{ booking.start | local('Europe/Pariss') }}"}},
        {"id": "email", "action": "email.SendEmail", "integration": "smss",
         "input": {"to": "{{ steps.sms.data.to }}", "subject": "{{ steps.text.port }}",
                   "text": "x"}, "retyr": {}},
    ],
}  # fmt: skip
NO_SMS = "no integration 'sms' in this workspace (it has no twilio integration yet)"
EXPECTED = {
    "trigger.kinds.0": "unknown kind 'BOOKING_CREATED'; did you mean 'created'?",
    "trigger.providers": "unknown provider 'calcom'; did you mean 'cal_com'?",
    "steps.0.at.before_start": "'24 hours' is not a duration: a duration looks like 24h, 90m, "
                               "1d12h",
    "steps.0.input.to": "no field 'phone_number' on attendee; did you mean 'phone'?",
    "steps.0.input.body": "unknown time zone 'Europe/Pariss'; did you mean 'Europe/Paris'?",
    "steps.0.integration": NO_SMS,
    "steps.1.retyr": "unknown key 'retyr'; did you mean 'retry'? (keys: id, name, action, "
                     "integration, input, at, skip_if_past, retry, on)",
    "steps.1.input.subject": "no step 'text' before this one",
    "steps.1.integration": "no integration 'smss' in this workspace (it has no email "
                           "integration yet)",
}  # fmt: skip


async def test_every_mistake_is_a_422_naming_each_field_and_nothing_is_saved(api: Api) -> None:
    a = api.a.client
    assert (await api.b.client.post("/api/v1/integrations", json=TWILIO)).status_code == 201
    # another workspace's "sms" does not count for this one
    assert details(await a.post("/api/v1/workflows", json=MISTAKES)) == EXPECTED
    as_yaml = await a.post("/api/v1/workflows", content=yaml.safe_dump(MISTAKES),
                           headers={"content-type": "application/yaml"})  # fmt: skip
    assert details(as_yaml) == EXPECTED
    checked = (await a.post("/api/v1/workflows/validate", json=MISTAKES)).json()
    assert checked["valid"] is False
    assert {e["field"]: e["message"] for e in checked["errors"]} == EXPECTED
    assert (await a.get("/api/v1/workflows")).json()["items"] == []


async def test_missing_integrations_are_saved_as_warnings_when_allowed(any_api: Api) -> None:
    a = any_api.a.client
    warning = {"field": "steps.0.integration", "message": NO_SMS}
    refused = await a.post("/api/v1/workflows", json=reminder())
    assert details(refused) == {"steps.0.integration": warning["message"]}
    checked = (await a.post("/api/v1/workflows/validate", json=reminder(), params=ALLOW)).json()
    assert checked == {"valid": True, "name": "reminder", "errors": [], "warnings": [warning]}
    made = await a.post("/api/v1/workflows", json=reminder(), params=ALLOW)
    assert made.status_code == 201, made.text
    assert (made.json()["result"], made.json()["warnings"]) == ("created", [warning])

    changed = reminder(at={"before_start": "1d12h"})
    kept = await a.put("/api/v1/workflows/reminder", json=changed)  # not allowed this time
    assert details(kept) == {"steps.0.integration": warning["message"]}
    assert (await a.get("/api/v1/workflows/reminder")).json()["version"] == 1

    assert (await a.post("/api/v1/integrations", json=TWILIO)).status_code == 201
    saved = await a.put("/api/v1/workflows/reminder", json=changed)
    assert saved.status_code == 200, saved.text
    assert (saved.json()["version"], saved.json()["warnings"]) == (2, [])


async def test_an_integration_of_another_app_is_refused_even_when_missing_ones_are_allowed(
    api: Api,
) -> None:
    a = api.a.client
    assert (await a.post("/api/v1/integrations", json=EMAIL)).status_code == 201
    wrong = await a.post("/api/v1/workflows", json=reminder(integration="email"), params=ALLOW)
    assert details(wrong) == {
        "steps.0.integration": "integration 'email' belongs to app 'email'; twilio.SendSms "
        "needs one of app 'twilio'"
    }
    put = await a.put("/api/v1/workflows/reminder", json=reminder(integration="email"))
    assert put.status_code == 404  # nothing was created


async def test_a_put_with_mistakes_changes_nothing(api: Api) -> None:
    a = api.a.client
    assert (await a.post("/api/v1/integrations", json=TWILIO)).status_code == 201
    assert (await a.post("/api/v1/workflows", json=reminder())).status_code == 201
    broken = reminder(input={"to": "{{ attendee.phone }}", "body": "{{ booking.strat }}"})
    assert details(await a.put("/api/v1/workflows/reminder", json=broken)) == {
        "steps.0.input.body": "no field 'strat' on booking; did you mean 'start'?"
    }
    shown = (await a.get("/api/v1/workflows/reminder")).json()
    assert shown["version"] == 1 and shown["definition"] == reminder()


async def test_the_built_in_workflows_are_accepted_once_their_integrations_exist(
    api: Api,
) -> None:
    a = api.a.client
    for body in (TWILIO, EMAIL):
        assert (await a.post("/api/v1/integrations", json=body)).status_code == 201
    for name in builtin.names():
        made = await a.post("/api/v1/workflows", json=builtin.load(name))
        assert made.status_code == 201, made.text
        assert made.json()["warnings"] == []
