"""``GET /v1/me`` and the events endpoints: list (filters, cursors), get, cancel."""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.savvycal.context import authed, json_body
from calflow.sandbox.savvycal.errors import field_errors
from calflow.sandbox.savvycal.pagination import Key, decode_cursor, paginate, parse_limit
from calflow.sandbox.savvycal.serialize import event_json, user_json
from calflow.sandbox.savvycal.state import EVENT_STATES

router = APIRouter()

_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "period": ("upcoming", ("upcoming", "past", "all", "fixed")),
    "state": ("confirmed", (*EVENT_STATES, "all")),
    "attendance": ("attending", ("attending", "any")),
    "direction": ("asc", ("asc", "desc")),
}
_DAY = 86400


def _choice(request: Request, name: str) -> str:
    default, allowed = _CHOICES[name]
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise field_errors({name: ["is invalid"]})
    return value


def _day(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if not raw:
        raise field_errors({name: ["can't be blank"]})
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise field_errors({name: ["is invalid"]}) from None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


@router.get("/v1/me")
async def me(request: Request) -> JSONResponse:
    """The authenticated user."""
    sim = authed(request)
    return JSONResponse(user_json(sim.state.me))


@router.get("/v1/events")
async def list_events(request: Request) -> JSONResponse:
    """A page of events; unknown query parameters are ignored."""
    sim = authed(request)
    period, wanted = _choice(request, "period"), _choice(request, "state")
    attendance, direction = _choice(request, "attendance"), _choice(request, "direction")
    link_id = request.query_params.get("link") or None
    limit = parse_limit(request.query_params.get("limit"))
    after_raw, before_raw = request.query_params.get("after"), request.query_params.get("before")
    after = decode_cursor(after_raw, "after") if after_raw else None
    before = decode_cursor(before_raw, "before") if before_raw else None
    st = sim.state
    order, by_seq = st.order, st.by_seq
    now = sim.runtime.now()
    now_ts = int(now.timestamp())
    lo, hi = 0, len(order)
    if period == "upcoming":
        lo = bisect.bisect_left(order, (now_ts - _DAY, -1))
    elif period == "past":
        hi = bisect.bisect_left(order, (now_ts, -1))
    elif period == "fixed":
        start_ts, until_ts = _day(request, "from"), _day(request, "until")
        lo = bisect.bisect_left(order, (start_ts, -1))
        hi = max(lo, bisect.bisect_left(order, (until_ts + _DAY, -1)))

    def match(key: Key) -> bool:
        event = by_seq[key[1]]
        if wanted != "all" and event.state != wanted:
            return False
        if attendance == "attending" and not event.me_attending:
            return False
        if link_id is not None and event.link_id != link_id:
            return False
        if period == "upcoming":
            return event.end > now
        if period == "past":
            return event.end <= now
        return True

    page = paginate(
        order, lo, hi, match, descending=direction == "desc", limit=limit, after=after,
        before=before,
    )  # fmt: skip
    entries: list[dict[str, Any]] = [event_json(st, by_seq[k[1]]) for k in page.keys]
    return JSONResponse({"entries": entries, "metadata": page.metadata()})


@router.get("/v1/events/{event_id}")
async def get_event(request: Request, event_id: str) -> JSONResponse:
    """One event, or 404."""
    sim = authed(request)
    return JSONResponse(event_json(sim.state, sim.service.event(event_id)))


@router.post("/v1/events/{event_id}/cancel")
async def cancel_event(request: Request, event_id: str) -> JSONResponse:
    """Cancel an event ``{cancel_reason}`` and return it."""
    sim = authed(request)
    body = await json_body(request)
    reason = body.get("cancel_reason") if isinstance(body, dict) else None
    return JSONResponse(event_json(sim.state, sim.service.cancel(event_id, reason)))
