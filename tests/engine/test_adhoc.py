"""Ad-hoc action runs (API, console, MCP): recorded as runs, booking changes on the bus."""

from __future__ import annotations

import pytest

from calflow.errors import ValidationError
from calflow.flowapp.runner import Runner
from calflow.workflows.adhoc import run_action_recorded
from engine.conftest import Harness
from engine.test_engine import get_step

ATTENDEE = {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Paris"}


async def _slot(runner: Runner) -> str:
    options = await runner.fetch_options("cal_com", "slots", "main", {"eventTypeId": 101})
    return str(options[0].value)


async def test_a_booking_action_is_a_run_and_triggers_workflows_once(harness: Harness) -> None:
    h = harness
    h.apply({"name": "look-up", "trigger": {"kinds": ["created"]}, "steps": [get_step("get")]})
    integration = h.store.get("main")
    async with Runner(store=h.store) as runner:
        start = await _slot(runner)
        data = {"eventTypeId": 101, "start": start, "attendee": ATTENDEE}
        result, run_id = await run_action_recorded(
            runner, h.store.workspace_id, integration, "BookMeeting", data, source="mcp"
        )
        assert result.success and result.port == "success"
        again, again_id = await run_action_recorded(
            runner, h.store.workspace_id, integration, "book_meeting", data, source="api"
        )
    assert again.port == "conflict" and again_id != run_id
    uid = result.data["uid"]

    shown = h.run(run_id)
    assert shown["workflow"] == "mcp:cal_com.BookMeeting" and shown["workflow_id"] == ""
    assert shown["status"] == "succeeded" and shown["booking_uid"] == uid
    (step,) = shown["steps"]
    assert step["port"] == "success" and step["input"]["start"] == start
    assert h.run(again_id)["steps"][0]["port"] == "conflict"
    assert h.run(again_id)["status"] == "succeeded"  # an answer on a port, not a failure

    # the booking reached the event bus once and started the workflow once
    runs = await h.until(
        lambda: [r for r in h.runs(workflow="look-up") if r["status"] == "succeeded"],
        what="the workflow run the booking caused",
    )
    assert [r["booking_uid"] for r in runs] == [uid]
    events = [e for e in h.inbox.list() if e["booking_uid"] == uid]
    assert [e["kind"] for e in events] == ["created"]


async def test_invalid_input_records_nothing(harness: Harness) -> None:
    integration = harness.store.get("main")
    async with Runner(store=harness.store) as runner:
        with pytest.raises(ValidationError):
            await run_action_recorded(
                runner, "default", integration, "BookMeeting", {"start": "soon"}, source="api"
            )
    assert harness.runs() == []
