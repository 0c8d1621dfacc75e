"""BookMeeting: ``POST /v2/bookings`` (cal-api-version 2024-08-13)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from calflow.apps.cal_com.bookings import booking_of, publish, result_for, verify_created
from calflow.apps.cal_com.client import BOOKINGS, CalComClient
from calflow.apps.cal_com.phones import to_e164
from calflow.flowapp import CONFLICT, ERROR, SUCCESS, Action, ActionContext, ActionResult

_SELECTORS = ("eventTypeId", "eventTypeSlug", "username", "teamSlug", "organizationSlug")
_PASSTHROUGH = ("guests", "location", "metadata", "lengthInMinutes")


def utc_iso(value: str) -> str:
    """An ISO 8601 instant in UTC with milliseconds and ``Z``, as Cal.com writes them."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_body(data: dict[str, Any]) -> dict[str, Any]:
    """The ``CreateBookingInput_2024_08_13`` body for validated input."""
    attendee = dict(data["attendee"])
    if attendee.get("phoneNumber"):
        attendee["phoneNumber"] = to_e164(
            attendee["phoneNumber"], data.get("defaultPhoneRegion"), "attendee.phoneNumber"
        )
    body: dict[str, Any] = {"start": utc_iso(data["start"]), "attendee": attendee}
    body.update({k: data[k] for k in _SELECTORS if k in data})
    body.update({k: data[k] for k in _PASSTHROUGH if k in data})
    responses = dict(data.get("bookingFieldsResponses") or {})
    if data.get("notes"):
        responses.setdefault("notes", data["notes"])
    if responses:
        body["bookingFieldsResponses"] = responses
    return body


class BookMeeting(Action):
    key = "BookMeeting"
    name = "Book a meeting"
    description = (
        "Book a Cal.com event type for an attendee at a start time. Answers on 'conflict' "
        "when the time is taken or not bookable."
    )
    schema_file = "book_meeting.json"
    ports = (SUCCESS, CONFLICT, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        body = create_body(data)
        client = CalComClient(ctx)
        resp = await client.call(
            "POST",
            "/v2/bookings",
            BOOKINGS,
            body=body,
            accept=(400, 404, 409),
            verify=verify_created(client, body),
        )
        failed = result_for(client, resp, conflict=True)
        if failed is not None:
            return failed
        booking = booking_of(resp)
        status = booking.get("status") if isinstance(booking, dict) else None
        await publish(ctx, "requested" if status == "pending" else "created", booking, body)
        return ActionResult.ok(booking)
