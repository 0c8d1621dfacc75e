"""ConfirmBooking / DeclineBooking: for event types that need confirmation."""

from __future__ import annotations

from typing import Any

from calflow.apps.cal_com.bookings import booking_of, booking_path, publish, result_for
from calflow.apps.cal_com.client import BOOKINGS, CalComClient
from calflow.flowapp import ERROR, NOT_FOUND, SUCCESS, Action, ActionContext, ActionResult


class ConfirmBooking(Action):
    key = "ConfirmBooking"
    name = "Confirm a booking request"
    description = "Accept a pending booking of an event type that needs confirmation."
    schema_file = "uid.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = CalComClient(ctx)
        resp = await client.call(
            "POST", booking_path(data["bookingUid"], "/confirm"), BOOKINGS, accept=(400, 404)
        )
        failed = result_for(client, resp, not_found=True)
        if failed is not None:
            return failed
        booking = booking_of(resp)
        await publish(ctx, "approved", booking, data)
        return ActionResult.ok(booking)


class DeclineBooking(Action):
    key = "DeclineBooking"
    name = "Decline a booking request"
    description = "Decline a pending booking, with an optional reason."
    schema_file = "decline_booking.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "destructive"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        body = {"reason": data["reason"]} if data.get("reason") else {}
        client = CalComClient(ctx)
        resp = await client.call(
            "POST",
            booking_path(data["bookingUid"], "/decline"),
            BOOKINGS,
            body=body,
            accept=(400, 404),
        )
        failed = result_for(client, resp, not_found=True)
        if failed is not None:
            return failed
        booking = booking_of(resp)
        await publish(ctx, "declined", booking, data)
        return ActionResult.ok(booking)
