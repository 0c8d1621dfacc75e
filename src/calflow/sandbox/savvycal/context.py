"""Request helpers shared by the SavvyCal route modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request

if TYPE_CHECKING:
    from calflow.sandbox.savvycal.simulator import SavvycalSimulator


def sim_of(request: Request) -> SavvycalSimulator:
    """The simulator serving this request."""
    sim: SavvycalSimulator = request.app.state.savvycal
    return sim


def authed(request: Request) -> SavvycalSimulator:
    """The simulator, after checking the bearer token (401 otherwise)."""
    sim = sim_of(request)
    sim.tokens.check(request)
    return sim


async def json_body(request: Request) -> Any:
    """The parsed JSON body, or ``{}`` when empty or not JSON."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return await request.json()
    except ValueError:
        return {}
