"""Turning an accepted non-2xx provider response into a result on a port."""

from __future__ import annotations

from calflow.flowapp.http import ProviderClient, ProviderResponse
from calflow.flowapp.model import ActionResult


def response_message(client: ProviderClient, resp: ProviderResponse) -> str:
    """The provider's own message in ``resp``, or a plain one naming the status."""
    return client.error_message(resp.body) or f"{client.provider_name} answered {resp.status}"


def outcome_for(
    client: ProviderClient,
    resp: ProviderResponse,
    *,
    slot_taken: bool = False,
    not_found: bool = False,
) -> ActionResult | None:
    """``None`` for a 2xx; else ``conflict`` (when ``slot_taken``), ``not_found`` (a 404
    when the action has that port), or a failure carrying the provider's message."""
    if resp.ok:
        return None
    message = response_message(client, resp)
    if slot_taken:
        return ActionResult.ok(
            {"status": resp.status, "reason": message},
            port="conflict",
            code="SLOT_TAKEN",
            message=message,
        )
    if not_found and resp.status == 404:
        return ActionResult.ok(
            {"status": 404, "reason": message}, port="not_found", code="NOT_FOUND", message=message
        )
    code = "NOT_FOUND" if resp.status == 404 else "PROVIDER_ERROR"
    return ActionResult.fail(code, f"{client.provider_name}: {message}", {"status": resp.status})
