"""``GET /v2/slots`` (``cal-api-version: 2024-09-04``; anything else is a router 404)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from calflow.sandbox.calcom.auth import SLOTS_VERSION, version_routing
from calflow.sandbox.calcom.availability import free_slots
from calflow.sandbox.calcom.context import require_auth, sim_of
from calflow.sandbox.calcom.envelope import bad_request, not_found, parse_iso, route_not_found
from calflow.sandbox.calcom.state import CalcomState, EventType
from calflow.sandbox.calcom.validation import valid_time_zone

router = APIRouter()
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _bound(raw: str | None, name: str, end: bool) -> datetime:
    if not raw:
        raise bad_request(f"{name} must be a valid ISO 8601 date string")
    if _DATE_ONLY.match(raw):
        day = datetime.fromisoformat(raw).replace(tzinfo=UTC)
        return day + timedelta(hours=23, minutes=59, seconds=59) if end else day
    return parse_iso(raw, name)


def render(value: datetime, zone: str) -> str:
    """``2050-09-05T09:00:00.000+02:00`` (``Z`` for UTC)."""
    if zone == "UTC":
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    local = value.astimezone(ZoneInfo(zone))
    text = local.strftime("%Y-%m-%dT%H:%M:%S.000%z")
    return text[:-2] + ":" + text[-2:]


def _event_type(state: CalcomState, q: Any) -> EventType:
    if q.get("eventTypeId"):
        try:
            et = state.event_types.get(int(q["eventTypeId"]))
        except ValueError:
            raise bad_request(
                "eventTypeId must be a number conforming to the specified constraints"
            ) from None
        if et is None:
            raise not_found("Event Type not found")
        return et
    slug = q.get("eventTypeSlug")
    if slug and q.get("username"):
        user = state.user_by_username(q["username"])
        if user is None:
            raise not_found(f"User with username {q['username']} not found")
        found = state.event_type_by_slug(slug, user_id=user.id)
    elif slug and q.get("teamSlug"):
        team = state.team_by_slug(q["teamSlug"])
        found = state.event_type_by_slug(slug, team_id=team.id) if team else None
    elif q.get("usernames"):
        names = [n for n in q["usernames"].split(",") if n]
        if len(names) < 2:
            raise bad_request("The array must contain at least 2 elements.")
        users = [state.user_by_username(n) for n in names]
        if any(u is None for u in users):
            raise not_found("Users not found")
        return EventType(
            id=0,
            slug="dynamic",
            title="Dynamic",
            length=30,
            owner_id=None,
            host_ids=[u.id for u in users if u is not None],
        )
    else:
        raise bad_request(
            "Either eventTypeId, eventTypeSlug + username, eventTypeSlug + teamSlug or usernames "
            "must be provided"
        )
    if found is None:
        raise not_found("Event Type not found")
    return found


@router.get("/v2/slots")
async def get_slots(request: Request) -> JSONResponse:
    """Available slots keyed by day in the requested time zone."""
    if version_routing(request, SLOTS_VERSION) != "current":
        raise route_not_found(request)
    require_auth(request, optional=True)
    sim = sim_of(request)
    q = request.query_params
    start = _bound(q.get("start"), "start", end=False)
    end = _bound(q.get("end"), "end", end=True)
    zone = q.get("timeZone") or "UTC"
    if not valid_time_zone(zone):
        raise bad_request("timeZone must be a valid IANA time zone")
    fmt = (q.get("format") or "time").lower()
    if fmt not in ("time", "range"):
        raise bad_request('format must be either "range" or "time"')
    et = _event_type(sim.state, q)
    duration = et.length
    if q.get("duration"):
        try:
            duration = int(q["duration"])
        except ValueError:
            raise bad_request(
                "duration must be a number conforming to the specified constraints"
            ) from None
    if et.id == 0 and not q.get("duration"):
        duration = 30
    exclude = q.get("bookingUidToReschedule") or None
    starts = free_slots(sim.state, et, start, end, duration, sim.runtime.now(), exclude)
    data: dict[str, list[dict[str, str]]] = {}
    for slot in starts:
        day = slot.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d")
        item = {"start": render(slot, zone)}
        if fmt == "range":
            item["end"] = render(slot + timedelta(minutes=duration), zone)
        data.setdefault(day, []).append(item)
    return JSONResponse({"data": data, "status": "success"})
