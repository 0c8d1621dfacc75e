"""CancelBooking: ``POST /v2/bookings/{uid}/cancel``."""

from __future__ import annotations

from typing import Any

from calflow.apps.cal_com.bookings import booking_of, booking_path, publish, result_for
from calflow.apps.cal_com.client import BOOKINGS, CalComClient, message_of
from calflow.flowapp import ERROR, NOT_FOUND, SUCCESS, Action, ActionContext, ActionResult


class CancelBooking(Action):
    key = "CancelBooking"
    name = "Cancel a booking"
    description = (
        "Cancel a booking, with an optional reason. A booking already cancelled counts as done."
    )
    schema_file = "cancel_booking.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "destructive"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        uid = data["bookingUid"]
        body: dict[str, Any] = {}
        if data.get("cancellationReason"):
            body["cancellationReason"] = data["cancellationReason"]
        if data.get("cancelSubsequentBookings"):
            body["cancelSubsequentBookings"] = True
        client = CalComClient(ctx)
        resp = await client.call(
            "POST", booking_path(uid, "/cancel"), BOOKINGS, body=body, accept=(400, 404)
        )
        if resp.status == 400 and "already" in message_of(client, resp).lower():
            return ActionResult.ok(
                {"uid": uid, "status": "cancelled"},
                code="ALREADY_CANCELLED",
                message=message_of(client, resp),
            )
        failed = result_for(client, resp, not_found=True)
        if failed is not None:
            return failed
        booking = booking_of(resp)
        await publish(ctx, "cancelled", booking, data)
        return ActionResult.ok(booking)
