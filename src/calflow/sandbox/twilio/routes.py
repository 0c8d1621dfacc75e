"""Twilio API routes (under ``/2010-04-01``): messages and the account resource."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.savvycal.auth import basic_credentials
from calflow.sandbox.twilio import listing, messages
from calflow.sandbox.twilio.errors import not_found, unauthenticated
from calflow.sandbox.twilio.state import API_VERSION

if TYPE_CHECKING:
    from calflow.sandbox.twilio.simulator import TwilioSimulator

router = APIRouter(prefix=f"/{API_VERSION}/Accounts")


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
    """Send a message → 201 with the message resource as created (``queued``/``accepted``);
    it then waits its sender's turn (see :mod:`.queue`)."""
    sim = authed(request, account_sid)
    message = messages.create(sim.state, await form_of(request), sim.runtime.now())
    created = message.to_json()
    sim.admit(message)
    await messages.slow_answer(message, sim.runtime.twilio_slow_s)
    return JSONResponse(created, status_code=201)


@router.get("/{account_sid}/Messages/{sid}.json")
async def fetch_message(request: Request, account_sid: str, sid: str) -> JSONResponse:
    """One message, or 20404."""
    sim = authed(request, account_sid)
    sim.tick()
    found = sim.state.messages.get(sid)
    if found is None:
        raise not_found(request.url.path)
    return JSONResponse(found.to_json())


@router.get("/{account_sid}/Messages.json")
async def list_messages(request: Request, account_sid: str) -> JSONResponse:
    """A page of messages, newest first, filtered (see :mod:`.listing`)."""
    sim = authed(request, account_sid)
    query = listing.Query.parse(request.query_params)
    sim.tick()
    base = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
    return JSONResponse(listing.page(sim.state.messages.values(), query, base))
