"""GetAllBookings: ``GET /v2/bookings`` with every filter, across pages up to ``limit``."""

from __future__ import annotations

from typing import Any

from calflow.apps.cal_com.client import BOOKINGS, CalComClient
from calflow.flowapp import ERROR, SUCCESS, Action, ActionContext, ActionResult

_LISTS = ("status", "eventTypeIds", "teamsIds")


def list_params(data: dict[str, Any]) -> dict[str, Any]:
    """Query parameters for the bookings list (comma lists as Cal.com documents them)."""
    params: dict[str, Any] = {}
    for key, value in data.items():
        if key == "limit" or value in (None, "", []):
            continue
        params[key] = ",".join(map(str, value)) if key in _LISTS else value
    return params


class GetAllBookings(Action):
    key = "GetAllBookings"
    name = "List bookings"
    description = "List bookings with Cal.com's filters, following pages up to 'limit'."
    schema_file = "get_all_bookings.json"
    ports = (SUCCESS, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = CalComClient(ctx)
        limit = int(data.get("limit", 100))
        items = [
            b async for b in client.paginate("/v2/bookings", BOOKINGS, list_params(data), limit)
        ]
        return ActionResult.ok({"bookings": items, "count": len(items)})
