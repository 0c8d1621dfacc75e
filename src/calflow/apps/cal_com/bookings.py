"""Helpers shared by the Cal.com booking actions: response → port, and event publication."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from calflow.apps.cal_com.client import BOOKINGS, CalComClient, data_of, is_slot_taken, message_of
from calflow.errors import CalflowError
from calflow.flowapp import ActionContext, ActionResult, BookingChange, ProviderResponse
from calflow.flowapp.http import Verify
from calflow.flowapp.outcomes import outcome_for

PROVIDER = "cal_com"


def booking_path(uid: str, suffix: str = "") -> str:
    return f"/v2/bookings/{uid}{suffix}"


def result_for(
    client: CalComClient,
    resp: ProviderResponse,
    *,
    conflict: bool = False,
    not_found: bool = False,
) -> ActionResult | None:
    """The non-success result for ``resp``, or ``None`` when it succeeded."""
    taken = conflict and not resp.ok and is_slot_taken(resp.status, message_of(client, resp))
    return outcome_for(client, resp, slot_taken=taken, not_found=not_found)


async def publish(
    ctx: ActionContext,
    kind: str,
    booking: Any,
    data: Mapping[str, Any],
    previous_uid: str | None = None,
) -> None:
    """Hand the booking change this action made to the event bus."""
    if not isinstance(booking, Mapping):
        return
    await ctx.booking_changed(
        BookingChange(
            provider=PROVIDER,
            kind=kind,
            booking=booking,
            integration_id=ctx.integration.id if ctx.integration else None,
            input=data,
            previous_uid=previous_uid,
        )
    )


def booking_of(resp: ProviderResponse) -> Any:
    """The booking in a response (``data``; a list for recurring bookings)."""
    return data_of(resp)


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _created(booking: Any) -> ProviderResponse:
    body = {"status": "success", "data": booking}
    return ProviderResponse(201, body, httpx.Headers({"x-calflow-verified": "true"}))


def verify_created(client: CalComClient, body: Mapping[str, Any]) -> Verify:
    """Before a create is retried: find a booking the first attempt may have made."""

    async def verify() -> ProviderResponse | None:
        start = _instant(body["start"])
        attendee = body.get("attendee", {})
        if start is None:
            return None
        params: dict[str, Any] = {
            "afterStart": (start - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
            "beforeEnd": (start + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
            "status": "upcoming,unconfirmed,past",
            "take": 50,
        }
        if attendee.get("email"):
            params["attendeeEmail"] = attendee["email"]
        else:
            params["attendeeName"] = attendee.get("name")
        try:
            resp = await client.call("GET", "/v2/bookings", BOOKINGS, params=params)
        except CalflowError:
            return None
        for booking in data_of(resp) or []:
            if not isinstance(booking, Mapping) or _instant(booking.get("start")) != start:
                continue
            if booking.get("status") not in ("accepted", "pending"):
                continue
            if "eventTypeId" in body and booking.get("eventTypeId") != body["eventTypeId"]:
                continue
            return _created(booking)
        return None

    return verify


def verify_rescheduled(client: CalComClient, uid: str) -> Verify:
    """Before a reschedule is retried: did the first attempt already move the booking?"""

    async def verify() -> ProviderResponse | None:
        try:
            old = data_of(await client.call("GET", booking_path(uid), BOOKINGS))
            new_uid = old.get("rescheduledToUid") if isinstance(old, Mapping) else None
            if not new_uid:
                return None
            return _created(data_of(await client.call("GET", booking_path(new_uid), BOOKINGS)))
        except CalflowError:
            return None

    return verify


async def change_booking(
    ctx: ActionContext,
    path: str,
    kind: str,
    data: Mapping[str, Any],
    body: Any = None,
    *,
    conflict: bool = False,
    previous_uid: str | None = None,
    client: CalComClient | None = None,
    verify: Verify | None = None,
) -> ActionResult:
    """POST a booking change; map 400/404/409 to ports; publish the change on success."""
    client = client or CalComClient(ctx)
    resp = await client.call(
        "POST", path, BOOKINGS, body=body, accept=(400, 404, 409), verify=verify
    )
    failed = result_for(client, resp, conflict=conflict, not_found=True)
    if failed is not None:
        return failed
    booking = booking_of(resp)
    await publish(ctx, kind, booking, data, previous_uid=previous_uid)
    return ActionResult.ok(booking)
