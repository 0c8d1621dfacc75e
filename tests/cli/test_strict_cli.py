"""The real ``calflow`` command refuses what an action or fetcher does not declare: exit
2, the field named, and nothing sent to the provider (a recording stand-in sees nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import SECRET, run_many, store_add
from .recorder import Recorder, recording_server

ATTENDEE = {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Paris"}
BOOK = {"eventTypeId": 101, "start": "2030-01-07T09:00:00Z", "attendee": ATTENDEE}


def _home(tmp_path: Path, provider: Recorder) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    store_add(home, "main", {"base_url": provider.url}, {"api_key": SECRET})
    return home


def _book(data: dict[str, Any]) -> tuple[str, ...]:
    return ("actions", "run", "cal_com", "BookMeeting", "-i", "main", "--input", json.dumps(data))


def _step(tmp_path: Path, name: str, step_input: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.json"
    doc = {
        "name": name,
        "trigger": {"kinds": ["created"]},
        "steps": [
            {"id": "book", "action": "cal_com.BookMeeting", "integration": "main",
             "input": step_input}
        ],
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return str(path)


def test_undeclared_fields_exit_2_naming_them_and_nothing_is_sent(tmp_path: Path) -> None:
    with recording_server() as provider:
        _refused_with_nothing_sent(tmp_path, provider)


def _refused_with_nothing_sent(tmp_path: Path, provider: Recorder) -> None:
    home = _home(tmp_path, provider)
    templated = {
        "eventTypeId": "{{ booking.event_type.id }}",
        "start": "{{ booking.start }}",
        "attendee": {"name": "{{ attendee.name }}"},
    }
    cases = [
        (_book({**BOOK, "nots": "x"}), "nots"),
        (_book({**BOOK, "attendee": {**ATTENDEE, "emial": "a@example.com"}}), "attendee.emial"),
        (_book({**BOOK, "username": "ada"}), "username"),
        (
            ("fetch", "cal_com", "slots", "-i", "main", "--context",
             json.dumps({"eventTypeId": {"x": 1}})),
            "eventTypeId",
        ),
        (
            ("fetch", "cal_com", "slots", "-i", "main", "--context",
             json.dumps({"eventTypeId": 101, "evenTypeId": 1})),
            "evenTypeId",
        ),
        (
            ("workflows", "apply", _step(tmp_path, "top", {**templated, "nots": "x"})),
            "steps.0.input.nots",
        ),
        (
            ("workflows", "apply", _step(tmp_path, "nested",
             {**templated, "attendee": {"name": "x", "emial": "{{ attendee.email }}"}})),
            "steps.0.input.attendee.emial",
        ),
        (
            ("workflows", "apply", _step(tmp_path, "variant", {**templated, "teamSlug": "s"})),
            "steps.0.input.teamSlug",
        ),
    ]  # fmt: skip
    results = run_many(home, *[args for args, _ in cases])
    for (_, field), got in zip(cases, results, strict=True):
        assert got.code == 2, str(got)
        assert f"{field}: " in got.err, str(got)  # the field, by its path
        if "{'x': 1}" not in got.err:  # the one wrong type; the others are undeclared
            assert "not declared" in got.err or "belongs to variant" in got.err, str(got)
    assert "belongs to variant 'By username and event slug'" in results[2].err
    assert "additionalProperties: false" in results[0].err
    assert provider.requests == []
    listed = run_many(home, ("workflows", "list", "--json"))[0]
    assert listed.code == 0 and listed.json == [], str(listed)
