"""The SDK's own client against calflow's MCP server, over stdio and streamable HTTP.

Both transports play the agent's call: list the tools, look up options and open slots,
book, book the same slot again (conflict), reschedule; then the booking's event must
be in the workspace's events once and the reminder workflow must have one run for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import httpx
import pytest
from mcp import Client

from cli.conftest import run_calflow
from e2e.serve_process import poll

from .conftest import ATTENDEE, REMINDER, Stack, slot_window, structured

pytestmark = pytest.mark.slow

T = TypeVar("T")


async def until(check: Callable[[], T | None], what: str) -> T:
    """``check()``'s first truthy value, polled in a thread (the event loop stays free)."""
    return await asyncio.to_thread(poll, check, 30.0, what)


def connect(stack: Stack, transport: str) -> AbstractAsyncContextManager[Client]:
    return stack.stdio() if transport == "stdio" else stack.http()


async def free_slots(client: Client, event_type: int) -> list[str]:
    result = await client.call_tool(
        "cal_com_main__get_slots",
        {"variant": "by_event_type", "eventTypeId": event_type, **slot_window()},
    )
    assert not result.is_error, result
    body = structured(result)
    assert body["port"] == "success"
    assert body["summary"].endswith(".") and "open slot" in body["summary"]
    return [s["start"] for s in body["data"]["slots"]]


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_an_agent_books_hits_a_conflict_and_reschedules(
    stack_defaults: Stack, transport: str
) -> None:
    stack = stack_defaults
    async with connect(stack, transport) as client:
        listed = await client.list_tools()
        tools = {t.name: t for t in listed.tools}
        assert {
            "cal_com_main__book_meeting",
            "cal_com_main__reschedule_booking",
            "cal_com_main__get_slots",
            "cal_com_main__fetch_event_types",
            "cal_com_main__fetch_slots",
        } <= set(tools)
        assert "cal_com_main__cancel_booking" not in tools  # destructive: opt-in
        assert not [n for n in tools if "webhook" in n]
        for tool in listed.tools:
            assert tool.input_schema["type"] == "object"
            assert "oneOf" not in tool.input_schema and "$defs" not in tool.input_schema
        book = tools["cal_com_main__book_meeting"]
        assert book.input_schema["required"][0] == "variant"
        assert book.annotations is not None and book.annotations.destructive_hint is False
        assert tools["cal_com_main__get_slots"].annotations.read_only_hint  # type: ignore[union-attr]

        options = await client.call_tool("cal_com_main__fetch_event_types", {})
        values = [o["value"] for o in structured(options)["options"]]
        assert 101 in values and structured(options)["summary"].startswith(f"{len(values)} ")

        fetched = await client.call_tool("cal_com_main__fetch_slots", {"eventTypeId": 101})
        assert structured(fetched)["count"] > 0

        slots = await free_slots(client, 101)
        first, later = slots[0], slots[-1]
        args = {"variant": "by_event_type", "eventTypeId": 101, "start": first,
                "attendee": ATTENDEE}  # fmt: skip
        booked = await client.call_tool("cal_com_main__book_meeting", args)
        assert not booked.is_error, booked
        body = structured(booked)
        assert (body["port"], body["success"], body["error"]) == ("success", True, None)
        uid = body["data"]["uid"]
        assert body["summary"].startswith("Booked '") and f"(uid {uid})" in body["summary"]
        assert "with Ada Lovelace" in body["summary"]
        assert booked.content[0].text == body["summary"]  # type: ignore[union-attr]

        again = await client.call_tool(
            "cal_com_main__book_meeting",
            {**args, "attendee": {"name": "Bob", "email": "bob@example.com"}},
        )
        conflict = structured(again)
        assert not again.is_error  # an answer the agent acts on, not a failure
        assert conflict["port"] == "conflict"
        assert conflict["summary"] == "That slot is no longer available (conflict)."

        moved = await client.call_tool(
            "cal_com_main__reschedule_booking",
            {"bookingUid": uid, "start": later, "reschedulingReason": "caller asked"},
        )
        assert not moved.is_error, moved
        moved_body = structured(moved)
        new_uid = moved_body["data"]["uid"]
        assert moved_body["port"] == "success"
        assert moved_body["summary"].startswith("Rescheduled '")

    # the booking went through the event bus like a web booking, once ...
    inbox = stack.inbox()
    created = [e for e in inbox.list(booking_uid=uid) if e["kind"] == "created"]
    assert len(created) == 1 and created[0]["source"] == "action"
    await until(
        lambda: [e for e in inbox.list(booking_uid=new_uid) if e["kind"] == "rescheduled"],
        "the rescheduled event",
    )
    # ... the reminder workflow has one run for it, which followed the reschedule ...
    runs = stack.runs()

    def reminders() -> list[dict[str, object]]:
        return [r for r in runs.list(workflow=REMINDER) if r["event_id"] == created[0]["id"]]

    await until(lambda: [r for r in reminders() if r["booking_uid"] == new_uid], "the reminder")
    await asyncio.sleep(1.0)  # a second dispatch would show by now
    assert len(reminders()) == 1
    # ... and each tool call is a run of its own, visible like any other
    recorded = runs.get(body["run_id"])
    assert recorded["workflow"] == "mcp:cal_com.BookMeeting"
    assert recorded["booking_uid"] == uid
    assert recorded["status"] == "succeeded"
    assert runs.get(conflict["run_id"])["steps"][0]["port"] == "conflict"


async def test_cancel_is_a_tool_only_once_opted_in(stack_defaults: Stack) -> None:
    stack = stack_defaults
    async with stack.stdio() as client:
        slot = (await free_slots(client, 101))[0]
        booked = await client.call_tool(
            "cal_com_main__book_meeting",
            {"variant": "by_event_type", "eventTypeId": 101, "start": slot, "attendee": ATTENDEE},
        )
        uid = structured(booked)["data"]["uid"]
        refused = await client.call_tool("cal_com_main__cancel_booking", {"bookingUid": uid})
        assert refused.is_error
        assert structured(refused)["error"]["code"] == "NOT_FOUND"
        assert "expose" in structured(refused)["summary"]

    # an operator opts in with the CLI
    result = run_calflow(stack.home, "mcp", "expose", "add", "main.cancel_booking", "--json")
    assert result.code == 0, str(result)
    assert "main.cancel_booking" in result.json["expose"]
    async with stack.stdio() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "cal_com_main__cancel_booking" in names
        cancelled = await client.call_tool(
            "cal_com_main__cancel_booking",
            {"bookingUid": uid, "cancellationReason": "caller cancelled"},
        )
        assert not cancelled.is_error, cancelled
        assert structured(cancelled)["summary"].startswith("Cancelled '")
    await until(
        lambda: [e for e in stack.inbox().list(booking_uid=uid) if e["kind"] == "cancelled"],
        "the cancelled event",
    )
    reset = run_calflow(stack.home, "mcp", "expose", "reset", "--json")
    assert reset.code == 0 and reset.json["default"] is True


async def test_the_exposure_setting_decides_the_tool_list(stack_defaults: Stack) -> None:
    stack = stack_defaults
    stack.expose(["main.get_*"])
    async with stack.stdio() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {
            "cal_com_main__get_booking",
            "cal_com_main__get_all_bookings",
            "cal_com_main__get_slots",
            "cal_com_main__fetch_bookings",
            "cal_com_main__fetch_event_types",
            "cal_com_main__fetch_user_event_types",
        }
        hidden = await client.call_tool("cal_com_main__book_meeting", {})
        assert hidden.is_error and structured(hidden)["error"]["code"] == "NOT_FOUND"


async def test_invalid_arguments_are_tool_errors_naming_the_field(stack_defaults: Stack) -> None:
    async with stack_defaults.stdio() as client:
        result = await client.call_tool(
            "cal_com_main__book_meeting",
            {"variant": "by_event_type", "eventTypeId": 101, "start": "tomorrow",
             "attendee": {"email": "x@example.com"}},
        )  # fmt: skip
        assert result.is_error
        error = structured(result)["error"]
        assert error["code"] == "VALIDATION_ERROR"
        paths = {d["field"] for d in error["details"]}  # the REST API's details[] shape
        assert {"start", "attendee.name"} <= paths
        assert "attendee.name" in result.content[0].text  # type: ignore[union-attr]
        missing = await client.call_tool("cal_com_main__fetch_slots", {})
        assert missing.is_error and "eventTypeId" in structured(missing)["summary"]


def test_http_needs_a_valid_workspace_token(stack: Stack) -> None:
    url = f"{stack.server.url}/mcp"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in ({}, {"Authorization": "Bearer cfk_not-a-token"}, {"Authorization": "Basic x"}):
        resp = httpx.post(url, json=body, headers=headers, timeout=10)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == "UNAUTHENTICATED"
        assert set(resp.json()["error"]) == {"code", "message"}


async def test_each_workspace_sees_only_its_own_tools(stack: Stack) -> None:
    async with stack.http(stack.other_token) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "cal_com_other_cal__book_meeting" in names
        assert not [n for n in names if n.startswith("cal_com_main__")]
        foreign = await client.call_tool("cal_com_main__get_slots", {})
        assert foreign.is_error and structured(foreign)["error"]["code"] == "NOT_FOUND"
    async with stack.http() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "cal_com_main__book_meeting" in names
        assert not [n for n in names if "other_cal" in n]
    async with stack.stdio("other") as client:  # calflow mcp --workspace other
        names = {t.name for t in (await client.list_tools()).tools}
        assert "cal_com_other_cal__get_slots" in names
        assert not [n for n in names if n.startswith("cal_com_main__")]
