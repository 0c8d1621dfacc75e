"""The checks made when a workflow is applied: templates against the event model, time
zones given to ``local()``, durations, event kinds and providers, the first wrong key
of a step, and the integrations steps name (``WorkflowStore.check``)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from calflow.db.models import IntegrationRow, WorkflowRow
from calflow.errors import ValidationError
from calflow.integrations import IntegrationStore
from calflow.vault import Vault
from calflow.workflows import builtin
from calflow.workflows.definition import parse
from calflow.workflows.integration_refs import MISSING
from calflow.workflows.store import WorkflowStore

from ._support import workflow_doc


def problems(raw: Any) -> dict[str, list[str]]:
    """Each path of the ``ValidationError`` that applying ``raw`` raises, with its messages."""
    with pytest.raises(ValidationError) as caught:
        parse(raw, applying=True)
    out: dict[str, list[str]] = {}
    for error in caught.value.errors:
        out.setdefault(error.path, []).append(error.message)
    return out


def sms(to: str = "{{ attendee.phone }}", body: str = "hi", **over: Any) -> dict[str, Any]:
    return {"id": "sms", "action": "twilio.SendSms", "integration": "sms",
            "input": {"to": to, "body": body}, **over}  # fmt: skip


def email(text: str, step_id: str = "email") -> dict[str, Any]:
    return {"id": step_id, "action": "email.SendEmail", "integration": "email",
            "input": {"to": "{{ attendee.email }}", "subject": "s", "text": text}}  # fmt: skip


def test_a_field_the_event_model_lacks_is_named_with_the_nearest_one() -> None:
    found = problems(workflow_doc(steps=[sms(to="{{ attendee.phone_number }}")]))
    assert found == {
        "steps.0.input.to": ["no field 'phone_number' on attendee; did you mean 'phone'?"]
    }


WRONG_NAMES = [
    ("{{ booking.event_type.slugg }}",
     "no field 'slugg' on booking.event_type; did you mean 'slug'?"),
    ("{{ booking['titel'] }}", "no field 'titel' on booking; did you mean 'title'?"),
    ("{{ attendees[0].emial }}", "no field 'emial' on attendees[0]; did you mean 'email'?"),
    ("{% for a in attendees %}{{ a.nmae }}{% endfor %}",
     "no field 'nmae' on a; did you mean 'name'?"),
    ("{{ attendees.email }}",
     "no field 'email' on attendees: it is a list (e.g. attendees[0])"),
    ("{{ attendee.phone.number }}", "no field 'number' on attendee.phone (text)"),
    ("{{ orgnizer.email }}", "no variable 'orgnizer'; did you mean 'organizer'? (variables: "
                             "attendee, attendees, booking, event, now, organizer, steps)"),
    ("{{ event.knd }}", "no field 'knd' on event; did you mean 'kind'?"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), WRONG_NAMES)
def test_every_kind_of_wrong_name_is_refused(text: str, message: str) -> None:
    assert problems(workflow_doc(steps=[email(text)])) == {"steps.0.input.text": [message]}


@pytest.mark.parametrize(
    "text",
    [
        "{{ booking.start | local(attendee.time_zone or 'UTC', '%H') }} {{ booking | duration }}",
        "{{ booking.metadata.anything.at_all }} {{ booking.get('title') }} {{ now.year }}",
        "{{ attendee.name.split()[0] }} {{ attendees | length }} {{ organizer['email'] }}",
        "{% set who = attendee.first_name or 'there' %}{{ who.upper() }} {{ loop_free }}"
        "{% set loop_free = 1 %}",
        "{% for a in attendees %}{{ loop.index }}: {{ a.email }}{% endfor %}",
        "{{ event.original_type }} {{ booking.event_type.id }} {{ range(3) | list }}",
    ],
)
def test_what_the_context_has_or_the_template_sets_is_accepted(text: str) -> None:
    parse(workflow_doc(steps=[email(text)]), applying=True)


def test_steps_read_any_path_under_an_earlier_step_and_no_other_step() -> None:
    first = {"id": "get", "action": "cal_com.GetBooking", "integration": "main",
             "input": {"bookingUid": "{{ booking.uid }}"}}  # fmt: skip
    text = "{{ steps.get.data.attendees[0].whatever }} {{ steps['get'].port }} {{ steps.gte.port }}"
    steps = [first, email(text), email("{{ steps.later.port }}", "later")]
    assert problems(workflow_doc(steps=steps)) == {
        "steps.1.input.text": ["no step 'gte' before this one; did you mean 'get'?"],
        "steps.2.input.text": ["reads steps.later, which is not an earlier step"],
    }


def test_a_trigger_expression_is_checked_too() -> None:
    raw = workflow_doc(trigger={"kinds": "created", "when": "'intro' in booking.titel | lower"})
    assert problems(raw) == {"trigger.when": ["no field 'titel' on booking; did you mean 'title'?"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ booking.start | local('Europe/Pariss') }}",
         "unknown time zone 'Europe/Pariss'; did you mean 'Europe/Paris'?"),
        ("{{ booking.start | local(attendee.time_zone or 'utc') }}",
         "unknown time zone 'utc'; did you mean 'UTC'?"),
        ("{{ booking.start | local(tz='New York') }}",
         "unknown time zone 'New York'; did you mean 'America/New_York'?"),
        ("{{ booking.start | local(attendee.time_zone if attendee.time_zone else 'Mars/Base') }}",
         "unknown time zone 'Mars/Base' (an IANA name: Europe/Paris)"),
    ],
)  # fmt: skip
def test_time_zone_literals_given_to_local_must_exist(text: str, message: str) -> None:
    assert problems(workflow_doc(steps=[email(text)])) == {"steps.0.input.text": [message]}


def test_known_time_zones_and_zones_from_the_event_pass() -> None:
    text = ("{{ booking.start | local('UTC') }} {{ booking.start | local('America/New_York') }}"
            " {{ booking.start | local(attendee.time_zone, '%H:%M') }}")  # fmt: skip
    parse(workflow_doc(steps=[email(text)]), applying=True)


def test_a_duration_that_is_not_one_says_what_one_looks_like() -> None:
    step = sms(at={"before_start": "24 hours"}, retry={"backoff": "ten seconds"})
    hint = "is not a duration: a duration looks like 24h, 90m, 1d12h"
    assert problems(workflow_doc(steps=[step])) == {
        "steps.0.at.before_start": [f"'24 hours' {hint}"],
        "steps.0.retry.backoff": [f"'ten seconds' {hint}"],
    }
    assert parse(workflow_doc(steps=[sms(at={"before_start": "1d12h"})])).steps[0].at.offset == (
        -129600.0
    )


def test_provider_names_of_kinds_and_misspelt_providers_get_the_right_name() -> None:
    trigger = {"kinds": ["BOOKING_CREATED", "event.canceled", "BOOKING_REJECTED", "creatd"],
               "providers": "calcom"}  # fmt: skip
    assert problems(workflow_doc(trigger=trigger)) == {
        "trigger.kinds.0": ["unknown kind 'BOOKING_CREATED'; did you mean 'created'?"],
        "trigger.kinds.1": ["unknown kind 'event.canceled'; did you mean 'cancelled'?"],
        "trigger.kinds.2": ["unknown kind 'BOOKING_REJECTED'; did you mean 'declined'?"],
        "trigger.kinds.3": ["unknown kind 'creatd'; did you mean 'created'?"],
        "trigger.providers": ["unknown provider 'calcom'; did you mean 'cal_com'?"],
    }


def test_a_schema_error_names_the_first_wrong_key_of_the_step() -> None:
    step = {"id": "sms", "action": "twilio.SendSms", "integation": "sms", "inputs": {}}
    keys = "(keys: id, name, action, integration, input, at, skip_if_past, retry, on)"
    assert problems(workflow_doc(steps=[step])) == {
        "steps.0.integation": [f"unknown key 'integation'; did you mean 'integration'? {keys}"],
        "steps.0.inputs": [f"unknown key 'inputs'; did you mean 'input'? {keys}"],
        "steps.0.input.to": ["twilio.SendSms needs 'to'"],  # the step's other problems too
        "steps.0.input.body": ["twilio.SendSms needs 'body'"],
    }


def test_every_problem_is_listed_at_once() -> None:
    raw = workflow_doc(
        trigger={"kinds": ["BOOKING_CREATED"]},
        steps=[sms(to="{{ attendee.phone_number }}",
                   body="{{ booking.start | local('Europe/Pariss') }}"), email("{{ bookng.uid }}")],
    )  # fmt: skip
    assert set(problems(raw)) == {"trigger.kinds.0", "steps.0.input.to", "steps.0.input.body",
                                  "steps.1.input.text"}  # fmt: skip


def test_the_built_in_workflows_pass_every_check() -> None:
    for name in builtin.names():
        parse(builtin.load(name), applying=True)


def test_a_stored_definition_that_a_new_check_refuses_still_loads_and_runs(engine: Engine) -> None:
    """Stored before the checks existed: loading skips them, so the workflow keeps running."""
    old = workflow_doc("old", steps=[email("{{ attendee.nickname }}")])
    with engine.begin() as conn:
        conn.execute(insert(WorkflowRow).values(id="wf_old", workspace_id="default", name="old",
                                                definition=old, enabled=1))  # fmt: skip
    store = WorkflowStore(engine)
    assert [w.name for w in store.list()] == ["old"]
    assert store.get("old").definition.steps[0].input["text"] == "{{ attendee.nickname }}"
    with pytest.raises(ValidationError, match="invalid"):  # applying it again is checked
        store.apply(old)


# ----------------------------------------------------------------- integrations


def _store(engine: Engine) -> WorkflowStore:
    """The workflows of a workspace with a twilio integration ``sms`` and a cal_com ``main``."""
    integrations = IntegrationStore(engine, Vault([Vault.generate_key()]))
    integrations.add("twilio", "sms", {"from_number": "+15005550006"}, {"auth_token": "t"})
    integrations.add("cal_com", "main", {}, {"api_key": "k"})
    return WorkflowStore(engine)


def _id(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        found = conn.execute(select(IntegrationRow.id).where(IntegrationRow.name == name))
        return str(found.scalar_one())


def test_every_integration_a_step_names_must_exist_and_be_of_its_app(engine: Engine) -> None:
    store = _store(engine)
    raw = workflow_doc(steps=[
        sms(integration="smss"),
        {**sms(), "id": "again", "integration": "main"},
        {**email("x"), "integration": "mail"},
    ])  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        store.check(raw)
    got = {(e.path, e.rule): e.message for e in caught.value.errors}
    assert got == {
        ("steps.0.integration", MISSING): "no integration 'smss' in this workspace; did you mean "
        "'sms'? (twilio integrations: sms)",
        ("steps.1.integration", "integration_app"): "integration 'main' belongs to app "
        "'cal_com'; twilio.SendSms needs one of app 'twilio' (twilio integrations: sms)",
        ("steps.2.integration", MISSING): "no integration 'mail' in this workspace (it has no "
        "email integration yet)",
    }
    with pytest.raises(ValidationError) as allowed:  # another app's integration: still wrong
        store.check(raw, allow_missing_integrations=True)
    assert [e.path for e in allowed.value.errors] == ["steps.1.integration"]
    assert store.list() == []


def test_missing_integrations_may_be_allowed_as_warnings(engine: Engine) -> None:
    store = _store(engine)
    raw = workflow_doc(steps=[sms(), email("hi")])
    checked = store.check(raw, allow_missing_integrations=True)
    assert [(w.path, w.rule) for w in checked.warnings] == [("steps.1.integration", MISSING)]
    assert checked.definition.steps[1].integration == "email"


def test_integrations_by_id_and_templated_ones_pass(engine: Engine) -> None:
    store = _store(engine)
    templated = {**sms(), "id": "b", "integration": "{{ event.integration_id }}"}
    steps = [sms(integration=_id(engine, "sms")), templated]
    assert store.check(workflow_doc(steps=steps)).warnings == ()
