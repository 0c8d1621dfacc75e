"""``/v2/bookings`` routes (``cal-api-version: 2024-08-13``); see :mod:`.auth` for routing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.calcom import legacy
from calflow.sandbox.calcom.auth import BOOKINGS_VERSION, throttled, version_routing
from calflow.sandbox.calcom.context import json_body, require_auth, sim_of
from calflow.sandbox.calcom.envelope import (
    CalcomError,
    bad_request,
    paginated,
    parse_iso,
    route_not_found,
    success,
)
from calflow.sandbox.calcom.serialize import booking_output
from calflow.sandbox.calcom.state import Booking
from calflow.sandbox.calcom.validation import parse_create

router = APIRouter()

STATUSES = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
MSG_LIST_NO_AUTH = (
    "PermissionsGuard - no authentication provided. Provide either authorization bearer token "
    "containing managed user access token or oAuth client id in 'x-cal-client-id' header."
)
_SORTS = {
    "sortStart": "start",
    "sortEnd": "end",
    "sortCreated": "created_at",
    "sortUpdatedAt": "updated_at",
}


def _current_only(request: Request) -> None:
    """Routes the legacy controller lacks: anything but 2024-08-13 is a router 404."""
    if version_routing(request, BOOKINGS_VERSION) != "current":
        raise route_not_found(request)


def _output(
    request: Request, booking: Booking, authed: bool = True, seat_uid: str | None = None
) -> dict[str, Any]:
    """The booking as API v2 answers it. Seated bookings show their attendees to the
    event type's owner (``authed``) or when ``seatsShowAttendees`` is on; create and
    reschedule add ``seatUid`` (``getOutputCreateSeatedBooking``)."""
    state = sim_of(request).state
    show = authed or state.event_types[booking.event_type_id].seats_show_attendees
    data = booking_output(state, booking, show)
    if seat_uid is not None:
        data["seatUid"] = seat_uid
    return data


@router.post("/v2/bookings")
async def create_booking(request: Request) -> JSONResponse:
    """Create a booking."""
    routing = version_routing(request, BOOKINGS_VERSION)
    body = await json_body(request)
    if routing == "other":
        raise route_not_found(request)
    if routing == "legacy":
        raise legacy.legacy_create_error(body)
    authed = require_auth(request, optional=True)
    sim = sim_of(request)
    booking, seat_uid = sim.service.create(parse_create(sim.state, body))
    return success(_output(request, booking, authed, seat_uid), status_code=201)


def _status_filter(now: datetime, statuses: list[str]) -> Callable[[Booking], bool]:
    def keep(b: Booking) -> bool:
        active = b.status not in ("cancelled", "rejected")
        checks = {
            "upcoming": b.end >= now and active,
            "recurring": False,
            "past": b.end <= now and active,
            "cancelled": not active,
            "unconfirmed": b.end >= now and b.status == "pending",
        }
        return any(checks[s] for s in statuses)

    return keep


def _int(value: str | None, name: str, default: int, lo: int, hi: int | None) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_request(
            f"{name} must be a number conforming to the specified constraints"
        ) from None
    if number < lo:
        raise bad_request(f"{name} must not be less than {lo}")
    if hi is not None and number > hi:
        raise bad_request(f"{name} must not be greater than {hi}")
    return number


def _ids(value: str | None, name: str) -> set[int] | None:
    if not value:
        return None
    try:
        return {int(v) for v in value.split(",") if v.strip()}
    except ValueError:
        raise bad_request(
            f"each value in {name} must be a number conforming to the specified constraints"
        ) from None


@router.get("/v2/bookings")
async def list_bookings(request: Request) -> JSONResponse:
    """List bookings with Cal.com's filters, sorting and offset pagination."""
    routing = version_routing(request, BOOKINGS_VERSION)
    if routing == "other":
        raise route_not_found(request)
    if routing == "legacy":
        return legacy.legacy_list(request)
    if not require_auth(request, optional=True):
        raise CalcomError(403, MSG_LIST_NO_AUTH)
    sim = sim_of(request)
    q = request.query_params
    items = list(sim.state.bookings.values())
    statuses = [s.strip() for s in q.get("status", "").split(",") if s.strip()]
    if any(s not in STATUSES for s in statuses):
        raise bad_request(
            "Invalid status. Allowed are upcoming, recurring, past, cancelled, unconfirmed"
        )
    if statuses:
        items = [b for b in items if _status_filter(sim.runtime.now(), statuses)(b)]
    if email := q.get("attendeeEmail", "").strip().replace(" ", "+").lower():
        items = [b for b in items if any(a.email.lower() == email for a in b.attendees)]
    if name := q.get("attendeeName", "").strip():
        items = [b for b in items if any(a.name == name for a in b.attendees)]
    if uid := q.get("bookingUid", "").strip():
        items = [b for b in items if b.uid == uid]
    et_ids = _ids(q.get("eventTypeIds"), "eventTypeIds")
    if et_ids is None and q.get("eventTypeId"):
        et_ids = _ids(q.get("eventTypeId"), "eventTypeId")
    if et_ids is not None:
        items = [b for b in items if b.event_type_id in et_ids]
    team_ids = _ids(q.get("teamsIds") or q.get("teamIds"), "teamsIds") or _ids(
        q.get("teamId"), "teamId"
    )
    if team_ids is not None:
        items = [b for b in items if sim.state.event_types[b.event_type_id].team_id in team_ids]
    bounds: list[tuple[str, str, bool]] = [
        ("afterStart", "start", True),
        ("beforeEnd", "end", False),
        ("afterCreatedAt", "created_at", True),
        ("beforeCreatedAt", "created_at", False),
        ("afterUpdatedAt", "updated_at", True),
        ("beforeUpdatedAt", "updated_at", False),
    ]
    for param, attr, after in bounds:
        if raw := q.get(param):
            limit = parse_iso(raw, "fromDate" if after else "toDate")
            items = [
                b
                for b in items
                if (getattr(b, attr) >= limit if after else getattr(b, attr) <= limit)
            ]
    sort_key, descending = (
        "start",
        bool(statuses) and all(s in ("past", "cancelled") for s in statuses),
    )
    for param, attr in _SORTS.items():
        if direction := q.get(param):
            if direction not in ("asc", "desc"):
                raise bad_request(f'{param[0].upper() + param[1:]} must be either "asc" or "desc".')
            sort_key, descending = attr, direction == "desc"
            break
    items.sort(key=lambda b: (getattr(b, sort_key), b.id), reverse=descending)
    take = _int(q.get("take"), "take", 100, 1, 250)
    skip = _int(q.get("skip"), "skip", 0, 0, None)
    return paginated([booking_output(sim.state, b) for b in items], take, skip)


@router.get("/v2/bookings/{uid}")
async def get_booking(request: Request, uid: str) -> JSONResponse:
    """Get one booking."""
    routing = version_routing(request, BOOKINGS_VERSION)
    if routing == "other":
        raise route_not_found(request)
    if routing == "legacy":
        return legacy.legacy_get(request, uid)
    authed = require_auth(request, optional=True)
    return success(_output(request, sim_of(request).service.get(uid), authed))


@router.post("/v2/bookings/{uid}/cancel")
async def cancel_booking(request: Request, uid: str) -> JSONResponse:
    """Cancel a booking."""
    routing = version_routing(request, BOOKINGS_VERSION)
    body = await json_body(request)
    if routing == "other":
        raise route_not_found(request)
    if routing == "legacy":
        return legacy.legacy_cancel(request, uid, body)
    authed = require_auth(request, optional=True)
    body = body if isinstance(body, dict) else {}
    reason = body.get("cancellationReason")
    if reason is not None and not isinstance(reason, str):
        raise bad_request(
            "cancellationReason property is wrong,cancellationReason must be a string "
        )
    seat_uid = _seat_uid(body)
    booking = sim_of(request).service.cancel(uid, reason, seat_uid, host=authed)
    return success(_output(request, booking, authed))


def _seat_uid(body: dict[str, Any]) -> str | None:
    """``seatUid`` of ``CancelSeatedBookingInput`` / ``RescheduleSeatedBookingInput``."""
    if "seatUid" not in body:
        return None
    value = body["seatUid"]
    if not isinstance(value, str):
        raise bad_request("seatUid property is wrong,seatUid must be a string ")
    return value


@router.post("/v2/bookings/{uid}/reschedule")
async def reschedule_booking(request: Request, uid: str) -> JSONResponse:
    """Reschedule: a new booking with a new uid; the old one is cancelled."""
    _current_only(request)
    authed = require_auth(request, optional=True)
    body = await json_body(request)
    body = body if isinstance(body, dict) else {}
    start = parse_iso(body.get("start"), "start")
    reason, by = body.get("reschedulingReason"), body.get("rescheduledBy")
    booking, seat_uid = sim_of(request).service.reschedule(
        uid,
        start,
        reason if isinstance(reason, str) else None,
        by if isinstance(by, str) else None,
        _seat_uid(body),
        host=authed,
    )
    return success(_output(request, booking, authed, seat_uid), status_code=201)


@router.post("/v2/bookings/{uid}/mark-absent")
async def mark_absent(request: Request, uid: str) -> JSONResponse:
    """Mark host and/or attendees absent."""
    _current_only(request)
    require_auth(request)
    body = await json_body(request)
    body = body if isinstance(body, dict) else {}
    host = body.get("host")
    attendees = body.get("attendees") or []
    if not isinstance(attendees, list) or not all(
        isinstance(a, dict)
        and isinstance(a.get("email"), str)
        and isinstance(a.get("absent"), bool)
        for a in attendees
    ):
        raise bad_request("attendees property is wrong,each attendee needs email and absent ")
    booking = sim_of(request).service.mark_absent(
        uid, host if isinstance(host, bool) else None, attendees
    )
    return success(_output(request, booking))


@router.post("/v2/bookings/{uid}/guests")
async def add_guests(request: Request, uid: str) -> JSONResponse:
    """Add guests (≤10 per request, ≤30 per booking, 5 requests per minute per key)."""
    _current_only(request)
    require_auth(request)
    sim = sim_of(request)
    decision = sim.guests_limiter.hit(sim.api_key)
    if not decision.allowed:
        raise throttled(decision)
    body = await json_body(request)
    guests = body.get("guests") if isinstance(body, dict) else None
    return success(_output(request, sim.service.add_guests(uid, guests)))


@router.post("/v2/bookings/{uid}/confirm")
async def confirm_booking(request: Request, uid: str) -> JSONResponse:
    """Confirm a booking that requires confirmation."""
    _current_only(request)
    require_auth(request)
    return success(_output(request, sim_of(request).service.confirm(uid)))


@router.post("/v2/bookings/{uid}/decline")
async def decline_booking(request: Request, uid: str) -> JSONResponse:
    """Decline a booking that requires confirmation."""
    _current_only(request)
    require_auth(request)
    body = await json_body(request)
    reason = body.get("reason") if isinstance(body, dict) else None
    booking = sim_of(request).service.decline(uid, reason if isinstance(reason, str) else None)
    return success(_output(request, booking))
