"""GetAccount: ``GET /2010-04-01/Accounts/{AccountSid}.json`` (a credentials check)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calflow.apps.twilio.client import HANDLED, TwilioClient
from calflow.flowapp import ERROR, SUCCESS, Action, ActionContext, ActionResult

_FIELDS = ("sid", "friendly_name", "status", "type", "date_created")


class GetAccount(Action):
    key = "GetAccount"
    name = "Get account"
    description = "The Twilio account the credentials belong to (also a credentials check)."
    schema_file = "empty.json"
    ports = (SUCCESS, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = TwilioClient(ctx)
        resp = await client.request("GET", client.account_path(), accept=HANDLED)
        if not resp.ok:
            return client.failure(resp)
        body = resp.body if isinstance(resp.body, Mapping) else {}
        return ActionResult.ok({k: body.get(k) for k in _FIELDS})
