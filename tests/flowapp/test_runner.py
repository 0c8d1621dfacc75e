"""calflow.flowapp.runner: lookups, validation, failure mapping, credentials, sink, saving."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from calflow.errors import (
    ConfigError,
    FieldError,
    NotFoundError,
    RateLimitError,
    RetryableError,
    ValidationError,
)
from calflow.flowapp import ActionContext, BookingChange, Option, Registry, RetryPolicy
from calflow.flowapp.runner import Runner, failure_from_error
from calflow.integrations import Integration, IntegrationStore

from .conftest import MakeIntegration
from .fixture_app import APP

KEY = {"api_key": "sk_fixture_9f8e7d"}


@dataclass
class Provider:
    """The fake provider behind the runner's HTTP client."""

    answer: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(200, json={})
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


@dataclass
class Sink:
    changes: list[BookingChange] = field(default_factory=list)

    async def __call__(self, change: BookingChange) -> None:
        self.changes.append(change)


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def runner(provider: Provider, sink: Sink, store: IntegrationStore) -> AsyncIterator[Runner]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider.handle)) as http:
        # No retries and no waiting: one request per call, so nothing sleeps.
        policy = RetryPolicy(max_retries=0, max_total_wait_s=0)
        async with Runner(Registry([APP]), store, http, policy, sink) as runner:
            yield runner
        assert not http.is_closed  # a client the runner was given is the caller's to close


@pytest.fixture
def mem(make_integration: MakeIntegration) -> Integration:
    return make_integration({"region": "eu"}, KEY)


async def _behave(runner: Runner, mode: str, integration: Any, **kw: Any) -> Any:
    return await runner.run_action("fixture", "Behave", {"mode": mode}, integration, **kw)


# --- lookups and configuration --------------------------------------------------------


async def test_unknown_app_action_and_fetcher_are_not_found(runner: Runner) -> None:
    with pytest.raises(NotFoundError, match=r"unknown app 'nope' \(installed: fixture\)"):
        await runner.run_action("nope", "Echo", {})
    with pytest.raises(NotFoundError, match=r"app 'fixture' has no action 'Fly'.*Behave"):
        await runner.run_action("fixture", "Fly", {})
    with pytest.raises(NotFoundError, match=r"no fetcher 'shapes' \(it has: colors, sizes\)"):
        await runner.fetch_options("fixture", "shapes")


async def test_unknown_integration_is_not_found(runner: Runner) -> None:
    with pytest.raises(NotFoundError, match="no integration named or with id 'ghost'"):
        await _behave(runner, "ok", "ghost")


async def test_an_app_with_required_fields_needs_an_integration(runner: Runner) -> None:
    with pytest.raises(ConfigError, match="app 'fixture' needs an integration"):
        await _behave(runner, "ok", None)


async def test_an_integration_of_another_app_is_refused(
    runner: Runner, make_integration: MakeIntegration
) -> None:
    other = make_integration({}, KEY, app_key="cal_com", name="cal")
    with pytest.raises(ConfigError, match="'cal' belongs to app 'cal_com', not 'fixture'"):
        await _behave(runner, "ok", other)


async def test_incomplete_credentials_are_a_config_error(
    runner: Runner, make_integration: MakeIntegration
) -> None:
    bare = make_integration({"region": "eu"}, {}, name="bare")
    with pytest.raises(ConfigError) as info:
        await _behave(runner, "ok", bare)
    assert not isinstance(info.value, ValidationError)
    assert "integration 'bare'" in info.value.message
    assert "API key (api_key) or Token (token)" in info.value.message


async def test_missing_credential_named_by_require_is_a_config_error(
    runner: Runner, make_integration: MakeIntegration
) -> None:
    no_region = make_integration({}, {"token": "t"}, name="tok")
    with pytest.raises(ConfigError) as info:
        await _behave(runner, "require", no_region)
    assert info.value.message == "integration 'tok' has no 'region' set for app 'fixture'"


async def test_require_returns_the_value(runner: Runner, mem: Integration) -> None:
    result = await _behave(runner, "require", mem)
    assert result.success and result.data == {"region": "eu"}


# --- input ----------------------------------------------------------------------------


async def test_invalid_input_is_a_validation_error_before_anything_runs(
    runner: Runner, mem: Integration, sink: Sink
) -> None:
    with pytest.raises(ValidationError) as info:
        await _behave(runner, "dance", mem)
    assert [(e.path, e.rule) for e in info.value.errors] == [("mode", "enum")]
    with pytest.raises(ValidationError) as info:
        await runner.run_action("fixture", "Behave", None, mem)
    assert info.value.errors == [FieldError("mode", "is required", "required")]
    assert sink.changes == []


async def test_input_is_coerced_and_defaulted_before_execute(
    runner: Runner, mem: Integration
) -> None:
    result = await runner.run_action("fixture", "echo", {"name": "Ada", "count": "3"}, mem)
    assert result.success and result.port == "success"
    assert result.data == {"name": "Ada", "count": 3, "flag": False}


async def test_a_validation_error_raised_by_the_action_propagates(
    runner: Runner, mem: Integration
) -> None:
    with pytest.raises(ValidationError, match="start is in the past"):
        await _behave(runner, "invalid", mem)


# --- results and failure mapping ------------------------------------------------------


async def test_answers_on_declared_ports(runner: Runner, mem: Integration) -> None:
    ok = await _behave(runner, "ok", mem)
    assert (ok.success, ok.port, ok.data, ok.code) == (True, "success", {"mode": "ok"}, None)
    conflict = await _behave(runner, "conflict", mem)
    assert (conflict.success, conflict.port) == (True, "conflict")
    fail = await _behave(runner, "fail", mem)
    assert (fail.success, fail.port, fail.code) == (False, "error", "NOPE")
    assert fail.message == "declined by the action"


@pytest.mark.parametrize(
    ("mode", "code", "data"),
    [
        ("retryable", "UNAVAILABLE", {"status": 503}),
        ("rate_limit", "RATE_LIMIT", {"retry_after": 7.0}),
        ("auth", "AUTH_ERROR", {"status": 401}),
        ("fatal", "PROVIDER_ERROR", {"status": 422}),
    ],
)
async def test_provider_errors_become_failure_results(
    runner: Runner, mem: Integration, mode: str, code: str, data: dict[str, Any]
) -> None:
    result = await _behave(runner, mode, mem)
    assert (result.success, result.port, result.code, result.data) == (False, "error", code, data)
    assert result.message


@pytest.mark.parametrize(
    ("mode", "exc"), [("retryable", RetryableError), ("rate_limit", RateLimitError)]
)
async def test_raise_retryable_lets_the_engine_see_the_error(
    runner: Runner, mem: Integration, mode: str, exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        await _behave(runner, mode, mem, raise_retryable=True)
    # Errors that are not retryable still come back as results.
    result = await _behave(runner, "auth", mem, raise_retryable=True)
    assert result.code == "AUTH_ERROR"


async def test_a_crashing_action_is_an_internal_error_result(
    runner: Runner, mem: Integration, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="calflow.runner"):
        result = await _behave(runner, "crash", mem)
    assert (result.success, result.port, result.code) == (False, "error", "INTERNAL_ERROR")
    assert result.message == "KeyError: 'no_such_field'"
    assert "fixture.Behave crashed" in caplog.text


async def test_a_result_on_an_undeclared_port_is_an_internal_error(
    runner: Runner, mem: Integration
) -> None:
    result = await _behave(runner, "bad_port", mem)
    assert (result.success, result.port, result.code) == (False, "error", "INTERNAL_ERROR")
    assert "undeclared port 'teleport'" in (result.message or "")


@pytest.mark.parametrize(
    ("mode", "code"),
    [("fail", "NOPE"), ("rate_limit", "RATE_LIMIT"), ("crash", "INTERNAL_ERROR")],
)
async def test_failures_go_to_the_actions_own_error_port(
    runner: Runner, mem: Integration, mode: str, code: str
) -> None:
    result = await runner.run_action("fixture", "Strict", {"mode": mode}, mem)
    assert (result.success, result.port, result.code) == (False, "failed", code)


async def test_undeclared_port_on_an_action_with_its_own_error_port(
    runner: Runner, mem: Integration
) -> None:
    result = await runner.run_action("fixture", "Strict", {"mode": "conflict"}, mem)
    assert (result.port, result.code) == ("failed", "INTERNAL_ERROR")


def test_failure_from_error_of_a_plain_calflow_error_keeps_its_code() -> None:
    result = failure_from_error(NotFoundError("no such booking"))
    assert (result.success, result.code, result.message) == (False, "NOT_FOUND", "no such booking")
    assert result.to_dict() == {
        "success": False,
        "port": "error",
        "data": None,
        "code": "NOT_FOUND",
        "message": "no such booking",
    }


# --- HTTP through the runner ----------------------------------------------------------


async def _call(runner: Runner, mem: Integration, **data: Any) -> Any:
    return await runner.run_action("fixture", "CallProvider", data, mem)


async def test_http_success_uses_the_integrations_secret_and_default_base_url(
    runner: Runner, provider: Provider, mem: Integration
) -> None:
    provider.answer = lambda r: httpx.Response(200, json={"things": [1]})
    result = await _call(runner, mem)
    assert result.success and result.data == {"things": [1]}
    sent = provider.requests[0]
    assert str(sent.url) == "https://fixture.test/things"
    assert sent.headers["authorization"] == "Bearer sk_fixture_9f8e7d"


async def test_http_accepted_404_goes_to_not_found(
    runner: Runner, provider: Provider, mem: Integration
) -> None:
    provider.answer = lambda r: httpx.Response(404, json={"message": "no thing"})
    result = await _call(runner, mem, path="/things/9", accept="404")
    assert (result.success, result.port) == (True, "not_found")


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (429, "RATE_LIMIT", "provider rate limit reached: too fast"),
        (503, "UNAVAILABLE", "provider: too fast"),
        (401, "AUTH_ERROR", "provider: too fast"),
        (422, "PROVIDER_ERROR", "provider: too fast"),
        (404, "PROVIDER_ERROR", "provider: too fast"),
    ],
)
async def test_http_errors_map_to_failure_codes(
    runner: Runner,
    provider: Provider,
    mem: Integration,
    status: int,
    code: str,
    message: str,
) -> None:
    provider.answer = lambda r: httpx.Response(status, json={"message": "too fast"})
    result = await _call(runner, mem)
    assert (result.success, result.port, result.code) == (False, "error", code)
    assert result.message == message
    assert len(provider.requests) == 1


async def test_http_html_success_is_a_bad_response_failure(
    runner: Runner, provider: Provider, mem: Integration
) -> None:
    provider.answer = lambda r: httpx.Response(200, text="<title>Welcome to nginx</title>")
    result = await _call(runner, mem)
    assert (result.success, result.code) == (False, "BAD_RESPONSE")
    assert "200 OK" in (result.message or "")
    assert "nginx" not in (result.message or "")  # the page itself is never echoed


# --- fetchers -------------------------------------------------------------------------


async def test_fetcher_returns_options(runner: Runner, mem: Integration) -> None:
    options = await runner.fetch_options("fixture", "Colors", mem)
    assert [o.to_dict() for o in options] == [
        {"value": "red", "label": "Red"},
        {"value": "blue", "label": "Blue", "data": {"hex": "#00f"}},
    ]


async def test_fetcher_depends_on_missing_from_context_is_a_validation_error(
    runner: Runner, mem: Integration
) -> None:
    for context in (None, {}, {"color": ""}, {"color": None}):
        with pytest.raises(ValidationError) as info:
            await runner.fetch_options("fixture", "sizes", mem, context)
        assert "fetcher 'sizes' needs color in its context" in info.value.message
        assert [(e.path, e.rule) for e in info.value.errors] == [("color", "required")]


async def test_fetcher_gets_its_context_and_the_integration(
    runner: Runner, mem: Integration
) -> None:
    options = await runner.fetch_options("fixture", "sizes", mem, {"color": "red"})
    assert options == [Option("S", "red S", "eu"), Option("M", "red M", "eu")]


# --- booking sink and saving ----------------------------------------------------------


async def test_booking_changes_reach_the_sink(runner: Runner, mem: Integration, sink: Sink) -> None:
    result = await _behave(runner, "booking", mem)
    assert result.success and result.meta == {"booking_changes": 1}
    assert sink.changes == [
        BookingChange("fixture", "created", {"uid": "bk_1"}, "int_mem", input={"mode": "booking"})
    ]


async def test_no_booking_change_no_meta(runner: Runner, mem: Integration, sink: Sink) -> None:
    result = await _behave(runner, "ok", mem)
    assert result.meta == {} and sink.changes == []


async def test_ctx_save_goes_through_the_store(runner: Runner, store: IntegrationStore) -> None:
    added = store.add("fixture", "main", {"region": "us"}, {"api_key": "k1"})
    result = await runner.run_action("fixture", "Behave", {"mode": "save"}, "main")
    assert result.success and result.data == {"region": "eu"}
    saved = store.get(added.id)
    assert saved.config == {"region": "eu"}
    assert saved.value("token") == "tok-new"
    assert saved.value("api_key") == "k1"


async def test_ctx_save_needs_an_integration_and_a_saver(mem: Integration) -> None:
    async with httpx.AsyncClient() as http:
        no_store = ActionContext(app=APP, integration=mem, http=http)
        with pytest.raises(ConfigError, match="cannot save values"):
            await no_store.save(config={"region": "us"})
        nothing = ActionContext(app=APP, integration=None, http=http, saver=lambda i, c, s: i)
        with pytest.raises(ConfigError, match="no integration to save values in"):
            await nothing.save_secrets({"token": "x"})


async def test_context_value_prefers_the_integration_then_the_default(
    make_integration: MakeIntegration,
) -> None:
    integration = make_integration({"base_url": "", "region": "eu"}, {"api_key": "sk"})
    async with httpx.AsyncClient() as http:
        ctx = ActionContext(app=APP, integration=integration, http=http)
        assert ctx.value("region") == "eu"
        assert ctx.value("api_key") == "sk"
        assert ctx.value("base_url") == "https://fixture.test"  # empty falls back to default
        assert ctx.value("token") is None
        assert ctx.value("not_a_field") is None
        none = ActionContext(app=APP, integration=None, http=http)
        with pytest.raises(ConfigError, match="no integration has no 'token' set"):
            none.require("token")


async def test_runner_closes_only_the_http_client_it_made() -> None:
    runner = Runner(Registry([APP]))
    http = runner.http
    assert runner.http is http
    await runner.aclose()
    assert http.is_closed


# --- the integration cache ------------------------------------------------------------


async def test_named_integrations_are_cached_for_the_ttl(store: IntegrationStore) -> None:
    store.add("fixture", "main", {"region": "us"}, KEY)
    async with Runner(Registry([APP]), store, integration_ttl_s=3600) as runner:
        assert (await _behave(runner, "require", "main")).data == {"region": "us"}
        store.update("main", config={"region": "ap"})  # as another process would
        assert (await _behave(runner, "require", "main")).data == {"region": "us"}
        runner.forget()
        assert (await _behave(runner, "require", "main")).data == {"region": "ap"}


async def test_a_zero_ttl_reads_the_store_every_time(store: IntegrationStore) -> None:
    store.add("fixture", "main", {"region": "us"}, KEY)
    async with Runner(Registry([APP]), store, integration_ttl_s=0) as runner:
        await _behave(runner, "require", "main")
        store.update("main", config={"region": "ap"})
        assert (await _behave(runner, "require", "main")).data == {"region": "ap"}


async def test_saving_through_the_runner_is_seen_at_once(store: IntegrationStore) -> None:
    added = store.add("fixture", "main", {"region": "us"}, KEY)
    async with Runner(Registry([APP]), store, integration_ttl_s=3600) as runner:
        await _behave(runner, "require", added.id)  # cached under the id too
        await _behave(runner, "require", "main")
        await _behave(runner, "save", "main")
        assert (await _behave(runner, "require", "main")).data == {"region": "eu"}
        assert (await _behave(runner, "require", added.id)).data == {"region": "eu"}


def test_mask_secrets_hides_every_secret_value_of_the_integration() -> None:
    """A crash message that mentions a secret (a URL with a key, say) is masked."""
    from datetime import UTC, datetime

    from pydantic import SecretStr

    from calflow.flowapp.runner import mask_secrets

    now = datetime.now(UTC)
    integration = Integration(
        id="int_x",
        workspace_id="default",
        app_key="fixture",
        name="x",
        config={},
        secrets={"api_key": SecretStr("sk_live_very_secret")},
        created_at=now,
        updated_at=now,
    )
    text = "ConnectError: https://h/?key=sk_live_very_secret failed"
    assert mask_secrets(text, integration) == "ConnectError: https://h/?key=******** failed"
    assert mask_secrets(text, None) == text
