"""The SDK's client against ``calflow mcp`` (stdio): tool schemas are closed, and a call
with an argument the tool or action does not declare, a field of another variant, no
variant, or a fetcher context it does not take is a tool error naming the field in the
REST API's ``details[]`` shape; nothing reaches the provider (a recording stand-in)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from calflow.db.engine import reset_engines
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from cli.recorder import Recorder, recording_server
from e2e.sandbox_process import child_env

from .conftest import structured

BOOK = "cal_com_main__book_meeting"
ATTENDEE = {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Paris"}
ARGS = {"variant": "by_event_type", "eventTypeId": 101, "start": "2030-01-07T09:00:00Z",
        "attendee": ATTENDEE}  # fmt: skip


def _client(tmp_path: Path, provider: Recorder) -> Client:
    home = tmp_path / "home"
    try:
        IntegrationStore.default(Settings(home=home, database_url=None, secret_keys=None)).add(
            "cal_com", "main", {"base_url": provider.url}, {"api_key": "cal_live_mcp_strict_1"}
        )
    finally:
        reset_engines()
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "calflow.cli.main", "mcp", "--workspace", "default"],
        env=child_env(CALFLOW_HOME=str(home)),
    )
    return Client(params)


def _refused(result: Any) -> dict[str, str]:
    assert result.is_error, result
    error = structured(result)["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert set(error) == {"code", "message", "details"}
    assert all(set(d) == {"field", "message"} for d in error["details"])
    return {d["field"]: d["message"] for d in error["details"]}


CALLS = [
    pytest.param(BOOK, {**ARGS, "nots": "x"}, "nots", id="misspelt-top-level"),
    pytest.param(
        BOOK, {**ARGS, "attendee": {**ATTENDEE, "emial": "a@example.com"}}, "attendee.emial",
        id="unknown-nested",
    ),
    pytest.param(BOOK, {**ARGS, "teamSlug": "sales"}, "teamSlug", id="another-variant"),
    pytest.param(
        BOOK, {k: v for k, v in ARGS.items() if k != "variant"}, "variant", id="no-variant"
    ),
    pytest.param(
        "cal_com_main__fetch_slots", {"eventTypeId": {"x": 1}}, "eventTypeId",
        id="context-wrong-type",
    ),
    pytest.param(
        "cal_com_main__fetch_slots", {"eventTypeId": 101, "evenTypeId": 1}, "evenTypeId",
        id="context-unknown-key",
    ),
]  # fmt: skip


async def test_tools_are_closed_and_refuse_what_they_do_not_declare(tmp_path: Path) -> None:
    with recording_server() as provider:
        await _refused_with_nothing_sent(tmp_path, provider)


async def _refused_with_nothing_sent(tmp_path: Path, provider: Recorder) -> None:
    async with _client(tmp_path, provider) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in (BOOK, "cal_com_main__get_slots", "cal_com_main__fetch_slots"):
            assert tools[name].input_schema["additionalProperties"] is False, name
        assert tools[BOOK].input_schema["required"][0] == "variant"
        slots = tools["cal_com_main__fetch_slots"].input_schema
        assert slots["properties"]["eventTypeId"]["type"] == "integer"
        assert slots["required"] == ["eventTypeId"]
        for param in CALLS:
            tool, arguments, field = param.values
            details = _refused(await client.call_tool(tool, arguments))
            assert list(details) == [field], (param.id, details)
            result = await client.call_tool(tool, arguments)
            assert field in result.content[0].text  # type: ignore[union-attr]
        foreign = _refused(await client.call_tool(BOOK, {**ARGS, "teamSlug": "sales"}))
        assert "by_team_and_event_slug" in foreign["teamSlug"]
        typo = _refused(await client.call_tool(BOOK, {**ARGS, "nots": "x"}))
        assert "additionalProperties: false" in typo["nots"]
    assert provider.requests == []
