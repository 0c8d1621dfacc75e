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
        "Cancel a booking, with an optional reason, or one seat of a seated booking "
        "(seatUid). A booking already cancelled counts as done."
    )
    schema_file = "cancel_booking.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "destructive"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        uid = data["bookingUid"]
        body: dict[str, Any] = {}
        if data.get("seatUid"):  # CancelSeatedBookingInput_2024_08_13: only this seat
            body["seatUid"] = data["seatUid"]
        if data.get("cancellationReason"):
            body["cancellationReason"] = data["cancellationReason"]
        if data.get("cancelSubsequentBookings"):
            body["cancelSubsequentBookings"] = True
        client = CalComClient(ctx)
        leaver = await self._seat_holder(client, uid, data) if data.get("seatUid") else None
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
        await publish(ctx, "cancelled", booking, {**data, "attendee": leaver} if leaver else data)
        return ActionResult.ok(booking)

    @staticmethod
    async def _seat_holder(
        client: CalComClient, uid: str, data: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The attendee holding ``seatUid`` (the answer to a seat cancel no longer lists
        them, and the event bus needs to know whose seat ended)."""
        resp = await client.call("GET", booking_path(uid), BOOKINGS, accept=(404,))
        booking = booking_of(resp) if resp.ok else None
        attendees = booking.get("attendees") if isinstance(booking, dict) else None
        for attendee in attendees if isinstance(attendees, list) else []:
            if isinstance(attendee, dict) and attendee.get("seatUid") == data["seatUid"]:
                return {"email": attendee.get("email"), "name": attendee.get("name")}
        return None
