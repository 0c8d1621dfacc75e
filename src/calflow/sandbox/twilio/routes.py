"""Twilio API routes (under ``/2010-04-01``): messages and the account resource."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.savvycal.auth import basic_credentials
from calflow.sandbox.twilio import messages
from calflow.sandbox.twilio.errors import not_found, unauthenticated
from calflow.sandbox.twilio.state import API_VERSION

if TYPE_CHECKING:
    from calflow.sandbox.twilio.simulator import TwilioSimulator

router = APIRouter(prefix=f"/{API_VERSION}/Accounts")
MAX_PAGE_SIZE = 1000


def authed(request: Request, account_sid: str) -> TwilioSimulator:
    """The simulator, once HTTP Basic names this account with its auth token (401 else)."""
    sim: TwilioSimulator = request.app.state.twilio
    user, password = basic_credentials(request)
    state = sim.state
    if (
        user is None
        or password is None
        or not secrets.compare_digest(user, state.account_sid)
        or not secrets.compare_digest(password, state.auth_token)
        or account_sid != state.account_sid
    ):
        raise unauthenticated()
    return sim


async def form_of(request: Request) -> dict[str, str]:
    """The form parameters (a body that is not a form has none, as at Twilio)."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    raw = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


@router.get("/{account_sid}.json")
async def account(request: Request, account_sid: str) -> JSONResponse:
    """The account (a credentials check)."""
    sim = authed(request, account_sid)
    return JSONResponse(sim.state.account_json())


@router.post("/{account_sid}/Messages.json")
async def create_message(request: Request, account_sid: str) -> JSONResponse:
    """Send a message → 201 with the message resource."""
    sim = authed(request, account_sid)
    message = messages.create(sim.state, await form_of(request), sim.runtime.now())
    sim.dispatcher.start(message)
    await messages.slow_answer(message, sim.runtime.twilio_slow_s)
    return JSONResponse(message.to_json(), status_code=201)


@router.get("/{account_sid}/Messages/{sid}.json")
async def fetch_message(request: Request, account_sid: str, sid: str) -> JSONResponse:
    """One message, or 20404."""
    sim = authed(request, account_sid)
    found = sim.state.messages.get(sid)
    if found is None:
        raise not_found(request.url.path)
    return JSONResponse(found.to_json())


@router.get("/{account_sid}/Messages.json")
async def list_messages(request: Request, account_sid: str) -> JSONResponse:
    """The newest messages first, filtered by ``To`` / ``From`` (one page, ``PageSize``)."""
    sim = authed(request, account_sid)
    q = request.query_params
    try:
        size = max(1, min(int(q.get("PageSize", "50")), MAX_PAGE_SIZE))
    except ValueError:
        size = 50
    found = [
        m
        for m in reversed(sim.state.messages.values())
        if q.get("To") in (None, m.to) and q.get("From") in (None, m.from_)
    ][:size]
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json?PageSize={size}&Page=0"
    return JSONResponse(
        {
            "messages": [m.to_json() for m in found],
            "end": max(len(found) - 1, 0),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": size,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }
    )
