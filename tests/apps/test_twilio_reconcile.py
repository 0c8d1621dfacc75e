"""SendSms.reconcile against the Twilio sandbox with a queuing sender: a cut-off call's
message is found whatever its status, an older identical one is not taken for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from calflow.apps.twilio.lookup import CLOCK_SKEW, PAGE_SIZE
from calflow.errors import AuthError
from calflow.flowapp import ActionResult
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration
from calflow.sandbox import SandboxConfig, create_sandbox_app

from .test_twilio import FAST, FROM, SID, TOKEN, twilio

pytestmark = pytest.mark.slow

CLOCK = datetime.fromisoformat("2030-01-07T06:10:00+00:00")
TO = "+14155552671"
SERVICE = "MG" + "c" * 32
SLOW = 0.01
"""Segments per second: 100 s a segment, so every message but the first waits queued."""


class Counted(httpx.AsyncBaseTransport):
    """The sandbox's ASGI transport, keeping the list requests that went through it."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.lists: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/Messages.json"):
            self.lists.append(request.url)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def app() -> FastAPI:
    config = SandboxConfig(twilio_account_sid=SID, twilio_auth_token=TOKEN, twilio_mps=SLOW,
                           clock_start=CLOCK)  # fmt: skip
    return create_sandbox_app(config)


@pytest.fixture
async def counted(app: FastAPI) -> AsyncIterator[tuple[Runner, Counted]]:
    transport = Counted(app)
    http = httpx.AsyncClient(transport=transport)
    async with Runner(http=http, policy=FAST, publish=False) as r:
        yield r, transport
    await http.aclose()


@pytest.fixture
def runner(counted: tuple[Runner, Counted]) -> Runner:
    return counted[0]


def sms(**config: Any) -> Integration:
    return twilio("http://sb/twilio", **{"from_number": FROM, **config})


def now(app: FastAPI) -> datetime:
    """The sandbox's clock (Twilio's), which dates the messages."""
    found: datetime = app.state.sandbox.runtime.now()
    return found


def shift(app: FastAPI, seconds: float) -> None:
    app.state.sandbox.runtime.clock_offset_s += seconds


async def send(runner: Runner, body: str, to: str = TO, **config: Any) -> ActionResult:
    result = await runner.run_action("twilio", "SendSms", {"to": to, "body": body}, sms(**config))
    assert result.port == "sent", result
    return result


async def reconcile(
    runner: Runner, body: str, since: datetime, to: str = TO, **config: Any
) -> ActionResult | None:
    data = {"to": to, "body": body}
    return await runner.reconcile_action("twilio", "SendSms", data, sms(**config), since)


async def test_a_queued_message_is_found(runner: Runner, app: FastAPI) -> None:
    await send(runner, "ahead 1", to="+12025550143")
    await send(runner, "ahead 2", to="+12025550144")
    intent = now(app)
    made = await send(runner, "reminder: tomorrow 9:00")
    found = await reconcile(runner, "reminder: tomorrow 9:00", intent)
    assert found is not None and found.port == "sent"
    assert found.data["sid"] == made.data["sid"]
    assert (found.data["status"], found.data["reconciled"]) == ("queued", True)
    assert found.data["num_segments"] == 1
    # Twilio's DateSent filters cannot see it: that is why the lookup does not use them
    twilio_app = app.state.sandbox.twilio
    assert twilio_app.state.messages[made.data["sid"]].date_sent is None


async def test_no_message_means_the_call_never_reached_twilio(runner: Runner, app: FastAPI) -> None:
    await send(runner, "something else")
    assert await reconcile(runner, "reminder", now(app)) is None
    assert await reconcile(runner, "something else", now(app), to="+12025550143") is None


async def test_an_older_identical_message_is_not_taken_for_it(runner: Runner, app: FastAPI) -> None:
    old = await send(runner, "see you at 9")  # an hour before the intent
    shift(app, 3600)
    intent = now(app)
    assert await reconcile(runner, "see you at 9", intent) is None
    again = await send(runner, "see you at 9")
    found = await reconcile(runner, "see you at 9", intent)
    assert found is not None and found.data["sid"] == again.data["sid"] != old.data["sid"]


async def test_the_clock_skew_allowance_bounds_the_match(runner: Runner, app: FastAPI) -> None:
    created = now(app)
    await send(runner, "skew")
    # calflow's clock ahead of Twilio's by less than the allowance: still that message
    assert await reconcile(runner, "skew", created + CLOCK_SKEW - timedelta(seconds=1))
    assert await reconcile(runner, "skew", created + CLOCK_SKEW + timedelta(seconds=1)) is None


async def test_pages_are_followed_until_the_message(
    counted: tuple[Runner, Counted], app: FastAPI
) -> None:
    runner, transport = counted
    intent = now(app)
    made = await send(runner, "mine")
    for n in range(2 * PAGE_SIZE + 10):  # newer messages to the same number
        await send(runner, f"other {n}")
    found = await reconcile(runner, "mine", intent)
    assert found is not None and found.data["sid"] == made.data["sid"]
    assert len(transport.lists) == 3
    first, *following = transport.lists
    assert dict(first.params) == {"To": TO, "From": FROM, "PageSize": str(PAGE_SIZE)}
    assert all(url.params["PageToken"].startswith("PA") for url in following)


async def test_the_scan_stops_at_a_message_sent_before_the_intent(
    counted: tuple[Runner, Counted], app: FastAPI
) -> None:
    runner, transport = counted
    await runner.http.post("http://sb/_sandbox/twilio/options", json={"mps": 0})
    for n in range(2 * PAGE_SIZE + 10):  # sent an hour before the intent
        await send(runner, f"old {n}")
    shift(app, 3600)
    assert await reconcile(runner, "not there", now(app)) is None
    assert len(transport.lists) == 1  # the first old one, sent, ended the scan


async def test_a_messaging_service_message_is_matched_by_its_service(
    runner: Runner, app: FastAPI
) -> None:
    intent = now(app)
    await send(runner, "via service")  # from a number: another sender
    assert await reconcile(runner, "via service", intent, messaging_service_sid=SERVICE,
                           from_number=None) is None  # fmt: skip
    made = await send(runner, "via service", messaging_service_sid=SERVICE, from_number=None)
    found = await reconcile(runner, "via service", intent, messaging_service_sid=SERVICE,
                            from_number=None)  # fmt: skip
    assert found is not None and found.data["sid"] == made.data["sid"]
    assert found.data["messaging_service_sid"] == SERVICE


async def test_an_invalid_number_was_never_sent(counted: tuple[Runner, Counted]) -> None:
    runner, transport = counted
    assert await reconcile(runner, "x", CLOCK, to="not a number") is None
    assert transport.lists == []


async def test_a_lookup_that_fails_raises_rather_than_sends_again(runner: Runner) -> None:
    wrong = twilio("http://sb/twilio", token="wrong-token", from_number=FROM)
    with pytest.raises(AuthError):
        await runner.reconcile_action("twilio", "SendSms", {"to": TO, "body": "x"}, wrong, CLOCK)
