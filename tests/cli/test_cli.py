"""The real ``calflow`` command in a subprocess: apps, integrations, actions, fetch, keys, demo."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import SECRET, Home, run_calflow, run_many, store_add, store_names

pytestmark = pytest.mark.slow

ATTENDEE = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "timeZone": "Europe/Paris",
    "phoneNumber": "+33 6 12 34 56 78",
}
RESULT_KEYS = {"success", "port", "data", "code", "message"}


def open_slots(home: Home, event_type_id: int = 101) -> list[str]:
    got = home.run(
        "fetch", "cal_com", "slots", "-i", "main", "--context",
        json.dumps({"eventTypeId": event_type_id}), "--json",
    )  # fmt: skip
    assert got.code == 0, str(got)
    return [o["value"] for o in got.json]


def book_input(start: str, **extra: Any) -> str:
    return json.dumps({"eventTypeId": 101, "start": start, "attendee": ATTENDEE, **extra})


# --- apps ------------------------------------------------------------------------------


def test_apps_list_and_show(tmp_path: Path) -> None:
    listed, shown, unknown = run_many(
        tmp_path,
        ("apps", "list", "--json"),
        ("apps", "show", "cal_com", "--json"),
        ("apps", "show", "nope_app"),
    )
    assert listed.code == shown.code == 0
    cal_com = next(a for a in listed.json if a["key"] == "cal_com")
    assert {a["key"] for a in cal_com["actions"]} == {
        "BookMeeting", "RescheduleBooking", "CancelBooking", "GetBooking", "GetAllBookings",
        "GetSlots", "MarkAbsent", "AddGuests", "ConfirmBooking", "DeclineBooking",
        "RegisterWebhook", "UnregisterWebhook",
    }  # fmt: skip

    described = shown.json
    assert described["key"] == "cal_com"
    actions = {a["key"]: a for a in described["actions"]}
    assert [p["key"] for p in actions["BookMeeting"]["ports"]] == ["success", "conflict", "error"]
    assert {p["key"] for p in actions["MarkAbsent"]["ports"]} >= {"too_early", "not_found"}
    assert "oneOf" in actions["BookMeeting"]["input_schema"]
    fields = {f["key"]: f for f in described["credential_fields"]}
    assert fields["api_key"]["secret"] is True
    assert fields["base_url"]["secret"] is False
    fetchers = {f["key"]: f for f in described["fetchers"]}
    assert fetchers["slots"]["depends_on"] == ["eventTypeId"]
    assert {"event_types", "bookings", "webhooks", "user_event_types"} <= set(fetchers)

    assert unknown.code == 2, str(unknown)
    assert unknown.stdout == ""
    assert "nope_app" in unknown.err and "cal_com" in unknown.err


# --- integrations ------------------------------------------------------------------------


def test_integrations_add_list_show_never_reveal_the_secret(home: Home) -> None:
    added = home.added.json
    assert added["name"] == "main"
    assert added["app"] == "cal_com"
    assert added["config"] == {"base_url": home.sandbox.calcom}
    assert added["secrets"] == {"api_key": "********"}

    listed, shown, listed_text = home.run_many(
        ("integrations", "list", "--json"),
        ("integrations", "show", "main", "--json"),
        ("integrations", "list"),
    )
    for got in (listed, shown, listed_text):
        assert got.code == 0, str(got)
        assert SECRET not in got.stdout + got.stderr  # also checked by run_calflow
    assert [i["name"] for i in listed.json] == ["main"]
    assert listed.json[0]["secrets"] == {"api_key": "********"}
    assert shown.json["id"] == added["id"]
    assert shown.json["secrets"] == {"api_key": "********"}
    assert "main" in listed_text.stdout and "api_key" in listed_text.stdout

    # Nothing under CALFLOW_HOME holds the secret in clear: database, WAL, key file.
    files = [p for p in home.path.rglob("*") if p.is_file()]
    assert any(p.name == "calflow.db" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_integrations_add_is_refused_with_a_clear_message(home: Home) -> None:
    base = f"base_url={home.sandbox.calcom}"
    duplicate, unknown_app, unknown_field = home.run_many(
        ("integrations", "add", "cal_com", "--name", "main", "--set", "api_key=x", "--set", base),
        ("integrations", "add", "nope_app", "--name", "other", "--set", "api_key=x"),
        ("integrations", "add", "cal_com", "--name", "other", "--set", "nope=1"),
    )
    assert duplicate.code == 2, str(duplicate)
    assert "'main' already exists" in duplicate.err

    assert unknown_app.code == 2, str(unknown_app)
    assert "nope_app" in unknown_app.err
    assert "installed:" in unknown_app.err and "cal_com" in unknown_app.err

    assert unknown_field.code == 2, str(unknown_field)
    assert "nope" in unknown_field.err and "api_key" in unknown_field.err

    for got in (duplicate, unknown_app, unknown_field):
        assert got.stdout == ""
    assert "other" not in store_names(home.path)


# --- actions run ---------------------------------------------------------------------------


def test_book_meeting_then_the_same_slot_is_a_conflict(home: Home) -> None:
    start = open_slots(home)[0]
    booked = home.run(
        "actions", "run", "cal_com", "BookMeeting", "-i", "main", "--input", book_input(start),
        "--json",
    )  # fmt: skip
    assert booked.code == 0, str(booked)
    result = booked.json
    assert set(result) == RESULT_KEYS
    assert result["success"] is True and result["port"] == "success"
    assert result["data"]["start"] == start
    uid = result["data"]["uid"]
    stored = home.sandbox.booking(uid)
    assert stored["attendees"][0]["phoneNumber"] == "+33612345678"

    again = home.run(
        "actions", "run", "cal_com", "BookMeeting", "--integration", "main",
        "--input", book_input(start), "--json",
    )  # fmt: skip
    assert again.code == 0, str(again)
    assert again.json["success"] is True
    assert again.json["port"] == "conflict"
    assert again.json["code"] == "SLOT_TAKEN"
    assert sum(1 for b in home.sandbox.state()["bookings"] if b["start"] == start) == 1


def test_invalid_input_exits_2_listing_each_field(home: Home) -> None:
    start = "2030-01-07T09:00:00Z"
    missing_and_bad, both_variants, malformed = home.run_many(
        ("actions", "run", "cal_com", "BookMeeting", "-i", "main", "--input",
         json.dumps({"eventTypeId": 101, "start": "next tuesday"}), "--json"),
        ("actions", "run", "cal_com", "BookMeeting", "-i", "main", "--input",
         book_input(start, username="demo", eventTypeSlug="30min"), "--json"),
        ("actions", "run", "cal_com", "BookMeeting", "-i", "main", "--input",
         '{"eventTypeId": 101,', "--json"),
    )  # fmt: skip
    for got in (missing_and_bad, both_variants, malformed):
        assert got.code == 2, str(got)
        assert got.stdout == ""
        assert "VALIDATION_ERROR" in got.err
    assert "attendee: is required" in missing_and_bad.err
    assert "start: 'next tuesday' is not a 'date-time'" in missing_and_bad.err
    # fields of two variants: the one that does not fit the closest variant is named
    assert "eventTypeId: field 'eventTypeId' belongs to variant 'By event type'" in (
        both_variants.err
    )
    assert "not 'By username and event slug'" in both_variants.err
    assert "not valid JSON" in malformed.err and "line 1" in malformed.err


def test_input_from_a_file_and_from_stdin_and_text_output(home: Home, tmp_path: Path) -> None:
    seeded = [b["uid"] for b in home.sandbox.state()["bookings"]][:2]
    payload = tmp_path / "get.json"
    payload.write_text(json.dumps({"bookingUid": seeded[0]}), encoding="utf-8")
    from_file, as_text = home.run_many(
        ("actions", "run", "cal_com", "GetBooking", "-i", "main", "--input", f"@{payload}",
         "--json"),
        ("actions", "run", "cal_com", "GetBooking", "-i", "main", "--input",
         '{"bookingUid": "no-such-uid"}'),
    )  # fmt: skip
    assert from_file.code == 0, str(from_file)
    assert from_file.json["port"] == "success"
    assert from_file.json["data"]["uid"] == seeded[0]

    piped = home.run(
        "actions", "run", "cal_com", "GetBooking", "-i", "main", "--input", "-", "--json",
        stdin=json.dumps({"bookingUid": seeded[1]}),
    )  # fmt: skip
    assert piped.code == 0, str(piped)
    assert piped.json["port"] == "success"
    assert piped.json["data"]["uid"] == seeded[1]

    assert as_text.code == 0, str(as_text)  # a result on not_found is not a failure
    assert "not_found" in as_text.stdout and "NOT_FOUND" in as_text.stdout


def test_unknown_integration_or_action_exits_2(home: Home) -> None:
    ok_input = '{"bookingUid": "x"}'
    no_integration, no_action = home.run_many(
        ("actions", "run", "cal_com", "GetBooking", "-i", "nope", "--input", ok_input, "--json"),
        ("actions", "run", "cal_com", "NoSuchAction", "-i", "main", "--input", ok_input),
    )
    for got in (no_integration, no_action):
        assert got.code == 2, str(got)
        assert got.stdout == ""
    assert "no integration named or with id 'nope'" in no_integration.err
    assert "NoSuchAction" in no_action.err and "BookMeeting" in no_action.err


def test_wrong_api_key_exits_1_with_auth_error(home: Home) -> None:
    wrong = "cal_live_WRONG_0000"
    store_add(home.path, "wrong-key", {"base_url": home.sandbox.calcom}, {"api_key": wrong})
    action, fetched = home.run_many(
        ("actions", "run", "cal_com", "GetBooking", "-i", "wrong-key", "--input",
         '{"bookingUid": "x"}', "--json"),
        ("fetch", "cal_com", "event_types", "-i", "wrong-key", "--json"),
    )  # fmt: skip
    assert action.code == 1, str(action)
    assert action.json["success"] is False
    assert action.json["port"] == "error"
    assert action.json["code"] == "AUTH_ERROR"
    assert wrong not in action.stdout + action.stderr
    assert fetched.code == 1, str(fetched)  # the provider refused: a failure, not bad usage
    assert fetched.stdout == ""
    assert "AUTH_ERROR" in fetched.err
    assert wrong not in fetched.stdout + fetched.stderr


# --- fetch ---------------------------------------------------------------------------------


def test_fetch_event_types_and_slots(home: Home) -> None:
    event_types, slots, missing = home.run_many(
        ("fetch", "cal_com", "event_types", "--integration", "main", "--json"),
        ("fetch", "cal_com", "slots", "-i", "main", "--context", '{"eventTypeId": 101}', "--json"),
        ("fetch", "cal_com", "slots", "-i", "main", "--json"),
    )
    assert event_types.code == 0, str(event_types)
    labels = {o["value"]: o["label"] for o in event_types.json}
    assert labels[101] == "30 Minute Meeting (30m)"
    assert labels[102] == "60 Minute Meeting (60m)"
    assert 106 not in labels  # hidden
    assert set(event_types.json[0]) == {"value", "label", "description"}

    assert slots.code == 0, str(slots)
    values = [o["value"] for o in slots.json]
    assert values
    for value in values:
        assert value.endswith("Z")
        assert datetime.fromisoformat(value.replace("Z", "+00:00")).utcoffset() is not None

    assert missing.code == 2, str(missing)
    assert "eventTypeId" in missing.err
    assert missing.stdout == ""


def test_fetch_with_a_malformed_context_value_is_a_usage_error(home: Home) -> None:
    got = home.run(
        "fetch", "cal_com", "slots", "-i", "main", "--context",
        '{"eventTypeId": 101, "days": "a week"}', "--json",
    )  # fmt: skip
    assert got.code == 2, str(got)
    assert "days" in got.err


# --- keys and removal ----------------------------------------------------------------------


def test_keys_rotate_reencrypts_and_integrations_still_work(fresh_home: Home) -> None:
    key_file = fresh_home.path / "secret.key"
    before = key_file.read_text()
    rotated = fresh_home.run("keys", "rotate", "--json")
    assert rotated.code == 0, str(rotated)
    assert rotated.json["reencrypted"] >= 1
    assert rotated.json["new_secret_keys"] is None  # the key file holds them, not the output
    after = key_file.read_text()
    assert after.split()[0] not in before  # a new first key encrypts from now on

    action = fresh_home.run(
        "actions", "run", "cal_com", "GetBooking", "-i", "main", "--input",
        '{"bookingUid": "no-such-uid"}', "--json",
    )  # fmt: skip
    # The sandbox answers not_found only to its API key: the secret was decrypted.
    assert action.code == 0, str(action)
    assert action.json["port"] == "not_found"
    for path in fresh_home.path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_integrations_remove(fresh_home: Home) -> None:
    removed = fresh_home.run("integrations", "remove", "main")
    assert removed.code == 0, str(removed)
    assert "main" in removed.stdout
    listed, shown, action = fresh_home.run_many(
        ("integrations", "list", "--json"),
        ("integrations", "show", "main", "--json"),
        ("actions", "run", "cal_com", "GetBooking", "-i", "main", "--input",
         '{"bookingUid": "x"}', "--json"),
    )  # fmt: skip
    assert listed.code == 0 and listed.json == []
    for got in (shown, action):
        assert got.code == 2, str(got)
        assert "no integration named or with id 'main'" in got.err


# --- demo ----------------------------------------------------------------------------------


def test_version_and_short_help_everywhere(tmp_path: Path) -> None:
    from calflow import __version__

    version = run_calflow(tmp_path, "--version")
    assert (version.code, version.stdout.strip()) == (0, f"calflow {__version__}")
    for args in (("-h",), ("events", "list", "-h"), ("workflows", "apply", "-h"),
                 ("prune", "-h")):  # fmt: skip
        shown = run_calflow(tmp_path, *args)
        assert shown.code == 0 and "Usage: calflow" in shown.stdout, shown
