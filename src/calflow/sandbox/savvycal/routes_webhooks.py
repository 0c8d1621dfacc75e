"""Webhook endpoints (``/v1/webhooks``) and the OAuth token endpoint (``/oauth/token``)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from calflow.sandbox.savvycal.auth import basic_credentials
from calflow.sandbox.savvycal.context import authed, json_body, sim_of
from calflow.sandbox.savvycal.errors import SavvycalError, field_message_errors, not_found
from calflow.sandbox.savvycal.pagination import decode_cursor, paginate, parse_limit
from calflow.sandbox.savvycal.serialize import webhook_json
from calflow.sandbox.savvycal.state import Webhook

router = APIRouter()


def _valid_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@router.get("/v1/webhooks")
async def list_webhooks(request: Request) -> JSONResponse:
    """A page of webhooks."""
    sim = authed(request)
    hooks = {h.seq: h for h in sim.state.webhooks.values()}
    order = sorted((seq, seq) for seq in hooks)
    q = request.query_params
    page = paginate(
        order, 0, len(order), lambda _k: True, descending=False,
        limit=parse_limit(q.get("limit")),
        after=decode_cursor(q["after"], "after") if q.get("after") else None,
        before=decode_cursor(q["before"], "before") if q.get("before") else None,
    )  # fmt: skip
    entries = [webhook_json(hooks[k[1]]) for k in page.keys]
    return JSONResponse({"entries": entries, "metadata": page.metadata()})


@router.post("/v1/webhooks")
async def create_webhook(request: Request) -> JSONResponse:
    """Create ``{url}`` → 201 Webhook with its signing secret."""
    sim = authed(request)
    body = await json_body(request)
    url = body.get("url") if isinstance(body, dict) else None
    if not _valid_url(url):
        raise field_message_errors({"url": ["must be a valid URL"]})
    assert isinstance(url, str)
    st = sim.state
    hook = Webhook(
        seq=st.next_seq(),
        id=st.new_id("wh"),
        url=url.strip(),
        secret=st.new_hex(20),
        created_at=sim.runtime.now().replace(microsecond=0),
    )
    st.webhooks[hook.id] = hook
    return JSONResponse(webhook_json(hook), status_code=201)


@router.get("/v1/webhooks/{webhook_id}")
async def get_webhook(request: Request, webhook_id: str) -> JSONResponse:
    """One webhook, or 404."""
    sim = authed(request)
    hook = sim.state.webhooks.get(webhook_id)
    if hook is None:
        raise not_found()
    return JSONResponse(webhook_json(hook))


@router.delete("/v1/webhooks/{webhook_id}")
async def delete_webhook(request: Request, webhook_id: str) -> Response:
    """Delete a webhook → 204 (pending retries to it stop)."""
    sim = authed(request)
    hook = sim.state.webhooks.pop(webhook_id, None)
    if hook is None:
        raise not_found()
    hook.state = "deleted"
    return Response(status_code=204)


@router.post("/oauth/token")
async def oauth_token(request: Request) -> JSONResponse:
    """OAuth token endpoint: ``grant_type=refresh_token`` (form or JSON body)."""
    sim = sim_of(request)
    raw = await request.body()
    params: dict[str, str]
    if request.headers.get("content-type", "").startswith("application/json"):
        data = await json_body(request)
        params = {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    else:
        params = dict(parse_qsl(raw.decode(errors="replace")))
    basic_id, basic_secret = basic_credentials(request)
    client_id = params.get("client_id") or basic_id
    client_secret = params.get("client_secret") or basic_secret
    grant = params.get("grant_type")
    if grant != "refresh_token":
        raise SavvycalError(
            400,
            {
                "error": "unsupported_grant_type",
                "error_description": "Only grant_type=refresh_token is supported by the sandbox",
            },
        )
    token = params.get("refresh_token", "")
    return JSONResponse(sim.tokens.refresh(token, client_id, client_secret))
