"""calflow.flowapp.http: ProviderClient.request outcome mapping, retries and waits."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from calflow.errors import (
    AuthError,
    FatalProviderError,
    RateLimitError,
    RetryableError,
)
from calflow.flowapp.http import (
    BadResponseError,
    ProviderClient,
    RetryPolicy,
    retry_after_seconds,
)

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass(frozen=True)
class FixedBackoff(RetryPolicy):
    """Deterministic backoff (attempt + 1 seconds) so tests can assert exact waits."""

    def backoff(self, attempt: int) -> float:
        return float(attempt + 1)


@dataclass
class Fake:
    """A scripted provider: answers from ``script`` in order (the last one repeats)."""

    script: list[httpx.Response | Exception | Handler]
    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(request)
        return step

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _client(
    fake: Fake, policy: RetryPolicy | None = None, **kw: Any
) -> tuple[ProviderClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    client = ProviderClient(
        http,
        "https://api.example.test/",
        headers={"Authorization": "Bearer k"},
        policy=policy or FixedBackoff(),
        sleep=fake.sleep,
        **kw,
    )
    return client, http


async def _run(fake: Fake, policy: RetryPolicy | None = None, **kw: Any) -> Any:
    client, http = _client(fake, policy)
    async with http:
        return await client.request("GET", "/v2/things", **kw)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# --- 2xx ------------------------------------------------------------------------------


async def test_2xx_json_is_parsed() -> None:
    fake = Fake([_json(200, {"data": [1, 2]}, {"X-Req": "abc"})])
    resp = await _run(fake)
    assert resp.status == 200 and resp.ok
    assert resp.body == {"data": [1, 2]}
    assert resp.headers["x-req"] == "abc"
    assert fake.sleeps == []


@pytest.mark.parametrize("content", [b"", b"  \n"])
async def test_empty_body_is_none(content: bytes) -> None:
    resp = await _run(Fake([httpx.Response(204, content=content)]))
    assert resp.status == 204 and resp.body is None


async def test_2xx_html_is_bad_response_by_status_and_type_only() -> None:
    page = "<html><head><title> Sign in - Portal </title></head><body>…</body></html>"
    fake = Fake([httpx.Response(200, text=page, headers={"content-type": "text/html"})])
    with pytest.raises(BadResponseError) as info:
        await _run(fake)
    exc = info.value
    assert exc.code == "BAD_RESPONSE"
    assert isinstance(exc, FatalProviderError) and exc.status == 200
    assert "Sign in" not in exc.message and "Portal" not in exc.message
    assert "200 OK" in exc.message and "text/html" in exc.message
    assert "instead of JSON" in exc.message and "<html>" not in exc.message
    assert exc.body is None
    assert len(fake.requests) == 1


async def test_2xx_plain_text_is_bad_response_without_echoing_it() -> None:
    fake = Fake([httpx.Response(200, text="OK but not json\nsecond line")])
    with pytest.raises(BadResponseError, match="200 OK with text/plain instead of JSON") as info:
        await _run(fake)
    assert "second line" not in info.value.message


async def test_request_sends_url_headers_params_and_body() -> None:
    fake = Fake([_json(201, {"id": 1})])
    client, http = _client(fake)
    async with http:
        resp = await client.request(
            "POST",
            "v2/bookings",
            params={"take": 10, "status": None},
            json_body={"start": "2026-05-01T10:00:00Z"},
            headers={"cal-api-version": "2024-08-13"},
        )
    assert resp.status == 201
    sent = fake.requests[0]
    assert str(sent.url) == "https://api.example.test/v2/bookings?take=10"
    assert sent.headers["authorization"] == "Bearer k"
    assert sent.headers["cal-api-version"] == "2024-08-13"
    assert json.loads(sent.content) == {"start": "2026-05-01T10:00:00Z"}


async def test_form_bodies_are_sent_form_encoded() -> None:
    fake = Fake([_json(201, {"sid": "SM1"})])
    client, http = _client(fake)
    async with http:
        await client.request("POST", "/Messages.json", form={"To": "+4915112345678", "Body": "hi"})
    sent = fake.requests[0]
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.content == b"To=%2B4915112345678&Body=hi"


# --- 429 and waits --------------------------------------------------------------------


async def test_429_waits_retry_after_seconds_then_succeeds() -> None:
    fake = Fake([_json(429, {"message": "slow"}, {"Retry-After": "2"}), _json(200, {"ok": 1})])
    resp = await _run(fake)
    assert resp.body == {"ok": 1}
    assert fake.sleeps == [2.0]
    assert len(fake.requests) == 2


async def test_429_waits_until_a_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake = Fake([_json(429, {}, {"Retry-After": when}), _json(200, {})])
    await _run(fake)
    assert len(fake.sleeps) == 1
    assert 28.0 <= fake.sleeps[0] <= 30.0


async def test_429_cal_com_reset_header_is_seconds_remaining() -> None:
    fake = Fake([_json(429, {}, {"X-RateLimit-Reset-Default": "3"}), _json(200, {})])
    await _run(fake)
    assert fake.sleeps == [3.0]


async def test_429_epoch_reset_header_waits_until_then() -> None:
    reset = str(int(time.time()) + 20)
    fake = Fake([_json(429, {}, {"X-RateLimit-Reset": reset}), _json(200, {})])
    await _run(fake)
    assert len(fake.sleeps) == 1
    assert 18.0 <= fake.sleeps[0] <= 20.0


async def test_429_without_any_header_waits_the_default() -> None:
    fake = Fake([_json(429, {}), _json(200, {})])
    await _run(fake, FixedBackoff(default_rate_wait_s=4.5))
    assert fake.sleeps == [4.5]


async def test_429_with_an_unreadable_retry_after_waits_the_default() -> None:
    fake = Fake([_json(429, {}, {"Retry-After": "soon"}), _json(200, {})])
    await _run(fake, FixedBackoff(default_rate_wait_s=4.0))
    assert fake.sleeps == [4.0]


async def test_429_beyond_the_total_wait_bound_is_a_rate_limit_error() -> None:
    fake = Fake([_json(429, {"message": "Too many requests"}, {"Retry-After": "4"})])
    with pytest.raises(RateLimitError) as info:
        await _run(fake, FixedBackoff(max_total_wait_s=10))
    exc = info.value
    assert exc.code == "RATE_LIMIT"
    assert exc.retry_after == 4.0 and exc.status == 429
    assert "Too many requests" in exc.message
    # 4 + 4 fits in 10 s; a third wait would not, so the third 429 is final.
    assert fake.sleeps == [4.0, 4.0]
    assert len(fake.requests) == 3


async def test_429_retries_are_bounded_in_number_too() -> None:
    fake = Fake([_json(429, {}, {"Retry-After": "0"})])
    with pytest.raises(RateLimitError):
        await _run(fake, FixedBackoff(max_rate_retries=2))
    assert fake.sleeps == [0.0, 0.0]
    assert len(fake.requests) == 3


async def test_429_waits_do_not_use_up_5xx_retries() -> None:
    fake = Fake(
        [
            _json(503, {}),
            _json(429, {}, {"Retry-After": "1"}),
            _json(503, {}),
            _json(200, {"ok": True}),
        ]
    )
    resp = await _run(fake, FixedBackoff(max_retries=2))
    assert resp.body == {"ok": True}
    assert fake.sleeps == [1.0, 1.0, 2.0]


async def test_429_with_html_body_still_waits_and_names_its_type() -> None:
    page = "<html><title>Slow down there</title></html>"
    fake = Fake([httpx.Response(429, text=page, headers={"content-type": "text/html"})])
    with pytest.raises(RateLimitError, match="429 Too Many Requests with text/html") as info:
        await _run(fake, FixedBackoff(max_total_wait_s=0))
    assert "Slow down" not in info.value.message
    assert fake.sleeps == []
    assert len(fake.requests) == 1


# --- 5xx, timeouts, connection errors -------------------------------------------------


async def test_5xx_is_retried_max_retries_times_with_backoff_then_retryable() -> None:
    fake = Fake([_json(503, {"message": "maintenance"})])
    with pytest.raises(RetryableError) as info:
        await _run(fake, FixedBackoff(max_retries=3))
    exc = info.value
    assert not isinstance(exc, RateLimitError)
    assert exc.status == 503 and exc.code == "RETRYABLE"
    assert "maintenance" in exc.message
    assert fake.sleeps == [1.0, 2.0, 3.0]
    assert len(fake.requests) == 4


async def test_5xx_then_success_returns_the_success() -> None:
    fake = Fake([_json(500, {}), _json(502, {}), _json(200, {"n": 1})])
    resp = await _run(fake)
    assert resp.body == {"n": 1}
    assert fake.sleeps == [1.0, 2.0]


async def test_408_is_retryable() -> None:
    fake = Fake([_json(408, {})])
    with pytest.raises(RetryableError):
        await _run(fake, FixedBackoff(max_retries=1))
    assert len(fake.requests) == 2


async def test_5xx_html_page_is_described_readably() -> None:
    page = "<!doctype html><title>Upstream down</title><h1>nginx</h1>"
    fake = Fake([httpx.Response(502, text=page, headers={"content-type": "text/html"})])
    with pytest.raises(RetryableError) as info:
        await _run(fake, FixedBackoff(max_retries=0))
    assert "502 Bad Gateway" in info.value.message and "text/html" in info.value.message
    assert "<h1>" not in info.value.message and "Upstream" not in info.value.message


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out", request=request)


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    ("handler", "kind", "name"),
    [(_timeout, "timed out", "ReadTimeout"), (_refused, "is unreachable", "ConnectError")],
)
async def test_transport_errors_are_retried_then_retryable(
    handler: Handler, kind: str, name: str
) -> None:
    fake = Fake([handler])
    with pytest.raises(RetryableError) as info:
        await _run(fake, FixedBackoff(max_retries=2))
    assert f"{kind} ({name}) after 3 attempts" in info.value.message
    assert isinstance(info.value.__cause__, httpx.TransportError)
    assert fake.sleeps == [1.0, 2.0]
    assert len(fake.requests) == 3


async def test_a_timeout_then_success_returns_the_success() -> None:
    fake = Fake([_timeout, _json(200, {"ok": True})])
    resp = await _run(fake)
    assert resp.body == {"ok": True}
    assert fake.sleeps == [1.0]


async def test_default_backoff_is_jittered_within_its_exponential_cap() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=3.0)
    for attempt, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (10, 3.0)]:
        for _ in range(20):
            assert cap / 2 <= policy.backoff(attempt) <= cap


async def test_default_policy_sleeps_stay_within_backoff_bounds() -> None:
    fake = Fake([_json(500, {})])
    with pytest.raises(RetryableError):
        await _run(fake, RetryPolicy(max_retries=3, backoff_base_s=1.0, backoff_max_s=8.0))
    assert len(fake.sleeps) == 3
    for attempt, wait in enumerate(fake.sleeps):
        cap = min(8.0, 2.0**attempt)
        assert cap / 2 <= wait <= cap


# --- 4xx ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_auth_errors_not_retried(status: int) -> None:
    fake = Fake([_json(status, {"message": "Invalid API key"})])
    with pytest.raises(AuthError) as info:
        await _run(fake)
    assert info.value.status == status
    assert info.value.message == "provider: Invalid API key"
    assert len(fake.requests) == 1 and fake.sleeps == []


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, {"message": "start must be in the future"}, "start must be in the future"),
        (404, {"error": "Booking not found"}, "Booking not found"),
        (422, {"detail": "eventTypeId is hidden"}, "eventTypeId is hidden"),
        (409, {"code": 7}, "answered 409 Conflict"),
    ],
)
async def test_other_4xx_are_fatal_with_the_providers_message(
    status: int, body: Any, message: str
) -> None:
    fake = Fake([_json(status, body)])
    with pytest.raises(FatalProviderError) as info:
        await _run(fake)
    exc = info.value
    assert type(exc) is FatalProviderError
    assert exc.status == status and exc.body == body
    assert exc.message == f"provider: {message}"
    assert exc.to_dict() == {"code": "PROVIDER_ERROR", "message": exc.message, "status": status}
    assert len(fake.requests) == 1


async def test_provider_name_and_error_message_are_overridable() -> None:
    class Acme(ProviderClient):
        provider_name = "Acme"

        def error_message(self, body: Any) -> str | None:
            return str(body["errors"][0]["title"])

    fake = Fake([_json(422, {"errors": [{"title": "Slot taken"}]})])
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handle)) as http:
        client = Acme(http, "https://acme.test", sleep=fake.sleep)
        with pytest.raises(FatalProviderError, match=r"^Acme: Slot taken$"):
            await client.request("GET", "/x")


@pytest.mark.parametrize("status", [404, 409, 503])
async def test_statuses_in_accept_are_returned(status: int) -> None:
    fake = Fake([_json(status, {"message": "nope"})])
    resp = await _run(fake, accept=(404, 409, 503))
    assert resp.status == status and not resp.ok
    assert resp.body == {"message": "nope"}
    assert len(fake.requests) == 1


async def test_accepted_status_with_non_json_body_is_bad_response() -> None:
    fake = Fake([httpx.Response(404, text="<title>Gone fishing</title>")])
    with pytest.raises(BadResponseError, match="404 Not Found") as info:
        await _run(fake, accept=(404,))
    assert "fishing" not in info.value.message


# --- retry_after_seconds --------------------------------------------------------------

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": email.utils.formatdate(NOW + 45, usegmt=True)}, 45.0),
        ({"Retry-After": email.utils.formatdate(NOW - 45, usegmt=True)}, 0.0),
        (
            {"Retry-After": email.utils.formatdate(NOW + 60, usegmt=True).replace("GMT", "-0000")},
            60.0,
        ),
        ({"X-RateLimit-Reset": "3"}, 3.0),
        ({"x-ratelimit-reset-default": "12"}, 12.0),
        ({"X-RateLimit-Reset": str(int(NOW) + 30)}, 30.0),
        ({"X-RateLimit-Reset": str(int(NOW) * 1000 + 7000)}, 7.0),
        ({"X-RateLimit-Reset": str(int(NOW) - 30)}, 0.0),
        ({"X-RateLimit-Reset": "soon"}, None),
        ({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"}, None),
        ({"Retry-After": "later"}, None),
        ({"Retry-After": "later", "X-RateLimit-Reset": "9"}, 9.0),
        ({"Retry-After": "2", "X-RateLimit-Reset": "9"}, 2.0),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(httpx.Headers(headers), now=NOW) == expected
