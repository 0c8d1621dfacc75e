"""The Twilio app: SendSms and GetAccount against the Twilio sandbox (ASGI and sockets)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI

from calflow.errors import ConfigError, RetryableError, ValidationError
from calflow.flowapp import ActionResult, RetryPolicy
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration
from calflow.sandbox import SandboxConfig, create_sandbox_app
from calflow.sandbox.server import run_in_thread
from e2e.sandbox_process import free_port

from .savvycal._support import make_integration

SID = "AC" + "1234567890abcdef" * 2
TOKEN = "sandbox-auth-token-0123"
FROM = "+15005550006"
FAST = RetryPolicy(
    max_retries=2,
    backoff_base_s=0.001,
    default_rate_wait_s=0.001,
    max_total_wait_s=0.01,
    max_rate_retries=2,
)
CONFIG = SandboxConfig(twilio_account_sid=SID, twilio_auth_token=TOKEN, twilio_slow_s=1.0)


def twilio(base_url: str, token: str = TOKEN, **config: Any) -> Integration:
    found = make_integration(
        {"base_url": base_url, "account_sid": SID, **config}, {"auth_token": token}
    )
    return dataclasses.replace(found, app_key="twilio", name="twilio test")


async def sandbox_messages(app: FastAPI) -> list[dict[str, Any]]:
    """The messages the in-process sandbox recorded."""
    return [m.to_json() for m in app.state.sandbox.twilio.state.messages.values()]


@pytest.fixture
def app() -> FastAPI:
    return create_sandbox_app(CONFIG)


@pytest.fixture
async def runner(app: FastAPI) -> AsyncIterator[Runner]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    async with Runner(http=http, policy=FAST, publish=False) as r:
        yield r
    await http.aclose()


async def send(
    runner: Runner, data: dict[str, Any], integration: Integration | None = None
) -> ActionResult:
    found = integration or twilio("http://sb/twilio", from_number=FROM)
    return await runner.run_action("twilio", "SendSms", data, found)


async def test_sent_carries_the_sid_and_twilio_fields(runner: Runner, app: FastAPI) -> None:
    result = await send(runner, {"to": "+1 (415) 555-2671", "body": "Your call is at 10:00"})
    assert (result.success, result.port) == (True, "sent")
    data = result.data
    assert data["sid"].startswith("SM") and len(data["sid"]) == 34
    assert data["status"] == "queued" and data["num_segments"] == 1
    assert (data["to"], data["from"]) == ("+14155552671", FROM)
    assert data["account_sid"] == SID
    stored = await sandbox_messages(app)
    assert [(m["sid"], m["to"], m["body"]) for m in stored] == [
        (data["sid"], "+14155552671", "Your call is at 10:00")
    ]


async def test_long_unicode_body_reports_segments(runner: Runner) -> None:
    result = await send(runner, {"to": "+14155552671", "body": "ł" * 71})
    assert result.port == "sent" and result.data["num_segments"] == 2


async def test_region_normalizes_national_numbers(runner: Runner, app: FastAPI) -> None:
    national = {"to": "(415) 555-2671", "body": "x", "default_phone_region": "us"}
    assert (await send(runner, national)).data["to"] == "+14155552671"
    by_integration = twilio("http://sb/twilio", from_number=FROM, default_phone_region="US")
    result = await send(runner, {"to": "415 555 2671", "body": "x"}, by_integration)
    assert result.data["to"] == "+14155552671"


@pytest.mark.parametrize("to", ["12345", "+15558675310", "not a phone", "415 555 2671"])
async def test_invalid_to_answers_invalid_number_without_calling(
    runner: Runner, app: FastAPI, to: str
) -> None:
    result = await send(runner, {"to": to, "body": "x"})
    assert (result.success, result.port, result.code) == (True, "invalid_number", "INVALID_NUMBER")
    assert result.data["to"] == to and result.data["twilio_code"] is None
    assert await sandbox_messages(app) == []


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
async def test_twilio_recipient_errors_answer_invalid_number(
    runner: Runner, to: str, code: int
) -> None:
    result = await send(runner, {"to": to, "body": "x"})
    assert (result.port, result.code) == ("invalid_number", "INVALID_NUMBER")
    assert result.data["twilio_code"] == code and result.data["to"] == to
    assert str(code) in result.data["reason"]


async def test_messaging_service_and_status_callback_are_sent(runner: Runner, app: FastAPI) -> None:
    service = "MG" + "b" * 32
    hook = "https://hooks.example.com/sms-status"
    result = await send(
        runner,
        {
            "to": "+14155552671",
            "body": "x",
            "messaging_service_sid": service,
            "status_callback": hook,
        },
        twilio("http://sb/twilio"),
    )
    assert result.port == "sent"
    assert result.data["status"] == "accepted" and result.data["messaging_service_sid"] == service
    handle = app.state.sandbox
    assert handle.twilio.state.messages[result.data["sid"]].status_callback == hook


async def test_integration_messaging_service_is_the_last_fallback(runner: Runner) -> None:
    service = "MG" + "c" * 32
    found = twilio("http://sb/twilio", messaging_service_sid=service)
    result = await send(runner, {"to": "+14155552671", "body": "x"}, found)
    assert result.data["messaging_service_sid"] == service and result.data["from"] is None


async def test_no_sender_is_a_config_error(runner: Runner) -> None:
    with pytest.raises(ConfigError, match="sender"):
        await send(runner, {"to": "+14155552671", "body": "x"}, twilio("http://sb/twilio"))


@pytest.mark.parametrize(
    "data",
    [
        {"to": "+14155552671"},
        {"body": "x"},
        {"to": "+14155552671", "body": ""},
        {"to": "+14155552671", "body": "x" * 1601},
        {"to": "+14155552671", "body": "x", "messaging_service_sid": "MG1"},
        {"to": "+14155552671", "body": "x", "default_phone_region": "USA"},
        {"to": "+14155552671", "body": "x", "extra": 1},
    ],
)
async def test_bad_input_is_a_validation_error(runner: Runner, data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        await send(runner, data)


async def test_bad_credentials_fail_with_auth_error_and_twilio_code(runner: Runner) -> None:
    found = twilio("http://sb/twilio", token="wrong-token", from_number=FROM)
    result = await send(runner, {"to": "+14155552671", "body": "x"}, found)
    assert (result.success, result.port, result.code) == (False, "error", "AUTH_ERROR")
    assert result.data == {
        "status": 401,
        "twilio_code": 20003,
        "more_info": "https://www.twilio.com/docs/errors/20003",
    }
    assert "wrong-token" not in str(result.to_dict())


async def test_other_400_fails_with_the_provider_message(runner: Runner) -> None:
    found = twilio("http://sb/twilio", from_number="+14155550123")
    result = await send(runner, {"to": "+14155552671", "body": "x"}, found)
    assert (result.success, result.code) == (False, "PROVIDER_ERROR")
    assert result.data["twilio_code"] == 21606 and "21606" in str(result.message)


async def test_rate_limit_is_retried_then_fails_retryable(runner: Runner) -> None:
    result = await send(runner, {"to": "+15005550429", "body": "x"})
    assert (result.success, result.code) == (False, "RATE_LIMIT")


async def test_twilio_500_fails_unavailable_and_is_not_retried(runner: Runner) -> None:
    result = await send(runner, {"to": "+15005550500", "body": "x"})
    assert (result.success, result.code) == (False, "UNAVAILABLE")
    assert result.data["status"] == 500


async def test_500_is_raised_to_a_durable_engine(app: FastAPI) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    async with Runner(http=http, policy=FAST, publish=False) as r:
        with pytest.raises(RetryableError):
            await r.run_action(
                "twilio",
                "SendSms",
                {"to": "+15005550500", "body": "x"},
                twilio("http://sb/twilio", from_number=FROM),
                raise_retryable=True,
            )
    await http.aclose()


class Recorder:
    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def run_mock(handler: Recorder, data: dict[str, Any]) -> ActionResult:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with Runner(http=http, policy=FAST, publish=False) as r:
        result = await r.run_action(
            "twilio", "SendSms", data, twilio("https://api.test", from_number=FROM)
        )
    await http.aclose()
    return result


async def test_request_is_twilio_shaped() -> None:
    created = {
        "sid": "SM" + "1" * 32,
        "status": "queued",
        "num_segments": "1",
        "to": "+14155552671",
    }
    handler = Recorder(httpx.Response(201, json=created))
    result = await run_mock(handler, {"to": "+14155552671", "body": "Hi & bye"})
    assert result.port == "sent"
    (request,) = handler.requests
    assert str(request.url) == f"https://api.test/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert dict(parse_qsl(request.content.decode())) == {
        "To": "+14155552671",
        "From": FROM,
        "Body": "Hi & bye",
    }


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (httpx.Response(502, text="<html><title>Bad gateway</title></html>"), "MAYBE_SENT"),
        (httpx.Response(504, json={"message": "Gateway timeout"}), "MAYBE_SENT"),
        (httpx.ReadTimeout("read timed out"), "MAYBE_SENT"),
        (httpx.RemoteProtocolError("server disconnected"), "MAYBE_SENT"),
        (httpx.ConnectError("refused"), "UNAVAILABLE"),
        (httpx.ConnectTimeout("connect timed out"), "UNAVAILABLE"),
        (
            httpx.Response(503, json={"code": 20503, "message": "Service unavailable"}),
            "UNAVAILABLE",
        ),
    ],
)
async def test_ambiguous_failures_are_never_retried(
    answer: httpx.Response | Exception, code: str
) -> None:
    handler = Recorder(answer)
    result = await run_mock(handler, {"to": "+14155552671", "body": "x"})
    assert (result.success, result.code) == (False, code)
    assert len(handler.requests) == 1
    if code == "MAYBE_SENT":
        assert "may have been sent" in str(result.message)
        assert result.data["to"] == "+14155552671"


async def test_answer_without_a_sid_is_a_bad_response() -> None:
    result = await run_mock(
        Recorder(httpx.Response(201, json={"status": "queued"})),
        {"to": "+14155552671", "body": "x"},
    )
    assert (result.success, result.code) == (False, "BAD_RESPONSE")


async def test_get_account_checks_the_credentials(runner: Runner) -> None:
    ok = await runner.run_action("twilio", "GetAccount", {}, twilio("http://sb/twilio"))
    assert (ok.success, ok.data["sid"], ok.data["status"]) == (True, SID, "active")
    bad = await runner.run_action(
        "twilio", "GetAccount", {}, twilio("http://sb/twilio", token="x" * 8)
    )
    assert (bad.success, bad.code, bad.data["twilio_code"]) == (False, "AUTH_ERROR", 20003)


# --- over real sockets ---------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with run_in_thread(CONFIG) as root:
        yield root


async def test_over_a_socket_a_timeout_after_sending_is_maybe_sent(served: str) -> None:
    async with Runner(policy=FAST, publish=False, timeout_s=0.3) as r:
        found = twilio(f"{served}/twilio", from_number=FROM)
        result = await r.run_action(
            "twilio", "SendSms", {"to": "+15005550504", "body": "late"}, found
        )
        assert (result.success, result.code) == (False, "MAYBE_SENT")
        fine = await r.run_action("twilio", "SendSms", {"to": "+14155552671", "body": "ok"}, found)
        assert fine.port == "sent"
        state = (await r.http.get(f"{served}/_sandbox/state")).json()["twilio"]
    bodies = [m["body"] for m in state["messages"]]
    assert bodies.count("late") == 1 and bodies.count("ok") == 1  # sent once, never retried


async def test_over_a_socket_nothing_listening_is_unavailable() -> None:
    async with Runner(policy=FAST, publish=False, timeout_s=2) as r:
        found = twilio(f"http://127.0.0.1:{free_port()}/twilio", from_number=FROM)
        result = await r.run_action("twilio", "SendSms", {"to": "+14155552671", "body": "x"}, found)
    assert (result.success, result.code) == (False, "UNAVAILABLE")
