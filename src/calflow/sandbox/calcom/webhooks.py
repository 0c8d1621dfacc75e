"""Webhook delivery as Cal.com's ``sendPayload`` does it: one attempt, HMAC-SHA256 signature.

Bodies are ``JSON.stringify``-compact; every delivery carries ``X-Cal-Signature-256`` and
``X-Cal-Webhook-Version: 2021-10-20``. Deliveries run as background tasks so API
responses never wait for subscribers; :meth:`WebhookDispatcher.flush` awaits them.

MEETING_STARTED / MEETING_ENDED come in two shapes (:data:`MEETING_SHAPES`): ``nested``
``{triggerEvent, createdAt, payload: <booking row>}`` as the current
``factory/versioned/v2021-10-20/MeetingPayloadBuilder.ts`` builds it (the default), or the
older ``flat`` ``{triggerEvent, ...booking row}`` of ``scheduleTrigger.ts``, where the
top-level ``createdAt`` is the booking's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from calflow.sandbox.calcom.envelope import iso_ms
from calflow.sandbox.calcom.state import CalcomState, Delivery, Webhook

TRIGGERS = (
    "BOOKING_CREATED",
    "BOOKING_PAYMENT_INITIATED",
    "BOOKING_PAID",
    "BOOKING_RESCHEDULED",
    "BOOKING_REQUESTED",
    "BOOKING_CANCELLED",
    "BOOKING_REJECTED",
    "BOOKING_NO_SHOW_UPDATED",
    "FORM_SUBMITTED",
    "MEETING_ENDED",
    "MEETING_STARTED",
    "RECORDING_READY",
    "INSTANT_MEETING",
    "RECORDING_TRANSCRIPTION_GENERATED",
    "OOO_CREATED",
    "AFTER_HOSTS_CAL_VIDEO_NO_SHOW",
    "AFTER_GUESTS_CAL_VIDEO_NO_SHOW",
    "FORM_SUBMITTED_NO_EVENT",
)
WEBHOOK_VERSION = "2021-10-20"
MEETING_SHAPES = ("nested", "flat")
_PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def sign(secret: str | None, body: bytes) -> str:
    """``X-Cal-Signature-256``: lowercase hex HMAC-SHA256, or ``no-secret-provided``."""
    if not secret:
        return "no-secret-provided"
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dumps(data: Any) -> str:
    """``JSON.stringify`` equivalent (compact separators, unicode kept)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return ""
        data = data[part]
    return data


def apply_template(template: str, data: dict[str, Any]) -> tuple[str, str]:
    """Render a ``payloadTemplate`` (``{{var.path}}`` placeholders) → (body, content type)."""

    def render(match: re.Match[str]) -> str:
        value = _lookup(data, match.group(1))
        return value if isinstance(value, str) else dumps(value)

    compiled = _PLACEHOLDER.sub(render, template)
    try:
        json.loads(template)
    except ValueError:
        return compiled, "application/x-www-form-urlencoded"
    try:
        return dumps(json.loads(compiled)), "application/json"
    except ValueError:
        return "false", "application/json"


class WebhookDispatcher:
    """Sends webhook deliveries in the background and records each attempt."""

    def __init__(
        self,
        state: Callable[[], CalcomState],
        now: Callable[[], datetime],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        meeting_shape: str = "nested",
    ) -> None:
        self.meeting_shape = meeting_shape
        self._state = state
        self._now = now
        self._timeout_s = timeout_s
        self._transport = transport
        self._pending: set[asyncio.Task[None]] = set()

    def subscribers(self, user_id: int, trigger: str) -> list[Webhook]:
        """Active webhooks of ``user_id`` subscribed to ``trigger``."""
        return [
            w
            for w in self._state().webhooks.values()
            if w.active and w.user_id == user_id and trigger in w.triggers
        ]

    def emit(self, user_id: int, trigger: str, payload: dict[str, Any]) -> None:
        """Deliver ``{"triggerEvent", "createdAt", "payload"}`` to every subscriber."""
        created_at = iso_ms(self._now())
        for hook in self.subscribers(user_id, trigger):
            if hook.payload_template:
                data = {**payload, "triggerEvent": trigger, "createdAt": created_at}
                body, content_type = apply_template(hook.payload_template, data)
            else:
                envelope = {"triggerEvent": trigger, "createdAt": created_at, "payload": payload}
                body, content_type = dumps(envelope), "application/json"
            self._schedule(hook, trigger, body, content_type)

    def emit_meeting(self, user_id: int, trigger: str, row: dict[str, Any]) -> None:
        """Deliver MEETING_* with the booking row, in the configured :attr:`meeting_shape`."""
        if self.meeting_shape == "flat":
            body = {"triggerEvent": trigger, **row}
        else:
            body = {"triggerEvent": trigger, "createdAt": iso_ms(self._now()), "payload": row}
        for hook in self.subscribers(user_id, trigger):
            self._schedule(hook, trigger, dumps(body), "application/json")

    def emit_generic(
        self, user_id: int, trigger: str, payload: dict[str, Any], root: dict[str, Any]
    ) -> None:
        """``sendGenericWebhookPayload``: ``root`` first, then triggerEvent, createdAt, payload."""
        body = {
            **root,
            "triggerEvent": trigger,
            "createdAt": iso_ms(self._now()),
            "payload": payload,
        }
        for hook in self.subscribers(user_id, trigger):
            self._schedule(hook, trigger, dumps(body), "application/json")

    def _schedule(self, hook: Webhook, trigger: str, body: str, content_type: str) -> None:
        task = asyncio.get_running_loop().create_task(
            self._deliver(hook, trigger, body, content_type)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, hook: Webhook, trigger: str, body: str, content_type: str) -> None:
        raw = body.encode()
        headers = {
            "Content-Type": content_type,
            "X-Cal-Signature-256": sign(hook.secret, raw),
            "X-Cal-Webhook-Version": WEBHOOK_VERSION,
        }
        state = self._state()
        delivery = Delivery(
            id=state.next_delivery_id(),
            webhook_id=hook.id,
            url=hook.subscriber_url,
            trigger=trigger,
            attempted_at=iso_ms(datetime.now(UTC)),
            body=body,
            headers=headers,
        )
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=self._timeout_s, follow_redirects=False
            ) as client:
                response = await client.post(hook.subscriber_url, content=raw, headers=headers)
            delivery.status_code = response.status_code
        except httpx.HTTPError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        state.deliveries.append(delivery)

    async def flush(self) -> int:
        """Wait until every pending delivery finished; returns how many were awaited."""
        count = 0
        while self._pending:
            batch = list(self._pending)
            count += len(batch)
            await asyncio.gather(*batch, return_exceptions=True)
        return count
