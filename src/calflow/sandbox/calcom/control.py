"""Sandbox-only control routes of the Cal.com simulator (mounted at ``/_sandbox/calcom``).

* ``POST /bookings`` a booking made on the booking page (create body of API v2)
* ``POST /bookings/{uid}/meeting-started`` / ``/meeting-ended``: MEETING_* (shape below)
* ``POST /bookings/{uid}/recording-ready {downloadLink?}``: RECORDING_READY
* ``POST /forms/{form_id}/submit {formName?, teamId?, responses}``: FORM_SUBMITTED of
  a routing form (``responses``: ``{field: {label, value}}``)
* ``POST /options {meeting_payload: "nested" | "flat"}``: the MEETING_* body shape
* ``POST /flush``: wait for pending deliveries
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.calcom.context import json_body
from calflow.sandbox.calcom.envelope import bad_request, success
from calflow.sandbox.calcom.serialize import booking_output
from calflow.sandbox.calcom.validation import parse_create
from calflow.sandbox.calcom.webhooks import MEETING_SHAPES

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

    @router.post("/bookings/{uid}/recording-ready")
    async def recording_ready(request: Request, uid: str) -> JSONResponse:
        """Fire RECORDING_READY for ``uid`` (``{downloadLink?}``)."""
        body = await json_body(request)
        link = body.get("downloadLink") if isinstance(body, dict) else None
        if not isinstance(link, str) or not link:
            link = f"https://app.cal.com/api/video/recording?token=sandbox-{uid}"
        booking = sim.service.recording_ready(uid, link)
        return success(booking_output(sim.state, booking))

    @router.post("/forms/{form_id}/submit")
    async def form_submitted(request: Request, form_id: str) -> JSONResponse:
        """FORM_SUBMITTED as a routing form's ``sendGenericWebhookPayload`` sends it.

        ``payload`` is ``{formId, formName, teamId, responses}``; every answer's value is
        also at the root of the body. There is no booking uid.
        """
        body = await json_body(request)
        body = body if isinstance(body, dict) else {}
        responses = body.get("responses", {})
        if not isinstance(responses, dict) or not all(
            isinstance(v, dict) for v in responses.values()
        ):
            raise bad_request("responses must map each field to {label, value}")
        team_id = body.get("teamId")
        payload = {
            "formId": form_id,
            "formName": str(body.get("formName", "Routing form")),
            "teamId": team_id if isinstance(team_id, int) else None,
            "responses": responses,
        }
        root = {k: v["value"] for k, v in responses.items() if "value" in v}
        sim.dispatcher.emit_generic(sim.state.api_user_id, "FORM_SUBMITTED", payload, root)
        return success(payload)

    @router.post("/options")
    async def options(request: Request) -> JSONResponse:
        """Set ``{meeting_payload}``: ``nested`` (current Cal.com) or ``flat`` (older)."""
        body = await json_body(request)
        shape = body.get("meeting_payload") if isinstance(body, dict) else None
        if shape is not None:
            if shape not in MEETING_SHAPES:
                raise bad_request("meeting_payload must be one of: " + ", ".join(MEETING_SHAPES))
            sim.dispatcher.meeting_shape = shape
        return JSONResponse({"meeting_payload": sim.dispatcher.meeting_shape})

    @router.post("/flush")
    async def flush() -> JSONResponse:
        """Wait for every pending webhook delivery."""
        return JSONResponse({"flushed": await sim.flush()})

    return router
