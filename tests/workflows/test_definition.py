"""Workflow definitions: YAML 1.2 loading, schema and semantic validation, timing and retry."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from calflow.errors import ValidationError
from calflow.workflows import definition
from calflow.workflows.definition import Retry, Timing, load_text, parse, seconds

from ._support import workflow_doc

SCHEMA_FILE = Path(definition.__file__).with_name("workflow.schema.json")

FULL_YAML = """
name: no-show-follow-up
description: Text the attendee, then check the booking.
enabled: false
trigger:
  kinds: [created, rescheduled]
  providers: cal_com
  sources: [webhook, replay]
  event_types: ["101", intro]
  attendee_has_phone: true
  attendee_email: "*@example.com"
  when: "'intro' in booking.title | lower"
steps:
  - id: get
    name: Look the booking up
    action: cal_com.GetBooking
    integration: "{{ event.integration_id }}"
    input:
      bookingUid: "{{ booking.uid }}"
    at: {before_start: 1.5h}
    retry: {max_attempts: 5, backoff: 30s, factor: 3, max_backoff: 2m}
    on:
      not_found: end
      success: cancel
  - id: cancel
    action: cal_com.CancelBooking
    input:
      bookingUid: "{{ steps.get.data.uid }}"
      cancellationReason: no
      cancelSubsequentBookings: off
    at: {after: 10m}
    skip_if_past: false
"""


def problems(raw: Any) -> dict[str, list[str]]:
    """Each path of the ``ValidationError`` that ``parse(raw)`` raises, with its messages."""
    with pytest.raises(ValidationError) as caught:
        parse(raw)
    out: dict[str, list[str]] = {}
    for error in caught.value.errors:
        out.setdefault(error.path, []).append(error.message)
    return out


def test_a_full_yaml_definition_builds_every_field() -> None:
    wf = parse(load_text(FULL_YAML))
    assert (wf.name, wf.enabled) == ("no-show-follow-up", False)
    assert wf.description.startswith("Text the attendee")
    t = wf.trigger
    assert t.kinds == ("created", "rescheduled")
    assert t.providers == ("cal_com",)  # one string becomes a one-item tuple
    assert t.sources == ("webhook", "replay")
    assert t.event_types == ("101", "intro")
    assert (t.attendee_has_phone, t.attendee_email) == (True, "*@example.com")
    assert t.when == "'intro' in booking.title | lower"
    get, cancel = wf.steps
    assert (get.app, get.action, get.name) == ("cal_com", "GetBooking", "Look the booking up")
    assert get.integration == "{{ event.integration_id }}"
    assert get.at == Timing("start", -5400.0, "before_start: 1.5h")
    assert get.retry == Retry(max_attempts=5, backoff=30.0, factor=3.0, max_backoff=120.0)
    assert get.on == {"not_found": "end", "success": "cancel"}
    assert get.skip_if_past is True and cancel.skip_if_past is False
    assert cancel.at == Timing("previous", 600.0, "after: 10m")
    assert cancel.retry == Retry()  # defaults: 3 attempts, 10s doubling, capped at 1h
    assert cancel.integration is None
    assert cancel.input == {
        "bookingUid": "{{ steps.get.data.uid }}",
        "cancellationReason": "no",
        "cancelSubsequentBookings": "off",
    }
    assert wf.step("cancel") is cancel and wf.index("cancel") == 1


def test_yaml_1_2_booleans_keep_on_yes_and_off_as_strings() -> None:
    raw = load_text(FULL_YAML)
    step = raw["steps"][0]
    assert "on" in step and True not in step  # YAML 1.1 would have made `on:` the key True
    cancel_input = raw["steps"][1]["input"]
    assert (cancel_input["cancellationReason"], cancel_input["cancelSubsequentBookings"]) == (
        "no",
        "off",
    )
    assert load_text("a: true\nb: False\nc: TRUE\nd: no\ne: y") == {
        "a": True,
        "b": False,
        "c": True,
        "d": "no",
        "e": "y",
    }
    assert problems(load_text("name: x\nenabled: yes\ntrigger: {kinds: created}\nsteps: []")) == {
        "enabled": ["'yes' is not of type 'boolean'"],
        "steps": ["[] should be non-empty"],
    }


def test_json_is_accepted_and_source_keeps_the_document_as_written() -> None:
    doc = workflow_doc(description="d", trigger={"kinds": "created"})
    wf = parse(load_text(json.dumps(doc)))
    assert wf.source == doc
    assert "enabled" not in wf.source and wf.enabled is True  # default, not added to source


def test_source_is_json_safe_even_when_yaml_made_dates() -> None:
    raw = load_text(
        "name: d\ntrigger: {kinds: created}\nsteps:\n"
        "  - {id: get, action: cal_com.CancelBooking,\n"
        "     input: {bookingUid: x, cancellationReason: 2026-01-31}}\n"
    )
    assert raw["steps"][0]["input"]["cancellationReason"] == date(2026, 1, 31)
    wf = parse(raw)
    assert wf.source["steps"][0]["input"]["cancellationReason"] == "2026-01-31"
    json.dumps(wf.source)  # storable as JSON


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("name: [x\n", "line 2, column 1"),
        ("name: x\n  bad: indent\n", "line 2"),
        ("a: 1\n---\nb: 2\n", "line 2"),
    ],
)
def test_yaml_syntax_errors_name_the_file_and_line(text: str, where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(text, "flows/x.yaml")
    assert caught.value.message.startswith("flows/x.yaml is not valid YAML or JSON")
    assert where in caught.value.message


@pytest.mark.parametrize("raw", [None, [], "name: x", 3])
def test_a_document_that_is_not_an_object_is_refused(raw: Any) -> None:
    with pytest.raises(ValidationError, match="is an object with name, trigger and steps"):
        parse(raw)


def test_schema_problems_are_listed_per_field() -> None:
    raw = workflow_doc(
        name="Bad Name",
        colour="red",
        trigger={"kinds": [], "attendee_has_phone": "yes"},
        steps=[
            {"id": "Get", "action": "GetBooking"},
            {
                "id": "ok",
                "action": "cal_com.GetBooking",
                "at": {"before_start": "soon"},
                "retry": {"max_attempts": 0, "factor": 11},
                "on": {"success": "Not-An-Id"},
            },
        ],
    )
    found = problems(raw)
    assert set(found) == {
        "colour",
        "name",
        "trigger.kinds",
        "trigger.attendee_has_phone",
        "steps.0.id",
        "steps.0.action",
        "steps.1.at.before_start",
        "steps.1.retry.max_attempts",
        "steps.1.retry.factor",
        "steps.1.on.success",
    }
    assert found["colour"] == [
        "unknown key 'colour' (keys: name, description, enabled, trigger, steps)"
    ]
    assert found["trigger.kinds"] == ["[] should be non-empty"]  # the list variant's problem
    assert found["steps.1.at.before_start"] == [
        "'soon' is not a duration: a duration looks like 24h, 90m, 1d12h"
    ]
    assert "does not match" in found["name"][0]


def test_schema_and_semantic_problems_are_listed_together() -> None:
    # An unknown app is a semantic problem: listed beside the schema's unknown key.
    raw = workflow_doc(steps=[{"id": "a", "action": "nope.Nope", "extra": 1}])
    assert list(problems(raw)) == ["steps.0.extra", "steps.0.action"]
    # a step whose action breaks the schema gets no action checks (nothing to look up)
    raw = workflow_doc(steps=[{"id": "a", "action": "GetBooking", "extra": 1}])
    assert set(problems(raw)) == {"steps.0.action", "steps.0.extra"}


def test_missing_required_fields_are_named() -> None:
    found = problems({"name": "x", "trigger": {}, "steps": [{"id": "a"}]})
    assert found == {
        "trigger": ["'kinds' is a required property"],
        "steps.0": ["'action' is a required property"],
    }


def test_semantic_problems_are_all_listed_with_paths_and_rules() -> None:
    raw = load_text(
        """
name: xy
trigger: {kinds: [created, nope], sources: [webhook, web], when: "a =="}
steps:
  - {id: a, action: nope.Nope, on: {x: b}}
  - {id: a, action: cal_com.Missing}
  - id: c
    action: cal_com.CancelBooking
    input: {bookingUid: "{{ x", cancellationReason: ["ok", "{% if %}"], why: x}
    on: {success: a, oops: end, not_found: zz}
"""
    )
    with pytest.raises(ValidationError) as caught:
        parse(raw)
    exc = caught.value
    assert exc.message == "workflow 'xy' is invalid"
    got = {(e.path, e.rule) for e in exc.errors}
    assert got == {
        ("trigger.kinds.1", "kind"),
        ("trigger.sources.1", "source"),
        ("trigger.when", "template"),
        ("steps.0.id", "id"),
        ("steps.1.id", "id"),
        ("steps.0.action", "action"),
        ("steps.0.on.x", "route"),
        ("steps.1.action", "action"),
        ("steps.2.input.bookingUid", "template"),
        ("steps.2.input.cancellationReason.1", "template"),
        ("steps.2.input.why", "additionalProperties"),
        ("steps.2.on.success", "route"),
        ("steps.2.on.oops", "port"),
        ("steps.2.on.not_found", "route"),
    }
    text = str(exc)
    assert "unknown kind 'nope' (kinds: created, rescheduled," in text
    assert "unknown source 'web'; did you mean 'webhook'?" in text
    assert "unknown app 'nope'" in text
    assert "cal_com.CancelBooking has no port 'oops' (ports: error, not_found, success)" in text
    assert "cal_com.CancelBooking: unknown field 'why': not declared (additionalProperties" in text
    assert "known: bookingUid, " in text
    assert "routes back to 'a': steps may only route forward" in text
    assert "no step 'zz'" in text and "no step 'b'" in text
    assert exc.to_dict()["code"] == "VALIDATION_ERROR"


def test_routes_may_only_go_forward_or_end() -> None:
    uid = {"bookingUid": "{{ booking.uid }}"}
    two = [
        {"id": "first", "action": "cal_com.GetBooking", "input": uid, "on": {"success": "second"}},
        {"id": "second", "action": "cal_com.GetBooking", "input": uid, "on": {"success": "end"}},
    ]
    assert [s.on for s in parse(workflow_doc(steps=two)).steps] == [
        {"success": "second"},
        {"success": "end"},
    ]
    loop = [dict(two[0]), {**two[1], "on": {"not_found": "first"}}]
    assert problems(workflow_doc(steps=loop)) == {
        "steps.1.on.not_found": ["routes back to 'first': steps may only route forward"]
    }
    to_self = [{**two[0], "on": {"error": "first"}}]
    assert list(problems(workflow_doc(steps=to_self))) == ["steps.0.on.error"]


def test_skipped_is_a_route_of_timed_steps_that_can_be_skipped() -> None:
    uid = {"bookingUid": "{{ booking.uid }}"}
    sms = {
        "id": "sms",
        "action": "twilio.SendSms",
        "integration": "sms",
        "input": {"to": "{{ attendee.phone }}", "body": "hi"},
        "at": {"before_start": "24h"},
        "on": {"sent": "end", "error": "email", "skipped": "log"},
    }
    email = {"id": "email", "action": "cal_com.GetBooking", "input": uid}
    log = {"id": "log", "action": "cal_com.GetBooking", "input": uid}
    (step, _, _) = parse(workflow_doc(steps=[sms, email, log])).steps
    assert step.on["skipped"] == "log"
    assert step.after_skip("sent") == "log"  # its own route first
    unrouted = parse(workflow_doc(steps=[{**sms, "on": {"sent": "end", "error": "email"}},
                                         email])).steps[0]  # fmt: skip
    assert unrouted.after_skip("sent") == "end"  # else where success goes
    assert parse(workflow_doc(steps=[{**sms, "on": {}}])).steps[0].after_skip("sent") is None

    at_once = {**sms, "at": "immediately"}
    del at_once["at"]
    never = {**sms, "skip_if_past": False, "at": {"after": "1h"}}
    moved_again_only = {**sms, "skip_if_past": False}  # booking-relative: may still be skipped
    back = {**sms, "id": "late", "on": {"skipped": "sms"}}
    assert problems(workflow_doc(steps=[at_once, email, log])) == {
        "steps.0.on.skipped": ["the step runs at once (no `at`), so it is never skipped"]
    }
    assert problems(workflow_doc(steps=[never, email, log])) == {
        "steps.0.on.skipped": [
            "skip_if_past is false and the step is timed after the previous one, so it is "
            "never skipped"
        ]
    }
    assert parse(workflow_doc(steps=[moved_again_only, email, log])).steps[0].skip_if_past is False
    assert problems(workflow_doc(steps=[{**sms, "on": {"skipped": "end"}}, back])) == {
        "steps.1.on.skipped": ["routes back to 'sms': steps may only route forward"]
    }


def test_templates_may_read_only_earlier_steps() -> None:
    steps = [
        {"id": "get", "action": "cal_com.GetBooking", "input": {"bookingUid": "{{ booking.uid }}"}},
        {
            "id": "cancel",
            "action": "cal_com.CancelBooking",
            "integration": "{{ steps.later.data.integration }}",
            "input": {
                "bookingUid": "{{ steps.get.data.uid }}",
                "cancellationReason": "{{ steps.cancel.port }} {{ steps.later.port }}",
            },
        },
        {"id": "later", "action": "cal_com.GetBooking", "input": {"bookingUid": "x"}},
    ]
    found = problems(workflow_doc(steps=steps))
    assert set(found) == {"steps.1.integration", "steps.1.input.cancellationReason"}
    assert sorted(found["steps.1.input.cancellationReason"]) == [
        "reads steps.cancel, which is not an earlier step",
        "reads steps.later, which is not an earlier step",
    ]
    # steps.get is earlier: fine; a template that reads no step is fine wherever it is.
    steps[1]["integration"] = "main"
    steps[1]["input"]["cancellationReason"] = "{{ steps.get.port }}"
    assert parse(workflow_doc(steps=steps)).steps[1].input["bookingUid"] == (
        "{{ steps.get.data.uid }}"
    )


def test_step_input_keys_are_checked_against_the_action() -> None:
    raw = workflow_doc()
    raw["steps"][0]["input"] = {"uid": "{{ booking.uid }}"}
    assert problems(raw) == {
        "steps.0.input.uid": [
            "cal_com.GetBooking: unknown field 'uid': not declared "
            "(additionalProperties: false; known: bookingUid)"
        ],
        "steps.0.input.bookingUid": ["cal_com.GetBooking needs 'bookingUid'"],
    }
    raw["steps"][0]["input"] = {"bookingUid": 42}  # values are checked when the step runs
    assert parse(raw).steps[0].input == {"bookingUid": 42}


def test_a_template_with_an_unknown_filter_is_refused_in_trigger_when() -> None:
    raw = workflow_doc(trigger={"kinds": "created", "when": "booking.title | nofilter"})
    assert problems(raw) == {"trigger.when": ["expression syntax: No filter named 'nofilter'."]}


def test_a_template_with_an_unknown_filter_is_refused_in_step_input() -> None:
    raw = workflow_doc()
    raw["steps"][0]["input"]["bookingUid"] = "{{ booking.uid | nofilter }}"
    assert list(problems(raw)) == ["steps.0.input.bookingUid"]


def test_a_name_with_a_trailing_newline_is_refused() -> None:
    raw = load_text("name: |\n  remind\ntrigger: {kinds: created}\nsteps: [{id: get, "
                    "action: cal_com.GetBooking, input: {bookingUid: x}}]\n")  # fmt: skip
    assert raw["name"] == "remind\n"
    assert list(problems(raw)) == ["name"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30.0), ("10m", 600.0), ("24h", 86400.0), ("2d", 172800.0), ("1w", 604800.0),
     (" 1.5h ", 5400.0), ("0s", 0.0), ("1d12h", 129600.0), ("1h 30m", 5400.0)],
)  # fmt: skip
def test_durations(text: str, expected: float) -> None:
    assert seconds(text) == expected


@pytest.mark.parametrize("text", ["", "10", "m", "10 minutes", "-5m", "1y", "24 hours", "1h30"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        seconds(text)


@pytest.mark.parametrize(
    ("raw", "anchor", "offset", "relative"),
    [
        (None, "event", 0.0, False),
        ("immediately", "event", 0.0, False),
        ({"before_start": "24h"}, "start", -86400.0, True),
        ({"after_start": "5m"}, "start", 300.0, True),
        ({"before_end": "10m"}, "end", -600.0, True),
        ({"after_end": "1d"}, "end", 86400.0, True),
        ({"after": "30s"}, "previous", 30.0, False),
    ],
)
def test_timing(raw: Any, anchor: str, offset: float, relative: bool) -> None:
    timing = Timing.parse(raw)
    assert (timing.anchor, timing.offset, timing.booking_relative) == (anchor, offset, relative)


def test_timing_outside_the_schema_is_refused() -> None:
    step = {"id": "get", "action": "cal_com.GetBooking", "input": {"bookingUid": "x"}}
    for at in ["later", {"before_start": "1h", "after_end": "1h"}, {}]:
        assert list(problems(workflow_doc(steps=[{**step, "at": at}]))) == ["steps.0.at"], at
    assert problems(workflow_doc(steps=[{**step, "at": "later"}]))["steps.0.at"] == [
        "must be 'immediately' or an object (before_start, after_start, before_end, after_end, "
        "after)"
    ]
    assert problems(workflow_doc(steps=[{**step, "at": {"after_lunch": "1h"}}])) == {
        "steps.0.at.after_lunch": [
            "unknown key 'after_lunch'; did you mean 'after_end'? "
            "(keys: before_start, after_start, before_end, after_end, after)"
        ]
    }


def test_retry_delays_grow_by_the_factor_and_are_capped() -> None:
    retry = Retry(max_attempts=6, backoff=10.0, factor=3.0, max_backoff=200.0)
    assert [retry.delay(n) for n in range(1, 6)] == [10.0, 30.0, 90.0, 200.0, 200.0]
    assert [Retry().delay(n) for n in (1, 2, 3, 10, 20)] == [10.0, 20.0, 40.0, 3600.0, 3600.0]


def test_the_published_schema_is_the_file_and_is_a_valid_json_schema() -> None:
    from jsonschema import Draft202012Validator

    published = definition.schema()
    assert published == json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(published)
    assert set(published["required"]) == {"name", "trigger", "steps"}
