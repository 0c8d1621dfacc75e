"""RegisterWebhook / UnregisterWebhook: idempotent webhook management (no version header).

Register reuses a webhook with the same URL, triggers and active flag instead of making
a second one, and makes sure calflow knows its secret: a fresh random secret is set on
it and stored in the vault (``webhook_secret``; ``webhook_id`` in the config).
The subscriber URL is checked like every URL a tenant sets (:mod:`calflow.netpolicy`):
Cal.com is not asked to call an address the operator does not allow.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Mapping
from typing import Any

from calflow.apps.cal_com.bookings import result_for
from calflow.apps.cal_com.client import NO_VERSION, CalComClient, data_of
from calflow.flowapp import ERROR, SUCCESS, Action, ActionContext, ActionResult
from calflow.netpolicy import check_target

PAGE = 250


def _public(hook: Mapping[str, Any], reused: bool) -> dict[str, Any]:
    keep = ("id", "subscriberUrl", "triggers", "active", "payloadTemplate", "createdAt")
    out = {k: hook[k] for k in keep if k in hook}
    out["reused"] = reused
    return out


async def find_webhooks(client: CalComClient, url: str | None = None) -> list[dict[str, Any]]:
    """Every webhook of the caller (all pages), optionally only those for ``url``."""
    found = [
        dict(h)
        async for h in client.paginate("/v2/webhooks", NO_VERSION, {}, None, PAGE)
        if isinstance(h, Mapping)
    ]
    return [h for h in found if url is None or h.get("subscriberUrl") == url]


class RegisterWebhook(Action):
    key = "RegisterWebhook"
    name = "Register a webhook"
    description = (
        "Subscribe a URL to booking triggers, with a secret calflow generates and keeps. "
        "Idempotent: a matching webhook is reused."
    )
    schema_file = "register_webhook.json"
    ports = (SUCCESS, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        url = await check_target(
            data["subscriberUrl"],
            field="subscriberUrl",
            allowance=ctx.targets,
            unresolvable_ok=True,
        )
        client = CalComClient(ctx)
        triggers, active = list(data["triggers"]), data["active"]
        secret = _secrets.token_hex(32)
        for hook in await find_webhooks(client, url):
            if set(hook.get("triggers") or []) == set(triggers) and hook.get("active") == active:
                known = str(hook.get("id")) == str(ctx.value("webhook_id") or "")
                if not (known and ctx.value("webhook_secret")):
                    resp = await client.call(
                        "PATCH",
                        f"/v2/webhooks/{hook['id']}",
                        NO_VERSION,
                        body={"secret": secret},
                        accept=(400, 404),
                    )
                    failed = result_for(client, resp)
                    if failed is not None:
                        return failed
                    await ctx.save(
                        config={"webhook_id": str(hook["id"])}, secrets={"webhook_secret": secret}
                    )
                return ActionResult.ok(_public(hook, reused=True))
        body: dict[str, Any] = {
            "subscriberUrl": url,
            "triggers": triggers,
            "active": active,
            "secret": secret,
        }
        if data.get("payloadTemplate"):
            body["payloadTemplate"] = data["payloadTemplate"]
        resp = await client.call("POST", "/v2/webhooks", NO_VERSION, body=body, accept=(400,))
        failed = result_for(client, resp)
        if failed is not None:
            return failed
        hook = dict(data_of(resp))
        await ctx.save(
            config={"webhook_id": str(hook.get("id"))}, secrets={"webhook_secret": secret}
        )
        return ActionResult.ok(_public(hook, reused=False))


class UnregisterWebhook(Action):
    key = "UnregisterWebhook"
    name = "Remove a webhook"
    description = "Delete a webhook by id, or every webhook for a URL. Already gone counts as done."
    schema_file = "unregister_webhook.json"
    ports = (SUCCESS, ERROR)
    kind = "destructive"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = CalComClient(ctx)
        ids = (
            [str(data["webhookId"])]
            if data.get("webhookId")
            else [str(h["id"]) for h in await find_webhooks(client, data["subscriberUrl"])]
        )
        deleted: list[str] = []
        missing: list[str] = []
        for hook_id in ids:
            resp = await client.call("DELETE", f"/v2/webhooks/{hook_id}", NO_VERSION, accept=(404,))
            (missing if resp.status == 404 else deleted).append(hook_id)
        if ctx.integration is not None and str(ctx.value("webhook_id") or "") in ids:
            await ctx.save(unset=("webhook_id", "webhook_secret"))
        return ActionResult.ok({"deleted": deleted, "already_gone": missing})
