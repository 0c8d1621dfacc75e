"""AddGuests: ``POST /v2/bookings/{uid}/guests`` (≤10 per call, newer than the spec)."""

from __future__ import annotations

from typing import Any

from calflow.apps.cal_com.bookings import booking_path, change_booking
from calflow.apps.cal_com.phones import to_e164
from calflow.flowapp import ERROR, NOT_FOUND, SUCCESS, Action, ActionContext, ActionResult


class AddGuests(Action):
    key = "AddGuests"
    name = "Add guests"
    description = "Add up to 10 guests to a booking (Cal.com allows 30 per booking)."
    schema_file = "add_guests.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        uid = data["bookingUid"]
        guests = []
        for i, guest in enumerate(data["guests"]):
            item = dict(guest)
            if item.get("phoneNumber"):
                item["phoneNumber"] = to_e164(
                    item["phoneNumber"],
                    data.get("defaultPhoneRegion"),
                    f"guests.{i}.phoneNumber",
                )
            guests.append(item)
        path = booking_path(uid, "/guests")
        return await change_booking(ctx, path, "guests_added", data, {"guests": guests})
