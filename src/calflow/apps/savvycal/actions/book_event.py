"""BookEvent: ``POST /v1/links/{link_id}/events``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from calflow.apps.savvycal.client import SavvyCalClient
from calflow.apps.savvycal.events import parse_instant, publish, result_for, utc_iso
from calflow.apps.savvycal.phones import to_e164
from calflow.errors import FieldError, ValidationError
from calflow.flowapp import CONFLICT, ERROR, SUCCESS, Action, ActionContext, ActionResult

_PASSTHROUGH = ("display_name", "email", "time_zone", "fields", "metadata")


def create_body(data: dict[str, Any]) -> dict[str, Any]:
    """The create-event body for validated input: times in UTC, the phone in E.164."""
    start = parse_instant(data["start_at"], "start_at")
    if data.get("end_at"):
        end = parse_instant(data["end_at"], "end_at")
    else:
        end = start + timedelta(minutes=int(data["duration"]))
    if end <= start:
        raise ValidationError(
            "end_at must be after start_at",
            [FieldError("end_at", "is not after start_at", "order")],
        )
    body: dict[str, Any] = {"start_at": utc_iso(start), "end_at": utc_iso(end)}
    body.update({k: data[k] for k in _PASSTHROUGH if data.get(k) is not None})
    if data.get("phone_number"):
        body["phone_number"] = to_e164(
            data["phone_number"], data.get("default_phone_region"), "phone_number"
        )
    return body


class BookEvent(Action):
    key = "BookEvent"
    name = "Book an event"
    description = (
        "Book a time on a SavvyCal scheduling link for an attendee. Answers on 'conflict' "
        "when the time is not open."
    )
    schema_file = "book_event.json"
    ports = (SUCCESS, CONFLICT, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        body = create_body(data)
        client = SavvyCalClient(ctx)
        resp = await client.call(
            "POST", f"/v1/links/{data['link_id']}/events", body=body, accept=(404, 422)
        )
        failed = result_for(client, resp, conflict=True)
        if failed is not None:
            return failed
        event = resp.body
        state = event.get("state") if isinstance(event, dict) else None
        await publish(ctx, "requested" if state == "awaiting_approval" else "created", event, body)
        return ActionResult.ok(event)
