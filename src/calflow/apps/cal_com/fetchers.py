"""Cal.com data fetchers: event types, a user's event types, open slots, bookings, webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calflow.apps.cal_com.client import (
    BOOKINGS,
    EVENT_TYPES,
    NO_VERSION,
    SLOTS,
    CalComClient,
    data_of,
)
from calflow.errors import FieldError, ValidationError
from calflow.flowapp import ActionContext, DataFetcher, Option

_NO_CONTEXT: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def event_type_label(et: Mapping[str, Any]) -> str:
    """ "Title (30m)", as Cal.com's own pickers show event types."""
    length = et.get("lengthInMinutes") or et.get("length")
    return f"{et.get('title') or et.get('slug')} ({length}m)" if length else str(et.get("title"))


def _event_types(body: Any) -> list[Mapping[str, Any]]:
    data = body.get("data") if isinstance(body, Mapping) else body
    if isinstance(data, Mapping):  # some versions group by user: {eventTypeGroups: …}
        data = data.get("eventTypes") or []
    return [et for et in data or [] if isinstance(et, Mapping)]


class EventTypes(DataFetcher):
    key = "event_types"
    name = "Event types"
    description = "The integration's own event types; value is the event type id."
    context = _NO_CONTEXT

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        client = CalComClient(ctx)
        resp = await client.call("GET", "/v2/event-types", EVENT_TYPES)
        return [
            Option(et["id"], event_type_label(et), str(et.get("slug") or ""))
            for et in _event_types(resp.body)
            if not et.get("hidden")
        ]


class UserEventTypes(DataFetcher):
    key = "user_event_types"
    name = "Event types of a user"
    description = "A username's public event types; value is the slug."
    depends_on = ("username",)
    context = {
        "type": "object",
        "properties": {"username": {"type": "string", "minLength": 1, "title": "Username"}},
        "required": ["username"],
        "additionalProperties": False,
    }

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        client = CalComClient(ctx)
        resp = await client.call(
            "GET", "/v2/event-types", EVENT_TYPES, params={"username": context["username"]}
        )
        return [
            Option(et["slug"], event_type_label(et), str(et.get("description") or ""))
            for et in _event_types(resp.body)
            if et.get("slug") and not et.get("hidden")
        ]


def _day(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise ValidationError(
            f"{field} must be a date", [FieldError(field, "expected YYYY-MM-DD", "format")]
        ) from exc


def _count(value: Any, default: int, field: str) -> int:
    if value in (None, ""):
        return default
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= 62:
        raise ValidationError(
            f"{field} must be a whole number from 1 to 62",
            [FieldError(field, f"{value!r} is not a whole number from 1 to 62", "range")],
        )
    return count


class Slots(DataFetcher):
    key = "slots"
    name = "Open slots"
    description = (
        "Open start times of an event type (context: eventTypeId; optional date, days, "
        "timeZone); value is the start in UTC."
    )
    depends_on = ("eventTypeId",)
    context = {
        "type": "object",
        "properties": {
            "eventTypeId": {"type": "integer", "minimum": 1, "title": "Event type"},
            "date": {
                "type": "string",
                "minLength": 10,
                "title": "First day",
                "description": "YYYY-MM-DD (default: today in UTC).",
            },
            "days": {"type": "integer", "minimum": 1, "maximum": 62, "title": "Days"},
            "timeZone": {"type": "string", "format": "time-zone", "title": "Time zone"},
        },
        "required": ["eventTypeId"],
        "additionalProperties": False,
    }

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        zone = str(context.get("timeZone") or "UTC")
        first = _day(context["date"], "date") if context.get("date") else datetime.now(UTC).date()
        days = _count(context.get("days"), 1 if context.get("date") else 7, "days")
        params = {
            "eventTypeId": context["eventTypeId"],
            "start": first.isoformat(),
            "end": (first + timedelta(days=days - 1)).isoformat(),
            "timeZone": zone,
        }
        client = CalComClient(ctx)
        resp = await client.call("GET", "/v2/slots", SLOTS, params=params)
        tz = ZoneInfo(zone)
        out: list[Option] = []
        for day, slots in sorted((data_of(resp) or {}).items()):
            for slot in slots or []:
                start = datetime.fromisoformat(str(slot["start"]).replace("Z", "+00:00"))
                utc = start.astimezone(UTC).isoformat(timespec="milliseconds")
                label = start.astimezone(tz).strftime("%a %d %b %H:%M")
                out.append(Option(utc.replace("+00:00", "Z"), f"{label} ({zone})", day))
        return out


class Bookings(DataFetcher):
    key = "bookings"
    name = "Bookings"
    description = "Upcoming and unconfirmed bookings; value is the uid."
    context = {
        "type": "object",
        "properties": {
            "status": {
                "type": "string",
                "minLength": 1,
                "title": "Statuses",
                "description": "Comma-separated (default: upcoming,unconfirmed).",
            }
        },
        "additionalProperties": False,
    }

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        client = CalComClient(ctx)
        params = {
            "status": str(context.get("status") or "upcoming,unconfirmed"),
            "sortStart": "asc",
        }
        out = []
        async for b in client.paginate("/v2/bookings", BOOKINGS, params, limit=200):
            who = ", ".join(a.get("name", "") for a in b.get("attendees", []))
            out.append(Option(b["uid"], f"{b.get('title')} — {b.get('start')}", who))
        return out


class Webhooks(DataFetcher):
    key = "webhooks"
    name = "Webhooks"
    description = "The integration's webhook subscriptions; value is the id."
    context = _NO_CONTEXT

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        client = CalComClient(ctx)
        out = []
        async for h in client.paginate("/v2/webhooks", NO_VERSION, {}, None, 250):
            out.append(
                Option(
                    str(h["id"]), str(h.get("subscriberUrl")), ", ".join(h.get("triggers") or [])
                )
            )
        return out
