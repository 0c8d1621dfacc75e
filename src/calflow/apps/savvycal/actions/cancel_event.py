"""CancelEvent: ``POST /v1/events/{id}/cancel``."""

from __future__ import annotations

from typing import Any

from calflow.apps.savvycal.client import SavvyCalClient
from calflow.apps.savvycal.events import event_path, publish, result_for
from calflow.flowapp import ERROR, NOT_FOUND, SUCCESS, Action, ActionContext, ActionResult


class CancelEvent(Action):
    key = "CancelEvent"
    name = "Cancel an event"
    description = "Cancel an event, with an optional reason (SavvyCal notifies the attendees)."
    schema_file = "cancel_event.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "destructive"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        body: dict[str, Any] = {}
        if data.get("cancel_reason"):
            body["cancel_reason"] = data["cancel_reason"]
        client = SavvyCalClient(ctx)
        resp = await client.call(
            "POST", event_path(data["event_id"], "/cancel"), body=body, accept=(404, 422)
        )
        failed = result_for(client, resp, not_found=True)
        if failed is not None:
            return failed
        await publish(ctx, "cancelled", resp.body, data)
        return ActionResult.ok(resp.body)
