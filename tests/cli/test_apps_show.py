"""``calflow apps show APP ACTION``: an action's input fields, variants, fetchers and ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calflow.flowapp.fields import input_fields

from .conftest import run_many


def by_path(fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in fields}


def test_apps_show_action_json_lists_fields_variants_and_ports(tmp_path: Path) -> None:
    shown, text, app, unknown = run_many(
        tmp_path,
        ("apps", "show", "cal_com", "BookMeeting", "--json"),
        ("apps", "show", "cal_com", "book_meeting"),
        ("apps", "show", "cal_com", "--json"),
        ("apps", "show", "cal_com", "BookMeting"),
    )
    assert shown.code == 0, str(shown)
    data = shown.json
    assert (data["app"], data["key"], data["kind"]) == ("cal_com", "BookMeeting", "write")
    fields = by_path(data["fields"])
    assert fields["start"]["required"] is True
    assert fields["start"]["type"] == "string (date-time)"
    zone = fields["attendee.timeZone"]
    assert (zone["required"], zone["default"], zone["type"]) == (True, "UTC", "string (time-zone)")
    assert fields["attendee.email"]["required"] is False
    assert fields["guests"]["type"] == "array of string (email)"
    assert "attendeePhone" in fields["location.type"]["choices"]
    variants = {v["title"]: v for v in data["variants"]}
    assert list(variants) == [
        "By event type", "By username and event slug", "By team and event slug"
    ]  # fmt: skip
    by_type = by_path(variants["By event type"]["fields"])
    assert by_type["eventTypeId"]["fetcher"] == "event_types"
    assert (by_type["start"]["fetcher"], by_type["start"]["depends_on"]) == (
        "slots", ["eventTypeId"]
    )  # fmt: skip
    assert variants["By username and event slug"]["required"] == ["eventTypeSlug", "username"]
    assert [p["key"] for p in data["ports"]] == ["success", "conflict", "error"]
    assert [p["error"] for p in data["ports"]] == [False, False, True]

    assert text.code == 0, str(text)
    for fragment in ("BookMeeting input fields", "By event type", "slots (after",
                     "eventTypeId", "output ports", "conflict"):  # fmt: skip
        assert fragment in text.stdout, text.stdout

    assert app.code == 0 and app.json["key"] == "cal_com" and "actions" in app.json
    assert unknown.code == 2, str(unknown)
    assert "no action 'BookMeting'" in unknown.err and "BookMeeting" in unknown.err


def test_input_fields_follow_refs_items_and_nesting() -> None:
    schema = {
        "type": "object",
        "$defs": {"who": {"type": "object", "properties": {"email": {"type": "string"}},
                          "required": ["email"]}},
        "properties": {
            "to": {"type": "array", "items": {"$ref": "#/$defs/who"}, "description": "Whom."},
            "mode": {"enum": ["a", "b"], "default": "a"},
            "n": {"type": ["integer", "null"]},
        },
        "required": ["to"],
    }  # fmt: skip
    described = input_fields(schema)
    fields = by_path(described["fields"])
    assert list(fields) == ["to", "to[].email", "mode", "n"]
    assert fields["to"]["type"] == "array of object"
    assert (fields["to"]["required"], fields["to"]["description"]) == (True, "Whom.")
    assert fields["to[].email"]["required"] is True
    assert (fields["mode"]["type"], fields["mode"]["choices"], fields["mode"]["default"]) == (
        "enum", ["a", "b"], "a"
    )  # fmt: skip
    assert fields["n"]["type"] == "integer | null"
    assert described["variants"] == []
