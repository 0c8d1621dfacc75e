"""GetSlots: ``GET /v2/slots`` (cal-api-version 2024-09-04), flattened and per day."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from calflow.apps.cal_com.actions.book_meeting import utc_iso
from calflow.apps.cal_com.bookings import result_for
from calflow.apps.cal_com.client import SLOTS, CalComClient, data_of
from calflow.errors import FieldError, ValidationError
from calflow.flowapp import ERROR, SUCCESS, Action, ActionContext, ActionResult

_PARAMS = (
    "start",
    "end",
    "timeZone",
    "duration",
    "format",
    "bookingUidToReschedule",
    "eventTypeId",
    "eventTypeSlug",
    "username",
    "teamSlug",
    "organizationSlug",
)


def slot_time(value: str, field: str) -> str:
    """A date as is; a date-time in UTC (``…Z``): Cal.com reads ``start``/``end`` as UTC."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        return utc_iso(text)
    except ValueError as exc:
        raise ValidationError(
            f"{field} must be an ISO 8601 date or date-time",
            [FieldError(field, f"{value!r} is not an ISO 8601 date or date-time", "format")],
        ) from exc


def slot_params(data: Mapping[str, Any]) -> dict[str, Any]:
    params = {k: data[k] for k in _PARAMS if data.get(k) not in (None, "")}
    for key in ("start", "end"):
        params[key] = slot_time(str(data[key]), key)
    if data.get("usernames"):
        params["usernames"] = ",".join(data["usernames"])
    return params


def flatten(days: Any) -> list[dict[str, Any]]:
    """``{day: [{start, end?}]}`` → one list sorted by start, each with its day."""
    out: list[dict[str, Any]] = []
    if not isinstance(days, Mapping):
        return out
    for day in sorted(days):
        for slot in days[day] or []:
            item = dict(slot) if isinstance(slot, Mapping) else {"start": str(slot)}
            item["day"] = day
            out.append(item)
    return out


class GetSlots(Action):
    key = "GetSlots"
    name = "Find available slots"
    description = "Open start times for an event type between two dates."
    schema_file = "get_slots.json"
    ports = (SUCCESS, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = CalComClient(ctx)
        resp = await client.call(
            "GET", "/v2/slots", SLOTS, params=slot_params(data), accept=(400, 404)
        )
        failed = result_for(client, resp)
        if failed is not None:
            return failed
        days = data_of(resp)
        slots = flatten(days)
        return ActionResult.ok({"slots": slots, "days": days, "count": len(slots)})
