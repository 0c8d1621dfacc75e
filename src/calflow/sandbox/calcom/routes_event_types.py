"""``/v2/event-types`` (``cal-api-version: 2024-06-14``) and the version-neutral ``/v2/me``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.calcom.auth import EVENT_TYPES_VERSION, version_routing
from calflow.sandbox.calcom.context import require_auth, sim_of
from calflow.sandbox.calcom.envelope import not_found, route_not_found, success
from calflow.sandbox.calcom.state import CalcomState, EventType

router = APIRouter()


def event_type_output(state: CalcomState, et: EventType) -> dict[str, Any]:
    """``EventTypeOutput_2024_06_14`` (the fields the sandbox models)."""
    out: dict[str, Any] = {
        "id": et.id,
        "lengthInMinutes": et.length,
        "title": et.title,
        "slug": et.slug,
        "description": et.description,
        "locations": [{"type": "integration", "integration": "cal-video"}],
        "bookingFields": [
            {"type": "name", "slug": "name", "isDefault": True, "required": True},
            {"type": "email", "slug": "email", "isDefault": True, "required": True},
        ],
        "disableGuests": False,
        "slotInterval": None,
        "minimumBookingNotice": et.minimum_notice_min,
        "beforeEventBuffer": 0,
        "afterEventBuffer": 0,
        "recurrence": None,
        "metadata": {},
        "price": 0,
        "currency": "usd",
        "lockTimeZoneToggleOnBookingPage": False,
        "seatsPerTimeSlot": et.seats_per_slot,
        "forwardParamsSuccessRedirect": None,
        "successRedirectUrl": None,
        "isInstantEvent": False,
        "seatsShowAvailabilityCount": bool(et.seats_per_slot),
        "scheduleId": None,
        "bookingWindow": [
            {"type": "calendarDays", "value": et.booking_window_days, "rolling": True}
        ],
        "confirmationPolicy": {"type": "always"} if et.requires_confirmation else None,
        "requiresConfirmation": et.requires_confirmation,
        "hidden": et.hidden,
        "bookingRequiresAuthentication": False,
        "ownerId": et.owner_id,
        "users": [state.users[h].username for h in et.host_ids],
    }
    if et.length_options:
        out["lengthInMinutesOptions"] = list(et.length_options)
    if et.seats_per_slot:
        out["seats"] = {"seatsPerTimeSlot": et.seats_per_slot, "showAttendeeInfo": False}
    if et.team_id is not None:
        team = state.teams[et.team_id]
        out.update({"teamId": team.id, "schedulingType": "collective"})
    return out


def _personal(state: CalcomState, user_ids: set[int]) -> list[EventType]:
    return [e for e in state.event_types.values() if e.team_id is None and e.owner_id in user_ids]


@router.get("/v2/event-types")
async def list_event_types(request: Request) -> JSONResponse:
    """Event types of ``username`` / ``usernames`` (``eventSlug`` narrows), else the caller's."""
    routing = version_routing(request, EVENT_TYPES_VERSION)
    if routing == "other":
        raise route_not_found(request)
    sim = sim_of(request)
    state, q = sim.state, request.query_params
    if routing == "legacy":
        require_auth(request)
        types = [event_type_output(state, e) for e in _personal(state, {state.api_user_id})]
        return success({"eventTypeGroups": [{"eventTypes": types}], "profiles": []})
    names = [n for n in (q.get("usernames") or q.get("username") or "").split(",") if n]
    if names:
        require_auth(request, optional=True)
        users = [state.user_by_username(n) for n in names]
        found = _personal(state, {u.id for u in users if u is not None})
    else:
        require_auth(request)
        found = _personal(state, {state.api_user_id})
    if slug := q.get("eventSlug"):
        found = [e for e in found if e.slug == slug]
    return success([event_type_output(state, e) for e in found])


@router.get("/v2/event-types/{event_type_id}")
async def get_event_type(request: Request, event_type_id: str) -> JSONResponse:
    """One event type by id."""
    routing = version_routing(request, EVENT_TYPES_VERSION)
    if routing == "other":
        raise route_not_found(request)
    require_auth(request)
    sim = sim_of(request)
    et = sim.state.event_types.get(int(event_type_id)) if event_type_id.isdigit() else None
    if et is None:
        raise not_found(f"Event type with id={event_type_id} not found")
    data = event_type_output(sim.state, et)
    return success({"eventType": data} if routing == "legacy" else data)


@router.get("/v2/me")
async def get_me(request: Request) -> JSONResponse:
    """The authenticated user (``MeOutput``)."""
    require_auth(request)
    user = sim_of(request).state.api_user
    return success(
        {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "name": user.name,
            "timeFormat": 24,
            "defaultScheduleId": 1,
            "weekStart": "Monday",
            "timeZone": user.time_zone,
            "organizationId": None,
        }
    )
