"""RegisterWebhook / UnregisterWebhook.

SavvyCal makes the webhook's secret itself and returns it on create, so a webhook is
only reusable when calflow kept that secret: the stored ``webhook_id`` names it and a
``webhook_secret`` is in the vault. Otherwise a new one is created and its id and
secret are stored. Secrets never appear in the action's output. The URL is checked like
every URL a tenant sets (:mod:`calflow.netpolicy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calflow.apps.savvycal.client import SavvyCalClient
from calflow.apps.savvycal.events import result_for
from calflow.errors import FieldError, ValidationError
from calflow.flowapp import ERROR, SUCCESS, Action, ActionContext, ActionResult
from calflow.netpolicy import check_target

_PUBLIC = ("id", "url", "state", "version", "created_at")


def _public(hook: Mapping[str, Any], reused: bool) -> dict[str, Any]:
    out = {k: hook[k] for k in _PUBLIC if k in hook}
    out["reused"] = reused
    return out


async def find_webhooks(client: SavvyCalClient, url: str | None = None) -> list[dict[str, Any]]:
    """Every webhook of the caller (all pages), optionally only those for ``url``."""
    found = [dict(h) async for h in client.paginate("/v1/webhooks") if isinstance(h, Mapping)]
    return [h for h in found if url is None or h.get("url") == url]


class RegisterWebhook(Action):
    key = "RegisterWebhook"
    name = "Register a webhook"
    description = (
        "Send every SavvyCal event type to a URL; the webhook's id and signing secret are "
        "kept in the integration. Idempotent: a webhook calflow already knows is reused."
    )
    schema_file = "register_webhook.json"
    ports = (SUCCESS, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        url = await check_target(
            data["url"], field="url", allowance=ctx.targets, unresolvable_ok=True
        )
        client = SavvyCalClient(ctx)
        known_id = str(ctx.value("webhook_id") or "")
        if known_id and ctx.value("webhook_secret"):
            for hook in await find_webhooks(client, url):
                if str(hook.get("id")) == known_id:
                    return ActionResult.ok(_public(hook, reused=True))
        resp = await client.call("POST", "/v1/webhooks", body={"url": url}, accept=(422,))
        failed = result_for(client, resp)
        if failed is not None:
            return failed
        hook = dict(resp.body) if isinstance(resp.body, Mapping) else {}
        if not hook.get("id") or not hook.get("secret"):
            return ActionResult.fail(
                "BAD_RESPONSE", "SavvyCal created a webhook but returned no id or secret"
            )
        await ctx.save(
            config={"webhook_id": str(hook["id"])}, secrets={"webhook_secret": str(hook["secret"])}
        )
        return ActionResult.ok(_public(hook, reused=False))


class UnregisterWebhook(Action):
    key = "UnregisterWebhook"
    name = "Remove a webhook"
    description = (
        "Delete a webhook by id (by default the one RegisterWebhook stored), or every "
        "webhook for a URL. Already gone counts as done."
    )
    schema_file = "unregister_webhook.json"
    ports = (SUCCESS, ERROR)
    kind = "destructive"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        client = SavvyCalClient(ctx)
        stored = str(ctx.value("webhook_id") or "")
        if data.get("webhook_id"):
            ids = [str(data["webhook_id"])]
        elif data.get("url"):
            ids = [str(h["id"]) for h in await find_webhooks(client, data["url"]) if h.get("id")]
        elif stored:
            ids = [stored]
        else:
            raise ValidationError(
                "give webhook_id or url (the integration has no stored webhook)",
                [FieldError("webhook_id", "is required here", "required")],
            )
        deleted: list[str] = []
        missing: list[str] = []
        for hook_id in ids:
            resp = await client.call("DELETE", f"/v1/webhooks/{hook_id}", accept=(404,))
            (missing if resp.status == 404 else deleted).append(hook_id)
        if ctx.integration is not None and stored and stored in ids:
            await ctx.save(unset=("webhook_id", "webhook_secret"))
        return ActionResult.ok({"deleted": deleted, "already_gone": missing})
