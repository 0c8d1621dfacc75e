"""The Twilio sandbox's queue: each sender's throughput, status progression on the sandbox
clock, status callbacks when the statuses change, the ``mps`` option and control."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest

from calflow.sandbox import SandboxConfig
from e2e.sandbox_process import child_env

from ._support import CLOCK, Sandbox, make_sandbox
from .test_twilio_sandbox import FROM, MESSAGES, SID, TOKEN, auth

OTHER_FROM = "+15017122661"
SERVICE = "MG" + "b" * 32
TO = "+14155552671"
SLOW = 0.01
"""Segments per second: 100 s a segment, so the real seconds a test takes do not count."""


async def sandbox_with(mps: float) -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        twilio_account_sid=SID, twilio_auth_token=TOKEN, twilio_mps=mps, clock_start=CLOCK
    )
    async for sandbox in make_sandbox(config):
        yield sandbox


@pytest.fixture
async def slow() -> AsyncIterator[Sandbox]:
    async for sandbox in sandbox_with(SLOW):
        yield sandbox


async def send(sb: Sandbox, **form: str) -> dict[str, Any]:
    fields = {"To": TO, "Body": "hi", **form}
    if "MessagingServiceSid" not in fields:
        fields.setdefault("From", FROM)
    response = await sb.root.post(MESSAGES, data=fields, headers=auth())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def fetch(sb: Sandbox, sid: str) -> dict[str, Any]:
    response = await sb.root.get(f"/twilio/2010-04-01/Accounts/{SID}/Messages/{sid}.json",
                                 headers=auth())  # fmt: skip
    found: dict[str, Any] = response.json()
    return found


async def move_clock(sb: Sandbox, offset_s: float) -> None:
    response = await sb.root.post("/_sandbox/clock", json={"offset_s": offset_s})
    assert response.status_code == 200


def date(value: str) -> Any:
    return parsedate_to_datetime(value)


async def test_messages_wait_queued_for_their_senders_turn(slow: Sandbox) -> None:
    first = await send(slow, Body="one")
    second = await send(slow, Body="two")
    third = await send(slow, Body="x" * 161)  # two segments: 200 s of the sender's time
    fourth = await send(slow, Body="four")
    other = await send(slow, Body="other", From=OTHER_FROM)
    service = await send(slow, Body="service", MessagingServiceSid=SERVICE)
    assert [m["status"] for m in (first, second, other)] == ["queued"] * 3
    assert service["status"] == "accepted"
    now = {m["body"]: await fetch(slow, m["sid"]) for m in (first, second, other, service)}
    assert [now[b]["status"] for b in ("one", "two", "other", "service")] == [
        "sending",  # its turn came at once
        "queued",
        "sending",  # another number: a queue of its own
        "sending",  # accepted, then queued at the service, whose queue was empty
    ]
    assert all(m["date_sent"] is None for m in now.values())

    created = date(first["date_created"])
    await move_clock(slow, 150)  # one has left (at +100 s) and was delivered 1 s later
    one, two = await fetch(slow, first["sid"]), await fetch(slow, second["sid"])
    assert (one["status"], two["status"]) == ("delivered", "sending")
    assert date(one["date_sent"]) - created == timedelta(seconds=100)
    assert two["date_sent"] is None

    await move_clock(slow, 10_000)
    done = [await fetch(slow, m["sid"]) for m in (first, second, third, fourth)]
    assert {m["status"] for m in done} == {"delivered"}
    sent_after = [(date(m["date_sent"]) - created).total_seconds() for m in done]
    assert sent_after == [100.0, 200.0, 400.0, 500.0]
    assert date(done[0]["date_updated"]) - date(done[0]["date_sent"]) == timedelta(seconds=1)


async def test_without_a_throughput_a_message_is_delivered_as_it_is_created() -> None:
    async for sb in sandbox_with(0):
        created = await send(sb)
        assert created["status"] == "queued" and created["date_sent"] is None
        now = await fetch(sb, created["sid"])
        assert now["status"] == "delivered" and now["date_sent"] == now["date_created"]


async def test_status_callbacks_follow_the_queue(slow: Sandbox) -> None:
    url = "https://hooks.example.com/status"
    first = await send(slow, StatusCallback=url)
    service = await send(slow, MessagingServiceSid=SERVICE, StatusCallback=url)
    await slow.root.post("/_sandbox/twilio/flush")
    posted = [dict(parse_qsl(r.content.decode())) for r in slow.hooks.requests]
    # nothing for the initial status, nor for sending; the service's message got queued
    assert [(p["MessageSid"], p["MessageStatus"]) for p in posted] == [(service["sid"], "queued")]
    await move_clock(slow, 500)
    await slow.root.post("/_sandbox/twilio/flush")
    posted = [dict(parse_qsl(r.content.decode())) for r in slow.hooks.requests]
    by_message = {
        sid: [p["MessageStatus"] for p in posted if p["MessageSid"] == sid]
        for sid in (first["sid"], service["sid"])
    }
    assert by_message == {first["sid"]: ["sent", "delivered"],
                          service["sid"]: ["queued", "sent", "delivered"]}  # fmt: skip
    assert all(p["MessagingServiceSid"] == SERVICE and "From" not in p
               for p in posted if p["MessageSid"] == service["sid"])  # fmt: skip


async def test_the_queue_moves_on_by_itself() -> None:
    """Callbacks come when the statuses change, with no request to the Twilio API: the
    sandbox looks at its queue again at least once a second (the clock may move)."""
    async for sb in sandbox_with(SLOW):
        await send(sb, StatusCallback="https://hooks.example.com/status")
        await move_clock(sb, 500)  # a request to the root app, not to Twilio
        deadline = time.monotonic() + 10
        while True:
            statuses = [dict(parse_qsl(r.content.decode()))["MessageStatus"]
                        for r in sb.hooks.requests]  # fmt: skip
            if len(statuses) >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert statuses == ["sent", "delivered"]


async def test_the_mps_option_applies_to_new_messages(slow: Sandbox) -> None:
    options = await slow.root.post("/_sandbox/twilio/options", json={"mps": 0})
    assert options.json() == {"mps": 0.0}
    created = await send(slow)
    assert (await fetch(slow, created["sid"]))["status"] == "delivered"
    state = (await slow.root.get("/_sandbox/state")).json()["twilio"]
    assert state["mps"] == 0
    for bad in (-1, "fast", True, 1e7):
        response = await slow.root.post("/_sandbox/twilio/options", json={"mps": bad})
        assert response.status_code == 400 and "mps" in response.text
    await slow.root.post("/_sandbox/reset")
    assert (await slow.root.get("/_sandbox/state")).json()["twilio"]["mps"] == SLOW


def test_a_negative_throughput_is_refused() -> None:
    with pytest.raises(ValueError, match="twilio_mps"):
        SandboxConfig(twilio_mps=-1)


def test_calflow_sandbox_help_shows_the_twilio_throughput() -> None:
    got = subprocess.run(
        [sys.executable, "-m", "calflow.cli.main", "sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(COLUMNS="200", PYTHONPATH=os.environ.get("PYTHONPATH", "")),
        check=True,
    )
    line = next(x for x in got.stdout.splitlines() if "--twilio-mps" in x)
    assert "Segments per second each Twilio sender sends" in line
