"""Replaying SavvyCal history: ``GET /v1/events`` in full, rebuilt as webhook deliveries.

SavvyCal has no API to list or resend past deliveries, so each event becomes the
envelope a live delivery would have carried: ``{"type", "id", "version", "occurred_at",
"payload": Event}``, with the type read off the event's state (PROVIDERS.md), signed
``x-savvycal-signature: sha256=<HEX>``. ``id`` and ``occurred_at`` come from the event,
not the clock, so replaying the same history twice yields byte-identical bodies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncGenerator, Mapping
from datetime import datetime
from typing import Any, ClassVar

from calflow.apps.savvycal.client import MAX_PAGE, SavvyCalClient, entries_of
from calflow.replay.adapter import (
    USER_AGENT,
    ProviderAdapter,
    SourcePage,
    compact_json,
    parse_time,
)
from calflow.replay.model import ReplayItem

WEBHOOK_VERSION = "2020-11-18"
SIGNATURE_HEADER = "x-savvycal-signature"
BACKFILL_QUERY = {"period": "all", "state": "all", "attendance": "any", "direction": "asc"}

KINDS: Mapping[str, str] = {
    "event.created": "created",
    "event.rescheduled": "rescheduled",
    "event.canceled": "cancelled",
    "event.requested": "requested",
    "event.declined": "declined",
}


def savvycal_signature(secret: str, body: bytes) -> str:
    """``sha256=<UPPERCASE HEX>`` as SavvyCal sends it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().upper()


def type_for(event: Mapping[str, Any]) -> str:
    """The webhook type a live delivery of ``event``'s current state carried."""
    state = event.get("state")
    if state == "canceled":
        return "event.canceled"
    if state == "awaiting_approval":
        return "event.requested"
    if state == "declined":
        return "event.declined"
    if event.get("rescheduled_at"):
        return "event.rescheduled"
    return "event.created"


class SavvyCalAdapter(ProviderAdapter):
    """SavvyCal events → SavvyCal webhook envelopes."""

    provider: ClassVar[str] = "savvycal"
    label: ClassVar[str] = "SavvyCal"
    kinds: ClassVar[Mapping[str, str]] = KINDS
    id_prefix: ClassVar[str] = "payload_"

    def __init__(self, client: SavvyCalClient) -> None:
        self.client = client

    async def pages(self, token: str | None) -> AsyncGenerator[SourcePage, None]:
        after = token
        while True:
            params: dict[str, Any] = {**BACKFILL_QUERY, "limit": MAX_PAGE}
            if after:
                params["after"] = after
            resp = await self.client.call("GET", "/v1/events", params=params)
            body = resp.body
            meta = body.get("metadata") if isinstance(body, Mapping) else None
            nxt = meta.get("after") if isinstance(meta, Mapping) else None
            items = [e for e in entries_of(body) if isinstance(e, Mapping)]
            next_token = str(nxt) if nxt and items else None
            yield SourcePage(items=items, token=after, next_token=next_token)
            if next_token is None:
                return
            after = next_token

    async def fetch_one(self, object_id: str) -> Mapping[str, Any] | None:
        resp = await self.client.call("GET", f"/v1/events/{object_id}", accept=(404,))
        return resp.body if resp.ok and isinstance(resp.body, Mapping) else None

    def object_id(self, obj: Mapping[str, Any]) -> str:
        return str(obj.get("id") or "")

    def start(self, obj: Mapping[str, Any]) -> datetime | None:
        return parse_time(obj.get("start_at"))

    def classify(self, obj: Mapping[str, Any]) -> tuple[str | None, str]:
        if not obj.get("id"):
            return None, "malformed: the event has no id"
        return type_for(obj), ""

    def change_marker(self, obj: Mapping[str, Any], kind: str) -> str:
        # An event keeps its id when rescheduled: each new time is a distinct change.
        return str(obj.get("start_at") or "") if kind == "event.rescheduled" else ""

    def body(self, obj: Mapping[str, Any], kind: str, item_id: str) -> bytes:
        occurred = {
            "event.canceled": obj.get("canceled_at"),
            "event.rescheduled": obj.get("rescheduled_at"),
        }.get(kind)
        envelope = {
            "type": kind,
            "id": item_id,
            "version": WEBHOOK_VERSION,
            "occurred_at": occurred or obj.get("created_at"),
            "payload": obj,
        }
        return compact_json(envelope)

    def headers(self, secret: str | None, body: bytes, item: ReplayItem) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Calflow-Replay-Id": item.id,
        }
        if secret:
            headers[SIGNATURE_HEADER] = savvycal_signature(secret, body)
        return headers
