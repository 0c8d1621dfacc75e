"""Fixture actions: each exercises one part of the framework."""

from __future__ import annotations

from typing import Any

from calflow.errors import (
    AuthError,
    FatalProviderError,
    FieldError,
    RateLimitError,
    RetryableError,
    ValidationError,
)
from calflow.flowapp import (
    CONFLICT,
    ERROR,
    NOT_FOUND,
    SUCCESS,
    Action,
    ActionContext,
    ActionResult,
    BookingChange,
    OutputPort,
    ProviderClient,
)


class Echo(Action):
    key = "Echo"
    name = "Echo"
    description = "Returns its prepared input."
    schema_file = "echo.json"
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult.ok(data)


class Contact(Action):
    key = "contact_person"
    name = "Contact a person"
    description = "oneOf variants: by email or by phone."
    schema_file = "contact.json"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult.ok(data)


class Behave(Action):
    """Does what ``mode`` says: answer, raise a given error, crash, save, report a booking."""

    key = "Behave"
    name = "Behave"
    description = "Behaves as told."
    schema_file = "behave.json"
    ports = (SUCCESS, CONFLICT, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        mode = data["mode"]
        if mode == "ok":
            return ActionResult.ok({"mode": mode})
        if mode == "conflict":
            return ActionResult.ok({"taken": True}, port="conflict")
        if mode == "fail":
            return ActionResult.fail("NOPE", "declined by the action")
        if mode == "bad_port":
            return ActionResult.ok(port="teleport")
        if mode == "retryable":
            raise RetryableError("provider is down", status=503)
        if mode == "rate_limit":
            raise RateLimitError("slow down", retry_after=7.0, status=429)
        if mode == "auth":
            raise AuthError("the API key was revoked", status=401)
        if mode == "fatal":
            raise FatalProviderError("event type is hidden", status=422, body={"x": 1})
        if mode == "invalid":
            raise ValidationError("start is in the past", [FieldError("start", "past", "x")])
        if mode == "crash":
            return ActionResult.ok(data["no_such_field"])
        if mode == "require":
            return ActionResult.ok({"region": ctx.require("region")})
        if mode == "save":
            await ctx.save(config={"region": "eu"}, secrets={"token": "tok-new"})
            return ActionResult.ok({"region": ctx.value("region")})
        if mode == "booking":
            integration_id = ctx.integration.id if ctx.integration else None
            await ctx.booking_changed(
                BookingChange("fixture", "created", {"uid": "bk_1"}, integration_id, input=data)
            )
            return ActionResult.ok({"uid": "bk_1"})
        raise AssertionError(f"unhandled mode {mode}")


class Strict(Behave):
    """Like Behave, but its error port is called ``failed``."""

    key = "Strict"
    name = "Strict"
    ports = (SUCCESS, OutputPort("failed", "It failed.", error=True))


class CallProvider(Action):
    """GET ``path`` from the provider with the integration's API key."""

    key = "CallProvider"
    name = "Call the provider"
    description = "One HTTP request through ProviderClient."
    schema_file = "call.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = ProviderClient(
            ctx.http,
            ctx.require("base_url"),
            headers={"Authorization": f"Bearer {ctx.require('api_key')}"},
            policy=ctx.policy,
        )
        resp = await client.request("GET", data["path"], accept=data["accept"])
        if resp.status == 404:
            return ActionResult.ok(None, port="not_found")
        return ActionResult.ok(resp.body)


class Pick(Action):
    key = "pick"
    name = "Pick"
    description = "Fields whose options come from fetchers."
    schema_file = "pick.json"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult.ok(data)
