"""Read actions: GetMe, ListEvents, GetEvent, ListLinks, GetLinkSlots."""

from __future__ import annotations

from typing import Any

from calflow.apps.savvycal.client import SavvyCalClient
from calflow.apps.savvycal.events import date_or_instant, event_path, result_for
from calflow.flowapp import ERROR, NOT_FOUND, SUCCESS, Action, ActionContext, ActionResult

_EVENT_FILTERS = ("period", "from", "until", "state", "attendance", "direction", "link")


class GetMe(Action):
    key = "GetMe"
    name = "Who am I"
    description = "The SavvyCal user the credentials belong to (also a credentials check)."
    schema_file = "empty.json"
    ports = (SUCCESS, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = SavvyCalClient(ctx)
        resp = await client.call("GET", "/v1/me")
        return ActionResult.ok(resp.body)


def event_params(data: dict[str, Any]) -> dict[str, Any]:
    """Query parameters for ``GET /v1/events`` (unknown ones SavvyCal ignores silently)."""
    return {k: data[k] for k in _EVENT_FILTERS if data.get(k) not in (None, "")}


class ListEvents(Action):
    key = "ListEvents"
    name = "List events"
    description = (
        "List events with SavvyCal's filters (period, state, attendance, direction, link), "
        "following cursors up to 'limit'. SavvyCal's defaults are narrow: upcoming, "
        "confirmed, attending."
    )
    schema_file = "list_events.json"
    ports = (SUCCESS, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = SavvyCalClient(ctx)
        limit = int(data.get("limit", 100))
        events = [e async for e in client.paginate("/v1/events", event_params(data), limit)]
        return ActionResult.ok({"events": events, "count": len(events)})


class GetEvent(Action):
    key = "GetEvent"
    name = "Get an event"
    description = "Read one event by its id."
    schema_file = "event_id.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = SavvyCalClient(ctx)
        resp = await client.call("GET", event_path(data["event_id"]), accept=(404,))
        failed = result_for(client, resp, not_found=True)
        return failed or ActionResult.ok(resp.body)


class ListLinks(Action):
    key = "ListLinks"
    name = "List scheduling links"
    description = "The scheduling links the credentials can see, following cursors up to 'limit'."
    schema_file = "list_links.json"
    ports = (SUCCESS, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = SavvyCalClient(ctx)
        limit = int(data.get("limit", 100))
        links = [link async for link in client.paginate("/v1/links", None, limit)]
        return ActionResult.ok({"links": links, "count": len(links)})


def slot_params(data: dict[str, Any]) -> dict[str, Any]:
    return {k: date_or_instant(str(data[k]), k) for k in ("from", "until") if data.get(k)}


class GetLinkSlots(Action):
    key = "GetLinkSlots"
    name = "Open slots of a link"
    description = "Open times of a scheduling link between 'from' and 'until'."
    schema_file = "get_link_slots.json"
    ports = (SUCCESS, NOT_FOUND, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        params = slot_params(data)
        client = SavvyCalClient(ctx)
        resp = await client.call(
            "GET", f"/v1/links/{data['link_id']}/slots", params=params, accept=(404, 422)
        )
        failed = result_for(client, resp, not_found=True)
        if failed is not None:
            return failed
        slots = resp.body if isinstance(resp.body, list) else []
        return ActionResult.ok({"slots": slots, "count": len(slots)})
