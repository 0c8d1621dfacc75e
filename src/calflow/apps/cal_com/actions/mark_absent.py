"""MarkAbsent: ``POST /v2/bookings/{uid}/mark-absent`` (host and/or attendees)."""

from __future__ import annotations

from typing import Any

from calflow.apps.cal_com.bookings import booking_of, booking_path, publish, result_for
from calflow.apps.cal_com.client import BOOKINGS, CalComClient, message_of
from calflow.flowapp import (
    ERROR,
    NOT_FOUND,
    SUCCESS,
    Action,
    ActionContext,
    ActionResult,
    OutputPort,
)

TOO_EARLY = OutputPort(
    "too_early", "The meeting has not started yet; no-shows come after the start."
)


class MarkAbsent(Action):
    key = "MarkAbsent"
    name = "Mark no-show"
    description = "Mark the host and/or attendees absent, once the meeting has started."
    schema_file = "mark_absent.json"
    ports = (SUCCESS, TOO_EARLY, NOT_FOUND, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        uid = data["bookingUid"]
        body = {k: data[k] for k in ("host", "attendees") if k in data}
        client = CalComClient(ctx)
        resp = await client.call(
            "POST",
            booking_path(uid, "/mark-absent"),
            BOOKINGS,
            body=body,
            accept=(400, 403, 404),
        )
        if resp.status == 403 and "before" in message_of(client, resp).lower():
            message = message_of(client, resp)
            return ActionResult.ok(
                {"reason": message}, port="too_early", code="TOO_EARLY", message=message
            )
        if resp.status == 403:
            return ActionResult.fail("AUTH_ERROR", f"Cal.com: {message_of(client, resp)}")
        failed = result_for(client, resp, not_found=True)
        if failed is not None:
            return failed
        booking = booking_of(resp)
        await publish(ctx, "no_show_updated", booking, data)
        return ActionResult.ok(booking)
