"""Request helpers shared by the Cal.com route modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request

from calflow.sandbox.calcom.auth import MSG_BAD_KEY, MSG_NO_AUTH, bearer_token
from calflow.sandbox.calcom.envelope import CalcomError

if TYPE_CHECKING:
    from calflow.sandbox.calcom.simulator import CalcomSimulator


def sim_of(request: Request) -> CalcomSimulator:
    """The simulator serving this request."""
    sim: CalcomSimulator = request.app.state.calcom
    return sim


def require_auth(request: Request, *, optional: bool = False) -> bool:
    """401 for a missing (unless ``optional``) or wrong API key; True when authenticated."""
    token = bearer_token(request)
    if token is None:
        if optional:
            return False
        raise CalcomError(401, MSG_NO_AUTH)
    if token != sim_of(request).api_key:
        raise CalcomError(401, MSG_BAD_KEY)
    return True


async def json_body(request: Request) -> Any:
    """The parsed JSON body, or ``{}`` when empty or not JSON."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return await request.json()
    except ValueError:
        return {}
