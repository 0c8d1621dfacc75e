"""Sandbox-only control routes of the SavvyCal simulator (mounted at ``/_sandbox/savvycal``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.savvycal.context import json_body
from calflow.sandbox.savvycal.serialize import event_json

if TYPE_CHECKING:
    from calflow.sandbox.savvycal.simulator import SavvycalSimulator


def control_router(sim: SavvycalSimulator) -> APIRouter:
    """Routes that act as SavvyCal's own UI (the booking page, the host's inbox)."""
    router = APIRouter()

    @router.post("/links/{link_id}/events")
    async def web_booking(request: Request, link_id: str) -> JSONResponse:
        """A booking made on the scheduling page (same validation and webhooks as the API)."""
        event = sim.service.book(link_id, await json_body(request), source="web")
        return JSONResponse(event_json(sim.state, event), status_code=201)

    @router.post("/events/{event_id}/approve")
    async def approve(event_id: str) -> JSONResponse:
        """Approve a requested event (``event.approved`` + ``event.created``)."""
        return JSONResponse(event_json(sim.state, sim.service.approve(event_id)))

    @router.post("/events/{event_id}/decline")
    async def decline(request: Request, event_id: str) -> JSONResponse:
        """Decline a requested event ``{reason?}`` (``event.declined``)."""
        body = await json_body(request)
        reason = body.get("reason") if isinstance(body, dict) else None
        return JSONResponse(event_json(sim.state, sim.service.decline(event_id, reason)))

    @router.post("/events/{event_id}/reschedule")
    async def reschedule(request: Request, event_id: str) -> JSONResponse:
        """Move an event ``{start_at, end_at?, reschedule_reason?}`` (``event.rescheduled``)."""
        event = sim.service.reschedule(event_id, await json_body(request))
        return JSONResponse(event_json(sim.state, event))

    @router.post("/events/{event_id}/change")
    async def change(request: Request, event_id: str) -> JSONResponse:
        """Edit ``{summary?, description?, location?, metadata?}`` (``event.changed``)."""
        event = sim.service.change(event_id, await json_body(request))
        return JSONResponse(event_json(sim.state, event))

    @router.post("/events/{event_id}/attendees")
    async def add_attendee(request: Request, event_id: str) -> JSONResponse:
        """Add ``{display_name, email, time_zone, phone_number?, fields?}`` to the event
        (``event.attendee.added``)."""
        event = sim.service.attendees.add(event_id, await json_body(request))
        return JSONResponse(event_json(sim.state, event), status_code=201)

    @router.post("/events/{event_id}/attendees/{attendee}/cancel")
    async def cancel_attendee(event_id: str, attendee: str) -> JSONResponse:
        """One attendee (id or email) leaves a group session (``event.attendee.canceled``;
        the last one cancels the event, ``event.canceled``)."""
        event = sim.service.attendees.cancel(event_id, attendee)
        return JSONResponse(event_json(sim.state, event))

    @router.post("/events/{event_id}/attendees/{attendee}/reschedule")
    async def reschedule_attendee(request: Request, event_id: str, attendee: str) -> JSONResponse:
        """One attendee moves to ``{start_at, end_at?}`` (``event.attendee.rescheduled``);
        answers the session they are now on."""
        event = sim.service.attendees.reschedule(event_id, attendee, await json_body(request))
        return JSONResponse(event_json(sim.state, event))

    @router.post("/flush")
    async def flush() -> JSONResponse:
        """Wait for every pending webhook delivery (retries included)."""
        return JSONResponse({"flushed": await sim.flush()})

    return router
