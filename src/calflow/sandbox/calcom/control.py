"""Sandbox-only control routes of the Cal.com simulator (mounted at ``/_sandbox/calcom``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.calcom.context import json_body
from calflow.sandbox.calcom.envelope import success
from calflow.sandbox.calcom.serialize import booking_output
from calflow.sandbox.calcom.validation import parse_create

if TYPE_CHECKING:
    from calflow.sandbox.calcom.simulator import CalcomSimulator


def control_router(sim: CalcomSimulator) -> APIRouter:
    """Routes that act as Cal.com's own UI or its scheduled jobs."""
    router = APIRouter()

    @router.post("/bookings")
    async def web_booking(request: Request) -> JSONResponse:
        """A booking made on Cal.com's booking page (same validation and webhooks)."""
        booking, seat_uid = sim.service.create(
            parse_create(sim.state, await json_body(request)), source="web"
        )
        data = booking_output(sim.state, booking)
        if seat_uid:
            data["seatUid"] = seat_uid
        return success(data, status_code=201)

    @router.post("/bookings/{uid}/meeting-started")
    async def meeting_started(uid: str) -> JSONResponse:
        """Fire MEETING_STARTED for ``uid``."""
        return success(booking_output(sim.state, sim.service.meeting_event(uid, "MEETING_STARTED")))

    @router.post("/bookings/{uid}/meeting-ended")
    async def meeting_ended(uid: str) -> JSONResponse:
        """Fire MEETING_ENDED for ``uid``."""
        return success(booking_output(sim.state, sim.service.meeting_event(uid, "MEETING_ENDED")))

    @router.post("/flush")
    async def flush() -> JSONResponse:
        """Wait for every pending webhook delivery."""
        return JSONResponse({"flushed": await sim.flush()})

    return router
