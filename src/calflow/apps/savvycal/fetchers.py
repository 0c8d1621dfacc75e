"""SavvyCal data fetchers: scheduling links, and a link's open slots."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calflow.apps.savvycal.client import SavvyCalClient
from calflow.apps.savvycal.events import parse_instant, utc_iso
from calflow.errors import FieldError, ValidationError
from calflow.flowapp import ActionContext, DataFetcher, Option

DEFAULT_DAYS = 7
_DAY = {"type": "string", "minLength": 10, "description": "YYYY-MM-DD."}


def link_label(link: Mapping[str, Any]) -> str:
    """ "Name (30m)", with the link's default duration."""
    name = link.get("name") or link.get("slug") or link.get("id")
    minutes = link.get("default_duration")
    if not minutes and link.get("durations"):
        minutes = link["durations"][0]
    return f"{name} ({minutes}m)" if minutes else str(name)


class Links(DataFetcher):
    key = "links"
    name = "Scheduling links"
    description = "The integration's scheduling links; value is the link id."
    context = {"type": "object", "properties": {}, "additionalProperties": False}

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        client = SavvyCalClient(ctx)
        out = []
        async for link in client.paginate("/v1/links"):
            if isinstance(link, Mapping) and link.get("id"):
                extra = " · ".join(str(link[k]) for k in ("slug", "state") if link.get(k))
                out.append(Option(str(link["id"]), link_label(link), extra))
        return out


def _day(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise ValidationError(
            f"{field} must be a date", [FieldError(field, "expected YYYY-MM-DD", "format")]
        ) from exc


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            "time_zone is not a time zone",
            [FieldError("time_zone", f"unknown: {name!r}", "format")],
        ) from exc


class LinkSlots(DataFetcher):
    key = "link_slots"
    name = "Open slots of a link"
    description = (
        "Open start times of a scheduling link (context: link_id; optional from/until "
        "dates and time_zone for labels); value is the start in UTC."
    )
    depends_on = ("link_id",)
    context = {
        "type": "object",
        "properties": {
            "link_id": {"type": "string", "minLength": 1, "title": "Scheduling link"},
            "from": {**_DAY, "title": "From (default: today in UTC)"},
            "until": {**_DAY, "title": "Until (default: a week on)"},
            "time_zone": {"type": "string", "format": "time-zone", "title": "Time zone of labels"},
        },
        "required": ["link_id"],
        "additionalProperties": False,
    }

    async def fetch(self, ctx: ActionContext, context: Mapping[str, Any]) -> list[Option]:
        first = _day(context["from"], "from") if context.get("from") else datetime.now(UTC).date()
        last = (
            _day(context["until"], "until")
            if context.get("until")
            else first + timedelta(days=DEFAULT_DAYS - 1)
        )
        zone_name = str(context.get("time_zone") or "UTC")
        tz = _zone(zone_name)
        client = SavvyCalClient(ctx)
        resp = await client.call(
            "GET",
            f"/v1/links/{context['link_id']}/slots",
            params={"from": first.isoformat(), "until": last.isoformat()},
        )
        out: list[Option] = []
        for slot in resp.body if isinstance(resp.body, list) else []:
            if not isinstance(slot, Mapping) or not slot.get("start_at"):
                continue
            start = parse_instant(str(slot["start_at"]), "start_at")
            label = start.astimezone(tz).strftime("%a %d %b %H:%M")
            minutes = slot.get("duration")
            description = f"{minutes}m" if minutes else ""
            out.append(Option(utc_iso(start), f"{label} ({zone_name})", description))
        return out
