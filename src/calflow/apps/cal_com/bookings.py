"""Helpers shared by the Cal.com booking actions: response → port, and event publication."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calflow.apps.cal_com.client import CalComClient, data_of, is_slot_taken, message_of
from calflow.flowapp import ActionContext, ActionResult, BookingChange, ProviderResponse

PROVIDER = "cal_com"


def booking_path(uid: str, suffix: str = "") -> str:
    return f"/v2/bookings/{uid}{suffix}"


def result_for(
    client: CalComClient,
    resp: ProviderResponse,
    *,
    conflict: bool = False,
    not_found: bool = False,
) -> ActionResult | None:
    """The non-success result for ``resp``, or ``None`` when it succeeded."""
    if resp.ok:
        return None
    message = message_of(client, resp)
    if conflict and is_slot_taken(resp.status, message):
        return ActionResult.ok(
            {"status": resp.status, "reason": message},
            port="conflict",
            code="SLOT_TAKEN",
            message=message,
        )
    if not_found and resp.status == 404:
        return ActionResult.ok(
            {"status": 404, "reason": message},
            port="not_found",
            code="NOT_FOUND",
            message=message,
        )
    code = "NOT_FOUND" if resp.status == 404 else "PROVIDER_ERROR"
    return ActionResult.fail(code, f"Cal.com: {message}", {"status": resp.status})


async def publish(
    ctx: ActionContext,
    kind: str,
    booking: Any,
    data: Mapping[str, Any],
    previous_uid: str | None = None,
) -> None:
    """Hand the booking change this action made to the event bus."""
    if not isinstance(booking, Mapping):
        return
    await ctx.booking_changed(
        BookingChange(
            provider=PROVIDER,
            kind=kind,
            booking=booking,
            integration_id=ctx.integration.id if ctx.integration else None,
            input=data,
            previous_uid=previous_uid,
        )
    )


def booking_of(resp: ProviderResponse) -> Any:
    """The booking in a response (``data``; a list for recurring bookings)."""
    return data_of(resp)
