"""Scheduling links: list, get, available slots and booking (``POST /v1/links/{id}/events``)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.savvycal.context import authed, json_body
from calflow.sandbox.savvycal.errors import field_errors
from calflow.sandbox.savvycal.pagination import decode_cursor, paginate, parse_limit
from calflow.sandbox.savvycal.serialize import event_json, link_json, parse_iso

router = APIRouter()


@router.get("/v1/links")
async def list_links(request: Request) -> JSONResponse:
    """A page of scheduling links (cursor pagination like events)."""
    sim = authed(request)
    links = list(sim.state.links.values())
    order = [(i, i) for i in range(len(links))]
    q = request.query_params
    page = paginate(
        order, 0, len(order), lambda _k: True, descending=False,
        limit=parse_limit(q.get("limit")),
        after=decode_cursor(q["after"], "after") if q.get("after") else None,
        before=decode_cursor(q["before"], "before") if q.get("before") else None,
    )  # fmt: skip
    entries = [link_json(links[k[1]]) for k in page.keys]
    return JSONResponse({"entries": entries, "metadata": page.metadata()})


@router.get("/v1/links/{link_id}")
async def get_link(request: Request, link_id: str) -> JSONResponse:
    """One link, or 404."""
    sim = authed(request)
    return JSONResponse(link_json(sim.service.link(link_id)))


def _day(raw: str | None, name: str, default: date) -> date:
    if not raw:
        return default
    parsed = parse_iso(raw)
    if parsed is not None and "T" in raw:
        return parsed.date()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise field_errors({name: ["is invalid"]}) from None


@router.get("/v1/links/{link_id}/slots")
async def slots(request: Request, link_id: str) -> JSONResponse:
    """A bare array of open ``{start_at, end_at, duration, rank}`` (default: the next 7 days)."""
    sim = authed(request)
    link = sim.service.link(link_id)
    today = sim.runtime.now().date()
    start = _day(request.query_params.get("from"), "from", today)
    until = _day(request.query_params.get("until"), "until", start + timedelta(days=7))
    if until < start:
        raise field_errors({"until": ["must be after from"]})
    until = min(until, start + timedelta(days=62))
    return JSONResponse(sim.service.slots(link, start, until))


@router.post("/v1/links/{link_id}/events")
async def book(request: Request, link_id: str) -> JSONResponse:
    """Book an event on the link → 201 Event."""
    sim = authed(request)
    event = sim.service.book(link_id, await json_body(request))
    return JSONResponse(event_json(sim.state, event), status_code=201)
