"""Authentication, version-header routing and per-key throttling of the Cal.com simulator.

Version routing (``cal-api-version``), modelled on Cal.com's NestJS versioning where
a missing header selects the default legacy version ``2024-04-15``:

* The header equals the version a resource serves (bookings ``2024-08-13``, slots
  ``2024-09-04``, event types ``2024-06-14``): the current controller answers.
* The header is missing or not a version Cal.com knows: the legacy ``2024-04-15``
  controller answers. ``POST /v2/bookings`` then validates the legacy body
  (``eventTypeId``, ``start``, ``end``, ``timeZone``, ``language``, ``metadata``,
  ``responses``) and answers 400 ``BadRequestException``; the legacy
  ``GET /v2/bookings``, ``GET /v2/bookings/{uid}`` and ``POST …/cancel`` answer
  with the legacy shapes (raw booking rows); routes the legacy controller lacks
  (``/reschedule``, ``/mark-absent``, ``/guests``, ``/confirm``, ``/decline``,
  ``GET /v2/slots``) answer 404 ``Cannot METHOD path``. ``GET /v2/event-types``
  answers the legacy ``{eventTypeGroups: [...]}`` shape.
* The header names another known version (e.g. the bookings value on slots or
  event types): no controller matches and Nest's router answers 404.

Version routing is decided before authentication, as Nest's router runs before guards.
Webhooks and ``/v2/me`` are version-neutral.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from calflow.sandbox.calcom.envelope import CalcomError

BOOKINGS_VERSION = "2024-08-13"
SLOTS_VERSION = "2024-09-04"
EVENT_TYPES_VERSION = "2024-06-14"
KNOWN_VERSIONS = frozenset(
    {"2024-04-15", "2024-06-11", "2024-06-14", "2024-08-13", "2024-09-04", "2026-02-25"}
)

MSG_NO_AUTH = (
    "ApiAuthStrategy - No authentication method provided. Either pass an API key as 'Bearer' "
    "header or OAuth client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers"
)
MSG_BAD_KEY = "ApiAuthStrategy - api key - Your api key is not valid"
MSG_THROTTLED = "ThrottlerException: Too Many Requests"

Routing = Literal["current", "legacy", "other"]


def version_routing(request: Request, served: str) -> Routing:
    """Which controller Cal.com would route this request to."""
    value = request.headers.get("cal-api-version")
    if value == served:
        return "current"
    if value is None or value not in KNOWN_VERSIONS:
        return "legacy"
    return "other"


def bearer_token(request: Request) -> str | None:
    """The bearer token of the request, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(request: Request, api_key: str) -> None:
    """401 unless the request carries the sandbox's API key."""
    token = bearer_token(request)
    if token is None:
        raise CalcomError(401, MSG_NO_AUTH)
    if token != api_key:
        raise CalcomError(401, MSG_BAD_KEY)


@dataclass
class _Window:
    started: float
    count: int = 0
    blocked_until: float = 0.0


@dataclass
class RateDecision:
    """The outcome of one throttling check."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*-Default`` headers (reset in seconds, not an epoch)."""
        return {
            "X-RateLimit-Limit-Default": str(self.limit),
            "X-RateLimit-Remaining-Default": str(self.remaining),
            "X-RateLimit-Reset-Default": str(self.reset_s),
        }


class RateLimiter:
    """Fixed 60 s window per key; exceeding the limit blocks the key for ``block_s``."""

    def __init__(self, limit: int, block_s: float, window_s: float = 60.0) -> None:
        self.limit = limit
        self.block_s = block_s
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}

    def hit(self, key: str) -> RateDecision:
        """Count one request for ``key``."""
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or (
            now - window.started >= self.window_s and now >= window.blocked_until
        ):
            window = _Window(started=now)
            self._windows[key] = window
        if now < window.blocked_until:
            return RateDecision(False, self.limit, 0, _seconds(window.blocked_until - now))
        window.count += 1
        reset = min(_seconds(window.started + self.window_s - now), math.ceil(self.window_s))
        if window.count > self.limit:
            window.blocked_until = now + self.block_s
            return RateDecision(False, self.limit, 0, math.ceil(self.block_s))
        return RateDecision(True, self.limit, self.limit - window.count, max(reset, 0))

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()


def throttled(decision: RateDecision) -> CalcomError:
    """The 429 error for a refused request."""
    exc = CalcomError(429, MSG_THROTTLED)
    exc.headers = decision.headers()
    return exc


def _seconds(value: float) -> int:
    """Whole seconds remaining, rounded up, ignoring float noise (60.00000000000006 → 60)."""
    return max(0, math.ceil(round(value, 6)))
