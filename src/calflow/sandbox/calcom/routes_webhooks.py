"""``/v2/webhooks`` management (version-neutral). ``triggers`` is an array of trigger names."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.calcom.context import json_body, require_auth, sim_of
from calflow.sandbox.calcom.envelope import CalcomError, bad_request, not_found, success
from calflow.sandbox.calcom.state import Webhook
from calflow.sandbox.calcom.webhooks import TRIGGERS

router = APIRouter()


def _wrong(prop: str, message: str) -> str:
    return f"{prop} property is wrong,{message} "


def _validate(body: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        body = {}
    errors: list[str] = []
    out: dict[str, Any] = {}
    for key in ("subscriberUrl", "triggers", "active"):
        if key not in body and not partial:
            errors.append(_wrong(key, f"{key} should not be empty"))
    if "subscriberUrl" in body:
        url = body["subscriberUrl"]
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            errors.append(_wrong("subscriberUrl", "subscriberUrl must be a URL address"))
        else:
            out["subscriber_url"] = url
    if "triggers" in body:
        triggers = body["triggers"]
        if not isinstance(triggers, list) or not all(t in TRIGGERS for t in triggers):
            allowed = ", ".join(TRIGGERS)
            errors.append(
                _wrong(
                    "triggers",
                    f"each value in triggers must be one of the following values: {allowed}",
                )
            )
        else:
            out["triggers"] = list(dict.fromkeys(triggers))
    if "active" in body:
        if not isinstance(body["active"], bool):
            errors.append(_wrong("active", "active must be a boolean value"))
        else:
            out["active"] = body["active"]
    for key, attr in (("payloadTemplate", "payload_template"), ("secret", "secret")):
        if key in body and body[key] is not None:
            if not isinstance(body[key], str):
                errors.append(_wrong(key, f"{key} must be a string"))
            else:
                out[attr] = body[key]
    if errors:
        raise bad_request(", ".join(errors))
    return out


def _find(request: Request, webhook_id: str) -> Webhook:
    sim = sim_of(request)
    hook = sim.state.webhooks.get(int(webhook_id)) if webhook_id.isdigit() else None
    if hook is None or hook.user_id != sim.state.api_user_id:
        raise not_found(f"Webhook with id {webhook_id} not found")
    return hook


def _duplicate(request: Request, url: str, ignore: int | None = None) -> None:
    sim = sim_of(request)
    for hook in sim.state.webhooks.values():
        if (
            hook.subscriber_url == url
            and hook.user_id == sim.state.api_user_id
            and hook.id != ignore
        ):
            raise CalcomError(409, "Webhook with this subscriber url already exists")


@router.post("/v2/webhooks")
async def create_webhook(request: Request) -> JSONResponse:
    """Create a user webhook (201)."""
    require_auth(request)
    fields = _validate(await json_body(request), partial=False)
    _duplicate(request, fields["subscriber_url"])
    state = sim_of(request).state
    hook = Webhook(id=state.next_webhook_id(), user_id=state.api_user_id, **fields)
    state.webhooks[hook.id] = hook
    return success(hook.output(), status_code=201)


@router.get("/v2/webhooks")
async def list_webhooks(request: Request) -> JSONResponse:
    """List the user's webhooks (``take`` ≤ 250, ``skip``)."""
    require_auth(request)
    q = request.query_params
    try:
        take = int(q.get("take") or 250)
        skip = int(q.get("skip") or 0)
    except ValueError:
        raise bad_request("take must be a number conforming to the specified constraints") from None
    if take > 250:
        raise bad_request("take must not be greater than 250")
    if take < 1 or skip < 0:
        raise bad_request("take must not be less than 1")
    state = sim_of(request).state
    hooks = [h.output() for h in state.webhooks.values() if h.user_id == state.api_user_id]
    return success(hooks[skip : skip + take])


@router.get("/v2/webhooks/{webhook_id}")
async def get_webhook(request: Request, webhook_id: str) -> JSONResponse:
    """One webhook."""
    require_auth(request)
    return success(_find(request, webhook_id).output())


@router.patch("/v2/webhooks/{webhook_id}")
async def update_webhook(request: Request, webhook_id: str) -> JSONResponse:
    """Update a webhook (partial)."""
    require_auth(request)
    hook = _find(request, webhook_id)
    fields = _validate(await json_body(request), partial=True)
    if "subscriber_url" in fields:
        _duplicate(request, fields["subscriber_url"], ignore=hook.id)
    for attr, value in fields.items():
        setattr(hook, attr, value)
    return success(hook.output())


@router.delete("/v2/webhooks/{webhook_id}")
async def delete_webhook(request: Request, webhook_id: str) -> JSONResponse:
    """Delete a webhook; answers the deleted webhook."""
    require_auth(request)
    hook = _find(request, webhook_id)
    del sim_of(request).state.webhooks[hook.id]
    return success(hook.output())
