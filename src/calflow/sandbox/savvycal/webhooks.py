"""Webhook delivery as SavvyCal does it: every type to every webhook, signed, retried.

Body ``{"type", "id": "payload_…", "version": "2020-11-18", "occurred_at", "payload"}``
(compact JSON); ``payload`` is the Event, except for ``event.changed`` where it is
``{"event": Event}`` (the ``EventChangedWebhook`` schema) and for the per-attendee types
``event.attendee.added / canceled / rescheduled``, where it is ``{"event": Event,
"attendee": EventAttendee}`` plus, for a reschedule, ``"previous_event": Event`` (the
event the attendee left). SavvyCal documents no payload for those three: the shape is
inferred from ``EventChangedWebhook`` (see ``docs/DESIGN.md``, "SavvyCal per-attendee
deliveries"). Headers
``x-savvycal-signature: sha256=<HEX>``, the uppercase hex HMAC-SHA256 of the raw body
keyed by the webhook's secret, and ``x-savvycal-webhook-id`` (the webhook's id). A
non-2xx answer or a transport error is retried with exponential backoff (``attempts``
tries in all, waiting ``backoff_s``, ``2 * backoff_s``, … between them; short by default
for the sandbox).
Each attempt is recorded in ``state.deliveries``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from calflow.sandbox.savvycal.serialize import WEBHOOK_VERSION, attendee_json, event_json, iso
from calflow.sandbox.savvycal.state import Attendee, Delivery, Event, SavvycalState, Webhook

USER_AGENT = "SavvyCal Webhooks (https://savvycal.com)"


def sign(secret: str, body: bytes) -> str:
    """``sha256=<UPPERCASE HEX>`` of HMAC-SHA256(secret, body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().upper()


ATTENDEE_TYPES = ("event.attendee.added", "event.attendee.canceled", "event.attendee.rescheduled")


def _payload(
    state: SavvycalState,
    type_: str,
    event: Event,
    attendee: Attendee | None,
    previous: Event | None,
) -> dict[str, Any]:
    """The ``payload`` of a delivery of ``type_``: the Event, nested for event.changed and
    beside the attendee (and the event they left) for the per-attendee types."""
    body = event_json(state, event)
    if type_ == "event.changed":
        return {"event": body}
    if type_ not in ATTENDEE_TYPES:
        return body
    nested: dict[str, Any] = {"event": body}
    if attendee is not None:
        nested["attendee"] = attendee_json(attendee)
    if previous is not None:
        nested["previous_event"] = event_json(state, previous)
    return nested


class WebhookDispatcher:
    """Sends deliveries in background tasks; :meth:`flush` awaits them (retries included)."""

    def __init__(
        self,
        state: Callable[[], SavvycalState],
        now: Callable[[], datetime],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self._state = state
        self._now = now
        self._timeout_s = timeout_s
        self._transport = transport
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._pending: set[asyncio.Task[None]] = set()

    def emit(
        self,
        type_: str,
        event: Event,
        *,
        attendee: Attendee | None = None,
        previous: Event | None = None,
    ) -> None:
        """Deliver ``type_`` about ``event`` to every active webhook (``attendee`` and
        ``previous``: the person and the event left, for the per-attendee types)."""
        state = self._state()
        hooks = [h for h in state.webhooks.values() if h.state == "active"]
        if not hooks:
            return
        envelope: dict[str, Any] = {
            "type": type_,
            "id": state.new_id("payload"),
            "version": WEBHOOK_VERSION,
            "occurred_at": iso(self._now()),
            "payload": _payload(state, type_, event, attendee, previous),
        }
        body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
        for hook in hooks:
            task = asyncio.get_running_loop().create_task(
                self._deliver(hook, type_, envelope["id"], body)
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _deliver(self, hook: Webhook, type_: str, payload_id: str, body: str) -> None:
        raw = body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "x-savvycal-signature": sign(hook.secret, raw),
            "x-savvycal-webhook-id": hook.id,
        }
        state = self._state()
        async with httpx.AsyncClient(
            transport=self._transport, timeout=self._timeout_s, follow_redirects=False
        ) as client:
            for attempt in range(1, max(self.attempts, 1) + 1):
                delivery = Delivery(
                    id=state.next_delivery_id(),
                    webhook_id=hook.id,
                    url=hook.url,
                    type=type_,
                    payload_id=payload_id,
                    attempt=attempt,
                    attempted_at=iso(datetime.now(UTC)) or "",
                    body=body,
                    headers=headers,
                )
                try:
                    response = await client.post(hook.url, content=raw, headers=headers)
                    delivery.status_code = response.status_code
                except httpx.HTTPError as exc:
                    delivery.error = f"{type(exc).__name__}: {exc}"
                state.deliveries.append(delivery)
                ok = delivery.status_code is not None and 200 <= delivery.status_code < 300
                if ok or attempt >= self.attempts or hook.state != "active":
                    return
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))

    async def flush(self) -> int:
        """Wait until every pending delivery (and its retries) finished; returns the count."""
        count = 0
        while self._pending:
            batch = list(self._pending)
            count += len(batch)
            await asyncio.gather(*batch, return_exceptions=True)
        return count
