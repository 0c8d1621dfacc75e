"""Helpers shared by the SavvyCal event actions: response → port, times, publication."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from calflow.apps.savvycal.client import SavvyCalClient, field_errors
from calflow.errors import FieldError, ValidationError
from calflow.flowapp import ActionContext, ActionResult, BookingChange, ProviderResponse
from calflow.flowapp.outcomes import outcome_for

PROVIDER = "savvycal"


def event_path(event_id: str, suffix: str = "") -> str:
    return f"/v1/events/{event_id}{suffix}"


def is_slot_taken(resp: ProviderResponse) -> bool:
    """SavvyCal answers a time that is not open with 422 and ``errors.start_at``."""
    return resp.status == 422 and "start_at" in field_errors(resp.body)


def result_for(
    client: SavvyCalClient,
    resp: ProviderResponse,
    *,
    conflict: bool = False,
    not_found: bool = False,
) -> ActionResult | None:
    """The non-success result for ``resp``, or ``None`` when it succeeded."""
    taken = conflict and not resp.ok and is_slot_taken(resp)
    return outcome_for(client, resp, slot_taken=taken, not_found=not_found)


def parse_instant(value: str, field: str) -> datetime:
    """An ISO 8601 date-time as an aware datetime (UTC when it has no offset)."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(
            f"{field} must be an ISO 8601 date-time",
            [FieldError(field, f"{value!r} is not an ISO 8601 date-time", "format")],
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def utc_iso(value: str | datetime, field: str = "start_at") -> str:
    """An instant in UTC, ``2050-09-05T09:00:00Z``, as SavvyCal writes them."""
    parsed = value if isinstance(value, datetime) else parse_instant(value, field)
    return parsed.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def date_or_instant(value: str, field: str) -> str:
    """A date (``YYYY-MM-DD``) as is; a date-time in UTC."""
    text = value.strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError as exc:
            raise ValidationError(
                f"{field} must be an ISO 8601 date or date-time",
                [FieldError(field, f"{value!r} is not an ISO 8601 date", "format")],
            ) from exc
    return utc_iso(text, field)


async def publish(ctx: ActionContext, kind: str, event: Any, data: Mapping[str, Any]) -> None:
    """Hand the booking change this action made to the event bus."""
    if not isinstance(event, Mapping):
        return
    await ctx.booking_changed(
        BookingChange(
            provider=PROVIDER,
            kind=kind,
            booking=event,
            integration_id=ctx.integration.id if ctx.integration else None,
            input=data,
        )
    )
