"""The legacy (``2024-04-15``) bookings controller, reached without a known version header."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from calflow.sandbox.calcom.context import require_auth, sim_of
from calflow.sandbox.calcom.envelope import CalcomError, not_found, success
from calflow.sandbox.calcom.serialize import booking_row


def legacy_create_error(body: Any) -> CalcomError:
    """The 400 the legacy create answers for a body that is not a 2024-04-15 body."""
    body = body if isinstance(body, dict) else {}
    errors: list[dict[str, Any]] = []

    def add(prop: str, constraints: dict[str, str]) -> None:
        errors.append({"property": prop, "children": [], "constraints": constraints})

    if not isinstance(body.get("start"), str):
        add("start", {"isString": "start must be a string"})
    if not isinstance(body.get("eventTypeId"), int | float):
        add(
            "eventTypeId",
            {"isNumber": "eventTypeId must be a number conforming to the specified constraints"},
        )
    if not isinstance(body.get("timeZone"), str):
        add("timeZone", {"isTimeZone": "timeZone must be a valid IANA time-zone"})
    if not isinstance(body.get("language"), str):
        add("language", {"isString": "language must be a string"})
    if not isinstance(body.get("metadata"), dict):
        add("metadata", {"isObject": "metadata must be an object"})
    if not errors:
        add(
            "cal-api-version",
            {"sandbox": "legacy 2024-04-15 booking creation is not simulated; send 2024-08-13"},
        )
    message = "Bad Request Exception"
    return CalcomError(
        400,
        message,
        details={"message": message, "error": "Bad Request", "statusCode": 400, "errors": errors},
    )


def legacy_list(request: Request) -> JSONResponse:
    """Legacy list: ``{bookings: [rows], recurringInfo, nextCursor}``."""
    require_auth(request)
    sim = sim_of(request)
    rows = [booking_row(sim.state, b) for b in sim.state.bookings.values()]
    return success({"bookings": rows, "recurringInfo": [], "nextCursor": None})


def legacy_get(request: Request, uid: str) -> JSONResponse:
    """Legacy get: the booking row."""
    require_auth(request, optional=True)
    sim = sim_of(request)
    booking = sim.state.bookings.get(uid)
    if booking is None:
        raise not_found(f"Booking with UID={uid} does not exist.")
    return success(booking_row(sim.state, booking))


def legacy_cancel(request: Request, uid: str, body: Any) -> JSONResponse:
    """Legacy cancel: ``{success, message, onlyRemovedAttendee, bookingId, bookingUid}``."""
    require_auth(request, optional=True)
    sim = sim_of(request)
    reason = body.get("cancellationReason") if isinstance(body, dict) else None
    booking = sim.service.cancel(uid, reason if isinstance(reason, str) else None)
    return success(
        {
            "success": True,
            "message": "Booking successfully cancelled.",
            "onlyRemovedAttendee": False,
            "bookingId": booking.id,
            "bookingUid": booking.uid,
        }
    )
