"""Tool schemas from action schemas, arguments back, exposure patterns, spoken summaries.

(The package is ``mcp_server``, not ``mcp``: ``tests/`` is on ``sys.path``, and a test
package named ``mcp`` would shadow the SDK.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from calflow.apps.cal_com.actions.book_meeting import BookMeeting
from calflow.apps.cal_com.actions.get_slots import GetSlots
from calflow.errors import ValidationError
from calflow.flowapp import ActionResult
from calflow.flowapp.registry import default_registry
from calflow.mcp.exposure import DEFAULT_EXPOSE, Exposure, parse
from calflow.mcp.results import spoken_time, summarize
from calflow.mcp.schema import VARIANT, to_action_input, tool_input_schema

ALL_ACTIONS = [(app, action) for app in default_registry().apps for action in app.actions]


def fetcher_tool(key: str) -> str:
    return f"cal_com_main__fetch_{key}"


def _walk(node: Any) -> list[str]:
    """Every key anywhere in a JSON value."""
    if isinstance(node, dict):
        return [k for k, v in node.items() for k in [k, *_walk(v)]]
    if isinstance(node, list):
        return [k for v in node for k in _walk(v)]
    return []


@pytest.mark.parametrize(
    ("app", "action"), ALL_ACTIONS, ids=[f"{a.key}.{x.key}" for a, x in ALL_ACTIONS]
)
def test_every_tool_schema_is_a_plain_object_callers_accept(app: Any, action: Any) -> None:
    schema = tool_input_schema(action.input_schema().schema, fetcher_tool).schema
    assert schema["type"] == "object"
    assert isinstance(schema["properties"], dict)
    assert set(schema.get("required", [])) <= set(schema["properties"])
    assert schema["additionalProperties"] is False  # the action's schema is closed: so is this
    keys = set(_walk(schema)) - set(_property_names(schema))
    for banned in ("oneOf", "anyOf", "allOf", "$ref", "$defs", "$schema", "if", "then"):
        assert banned not in keys, (action.key, banned)
    assert not [k for k in keys if k.startswith("x-")]
    json.dumps(schema)  # JSON all the way down


def _property_names(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = list(node.get("properties", {})) if isinstance(node.get("properties"), dict) else []
        return own + [n for v in node.values() for n in _property_names(v)]
    if isinstance(node, list):
        return [n for v in node for n in _property_names(v)]
    return []


def test_book_meeting_variants_are_one_required_enum_and_fetchers_are_described() -> None:
    tool = tool_input_schema(BookMeeting.input_schema().schema, fetcher_tool)
    schema = tool.schema
    assert schema["required"][0] == VARIANT
    assert schema["properties"][VARIANT]["enum"] == [
        "by_event_type",
        "by_username_and_event_slug",
        "by_team_and_event_slug",
    ]
    props = schema["properties"]
    assert "call tool cal_com_main__fetch_event_types" in props["eventTypeId"]["description"]
    assert "Only with variant 'by_event_type'" in props["eventTypeId"]["description"]
    # start's slots fetcher belongs to the by_event_type variant only
    assert (
        "With variant 'by_event_type': options: call tool cal_com_main__fetch_slots with "
        "eventTypeId" in props["start"]["description"]
    )
    assert "IANA time zone" in props["attendee"]["properties"]["timeZone"]["description"]
    assert "format" not in props["attendee"]["properties"]["timeZone"]


ATTENDEE = {"name": "Ada", "email": "ada@example.com", "timeZone": "Europe/Paris"}


@pytest.mark.parametrize(
    ("variant", "fields", "expected"),
    [
        ("by_event_type", {"eventTypeId": "101"}, {"eventTypeId": 101}),
        (
            "by_username_and_event_slug",
            {"username": "demo", "eventTypeSlug": "30min"},
            {"username": "demo", "eventTypeSlug": "30min"},
        ),
        (
            "by_team_and_event_slug",
            {"teamSlug": "sales", "eventTypeSlug": "intro", "organizationSlug": "acme"},
            {"teamSlug": "sales", "eventTypeSlug": "intro", "organizationSlug": "acme"},
        ),
    ],
)
def test_each_variant_round_trips_to_input_the_action_accepts(
    variant: str, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    tool = tool_input_schema(BookMeeting.input_schema().schema, fetcher_tool)
    args = {VARIANT: variant, "start": "2030-01-07T09:00:00Z", "attendee": ATTENDEE, **fields}
    data = to_action_input(args, tool)
    assert VARIANT not in data
    prepared = BookMeeting.input_schema().prepare(data)  # exactly one variant matches
    assert {k: prepared[k] for k in expected} == expected


def test_get_slots_group_variant_round_trips() -> None:
    tool = tool_input_schema(GetSlots.input_schema().schema, fetcher_tool)
    data = to_action_input(
        {VARIANT: "dynamic_group_of_users", "usernames": ["a", "b"], "start": "2030-01-07",
         "end": "2030-01-08"},
        tool,
    )  # fmt: skip
    assert GetSlots.input_schema().prepare(data)["usernames"] == ["a", "b"]


def test_fields_of_another_variant_are_refused_by_name() -> None:
    tool = tool_input_schema(BookMeeting.input_schema().schema, fetcher_tool)
    with pytest.raises(ValidationError) as err:
        to_action_input(
            {VARIANT: "by_event_type", "eventTypeId": 1, "teamSlug": "sales", "start": "x"}, tool
        )
    assert [e.path for e in err.value.errors] == ["teamSlug"]
    assert "by_team_and_event_slug" in err.value.errors[0].message
    with pytest.raises(ValidationError) as err:
        to_action_input({VARIANT: "by_phone"}, tool)
    assert err.value.errors[0].path == VARIANT
    with pytest.raises(ValidationError) as err:
        to_action_input({VARIANT: "by_event_type", "start": "x"}, tool)
    assert [e.path for e in err.value.errors] == ["eventTypeId"]


def test_without_variant_the_call_is_refused_as_the_schema_says() -> None:
    tool = tool_input_schema(BookMeeting.input_schema().schema, fetcher_tool)
    assert tool.schema["required"][0] == VARIANT
    with pytest.raises(ValidationError) as err:
        to_action_input({"eventTypeId": 101, "start": "2030-01-07T09:00:00Z",
                         "attendee": ATTENDEE}, tool)  # fmt: skip
    assert [(e.path, e.rule) for e in err.value.errors] == [(VARIANT, "required")]
    assert "by_event_type" in err.value.errors[0].message


def test_tool_schemas_are_closed_and_undeclared_arguments_refused_by_name() -> None:
    for action in (BookMeeting, GetSlots):
        tool = tool_input_schema(action.input_schema().schema, fetcher_tool)
        assert tool.schema["additionalProperties"] is False
    tool = tool_input_schema(BookMeeting.input_schema().schema, fetcher_tool)
    with pytest.raises(ValidationError) as err:
        to_action_input({VARIANT: "by_event_type", "eventTypeId": 1, "nots": "x"}, tool)
    assert [(e.path, e.rule) for e in err.value.errors] == [("nots", "additionalProperties")]
    assert "'nots'" in err.value.errors[0].message


def test_refs_are_inlined_and_required_alternatives_described() -> None:
    send_email = default_registry().app("email").action("SendEmail")
    schema = tool_input_schema(send_email.input_schema().schema, fetcher_tool).schema
    assert schema["properties"]["to"]["type"] == ["string", "array"]
    assert "Give at least one of: text; html." in schema["description"]


# --- exposure -----------------------------------------------------------------


def _allows(patterns: list[str] | None, app: str, integration: str, action: str) -> bool:
    settings = {} if patterns is None else {"mcp": {"expose": patterns}}
    kind = default_registry().app(app).action(action).kind
    return Exposure.of(settings).allows(app, integration, action, kind)


def test_default_exposes_reads_and_booking_changes_only() -> None:
    assert _allows(None, "cal_com", "main", "GetSlots")
    assert _allows(None, "cal_com", "main", "BookMeeting")
    assert _allows(None, "cal_com", "main", "RescheduleBooking")
    assert not _allows(None, "cal_com", "main", "CancelBooking")  # destructive: opt-in
    assert not _allows(None, "cal_com", "main", "RegisterWebhook")
    assert not _allows(None, "twilio", "sms", "SendSms")  # a write, but no booking
    assert not _allows(None, "http", "web", "Request")
    assert _allows(None, "twilio", "sms", "GetAccount")


def test_patterns_name_integrations_apps_actions_and_kinds() -> None:
    opted = [*DEFAULT_EXPOSE, "main.cancel_booking"]
    assert _allows(opted, "cal_com", "main", "CancelBooking")
    assert not _allows(opted, "cal_com", "other", "CancelBooking")
    assert _allows(["cal_com.*"], "cal_com", "x", "UnregisterWebhook")
    assert _allows(["*.@destructive"], "savvycal", "sc", "CancelEvent")
    assert not _allows(["@all", "!main.*"], "cal_com", "main", "GetSlots")
    assert _allows(["main.Cancel*"], "cal_com", "main", "CancelBooking")
    assert not _allows([], "cal_com", "main", "GetSlots")


@pytest.mark.parametrize("bad", ["cancel_booking", "main.", "@nope", "*.@deletes"])
def test_malformed_patterns_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse(bad)
    assert bad in err.value.message


# --- summaries ----------------------------------------------------------------


def test_summaries_are_one_sentence_to_say() -> None:
    booking = {
        "uid": "u1",
        "title": "Intro call",
        "start": "2030-11-26T10:00:00.000Z",
        "attendees": [{"name": "Ada"}],
    }
    assert summarize(BookMeeting, ActionResult.ok(booking)) == (
        "Booked 'Intro call' on Tue 26 Nov 10:00 UTC with Ada (uid u1)"
    )
    conflict = ActionResult.ok({"status": 409}, port="conflict", code="SLOT_TAKEN")
    assert summarize(BookMeeting, conflict) == "That slot is no longer available (conflict)."
    failed = ActionResult.fail("RATE_LIMIT", "Cal.com: slow down")
    assert summarize(BookMeeting, failed) == (
        "Book a meeting failed: Cal.com: slow down (RATE_LIMIT)."
    )
    slots = ActionResult.ok({"slots": [{"start": "2030-11-26T10:00:00Z"}], "count": 1})
    assert summarize(GetSlots, slots) == "1 open slot: Tue 26 Nov 10:00 UTC."
    assert spoken_time("2030-11-26T11:00:00+01:00") == "Tue 26 Nov 10:00 UTC"
