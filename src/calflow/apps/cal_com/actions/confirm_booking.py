"""ConfirmBooking / DeclineBooking: for event types that need confirmation."""

from __future__ import annotations

from typing import Any

from calflow.apps.cal_com.bookings import booking_path, change_booking
from calflow.flowapp import ERROR, NOT_FOUND, SUCCESS, Action, ActionContext, ActionResult


class ConfirmBooking(Action):
    key = "ConfirmBooking"
    name = "Confirm a booking request"
    description = "Accept a pending booking of an event type that needs confirmation."
    schema_file = "uid.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        path = booking_path(data["bookingUid"], "/confirm")
        return await change_booking(ctx, path, "approved", data)


class DeclineBooking(Action):
    key = "DeclineBooking"
    name = "Decline a booking request"
    description = "Decline a pending booking, with an optional reason."
    schema_file = "decline_booking.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "destructive"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        body = {"reason": data["reason"]} if data.get("reason") else {}
        path = booking_path(data["bookingUid"], "/decline")
        return await change_booking(ctx, path, "declined", data, body)
