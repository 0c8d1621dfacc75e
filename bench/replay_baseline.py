"""The published backfill script's algorithm, reproduced faithfully in Python.

Page through ``GET /v1/events?limit=100&period=all&state=all&attendance=any&direction=asc``
with the ``after`` cursor; after each page, POST every event to the receiver as a
SavvyCal webhook envelope, signed, one at a time, waiting for each answer before the
next. One ``httpx.Client`` (keep-alive) for everything: the fastest form of the
sequential algorithm, so the ratio against it is not flattered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

QUERY = {"limit": "100", "period": "all", "state": "all", "attendance": "any", "direction": "asc"}
VERSION = "2020-11-18"


def event_type(event: dict[str, Any]) -> str:
    """The webhook type a backfill gives an event, from its state (PROVIDERS.md)."""
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


def _occurred_at(event: dict[str, Any], kind: str) -> Any:
    stamp = {
        "event.canceled": "canceled_at",
        "event.rescheduled": "rescheduled_at",
    }.get(kind, "created_at")
    return event.get(stamp) or event.get("created_at")


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The SavvyCal webhook envelope of an event (id stable per event and type)."""
    kind = event_type(event)
    digest = hashlib.sha256(f"{event['id']}:{kind}".encode()).hexdigest()[:26].upper()
    return {
        "type": kind,
        "id": f"payload_{digest}",
        "version": VERSION,
        "occurred_at": _occurred_at(event, kind),
        "payload": event,
    }


@dataclass
class BaselineResult:
    """What one sequential backfill did."""

    pages: int
    sent: int
    elapsed_s: float

    @property
    def items_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def run_baseline(savvycal_base: str, token: str, to: str, secret: str) -> BaselineResult:
    """Backfill every event to ``to``, sequentially; raises on any non-2xx."""
    key = secret.encode()
    auth = {"Authorization": f"Bearer {token}"}
    t0 = time.perf_counter()
    pages = sent = 0
    with httpx.Client(timeout=30) as client:
        after: str | None = None
        while True:
            params = dict(QUERY)
            if after:
                params["after"] = after
            resp = client.get(f"{savvycal_base}/v1/events", params=params, headers=auth)
            resp.raise_for_status()
            page = resp.json()
            pages += 1
            for event in page["entries"]:
                body = json.dumps(envelope(event)).encode()
                signature = hmac.new(key, body, hashlib.sha256).hexdigest()
                headers = {
                    "content-type": "application/json",
                    "x-savvycal-signature": f"sha256={signature}",
                }
                client.post(to, content=body, headers=headers).raise_for_status()
                sent += 1
            after = page["metadata"]["after"]
            if not after:
                break
    return BaselineResult(pages=pages, sent=sent, elapsed_s=time.perf_counter() - t0)
