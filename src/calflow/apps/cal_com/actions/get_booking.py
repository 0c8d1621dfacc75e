"""GetBooking: ``GET /v2/bookings/{uid}``."""

from __future__ import annotations

from typing import Any

from calflow.apps.cal_com.bookings import booking_of, booking_path, result_for
from calflow.apps.cal_com.client import BOOKINGS, CalComClient
from calflow.flowapp import ERROR, NOT_FOUND, SUCCESS, Action, ActionContext, ActionResult


class GetBooking(Action):
    key = "GetBooking"
    name = "Get a booking"
    description = "Read one booking by its uid."
    schema_file = "uid.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = CalComClient(ctx)
        resp = await client.call("GET", booking_path(data["bookingUid"]), BOOKINGS, accept=(404,))
        failed = result_for(client, resp, not_found=True)
        return failed or ActionResult.ok(booking_of(resp))
