"""RescheduleBooking: ``POST /v2/bookings/{uid}/reschedule`` (a new booking, new uid)."""

from __future__ import annotations

from typing import Any

from calflow.apps.cal_com.actions.book_meeting import utc_iso
from calflow.apps.cal_com.bookings import booking_path, change_booking, verify_rescheduled
from calflow.apps.cal_com.client import CalComClient
from calflow.flowapp import CONFLICT, ERROR, NOT_FOUND, SUCCESS, Action, ActionContext, ActionResult


class RescheduleBooking(Action):
    key = "RescheduleBooking"
    name = "Reschedule a booking"
    description = (
        "Move a booking to a new start time. Cal.com makes a new booking with a new uid, "
        "linked to the old one. Answers 'conflict' when the new time is taken."
    )
    schema_file = "reschedule_booking.json"
    ports = (SUCCESS, CONFLICT, NOT_FOUND, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        uid = data["bookingUid"]
        body = {"start": utc_iso(data["start"])}
        body.update({k: data[k] for k in ("rescheduledBy", "reschedulingReason") if k in data})
        path = booking_path(uid, "/reschedule")
        client = CalComClient(ctx)
        return await change_booking(
            ctx,
            path,
            "rescheduled",
            data,
            body,
            conflict=True,
            previous_uid=uid,
            client=client,
            verify=verify_rescheduled(client, uid),
        )
