"""Bearer authentication (personal token or OAuth access token) and rate limiting.

OAuth: ``POST /oauth/token`` with ``grant_type=refresh_token`` (form or JSON body,
client credentials in the body or as HTTP Basic) rotates the refresh token and issues
an access token valid for :data:`ACCESS_TOKEN_TTL_S` on the sandbox clock, so tests can
expire it with ``POST /_sandbox/clock``.
"""

from __future__ import annotations

import base64
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request

from calflow.sandbox.savvycal.errors import SavvycalError, unauthenticated

ACCESS_TOKEN_TTL_S = 7200


def bearer_token(request: Request) -> str | None:
    """The bearer token of the request, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass
class OAuthClient:
    """The seeded OAuth application."""

    client_id: str
    client_secret: str


class TokenStore:
    """Accepted credentials: the personal token plus issued OAuth access/refresh tokens."""

    def __init__(
        self,
        personal_token: str,
        client: OAuthClient,
        refresh_token: str,
        now: Callable[[], datetime],
    ) -> None:
        self.personal_token = personal_token
        self.client = client
        self.seed_refresh_token = refresh_token
        self._now = now
        self.refresh_tokens: set[str] = {refresh_token}
        self.access_tokens: dict[str, datetime] = {}

    def check(self, request: Request) -> str:
        """The token of an authenticated request; 401 otherwise."""
        token = bearer_token(request)
        if token is None:
            raise unauthenticated()
        if secrets.compare_digest(token, self.personal_token):
            return token
        expires = self.access_tokens.get(token)
        if expires is None or self._now() >= expires:
            raise unauthenticated()
        return token

    def refresh(
        self, refresh_token: str, client_id: str | None, client_secret: str | None
    ) -> dict[str, object]:
        """Rotate ``refresh_token`` into a new access + refresh token pair."""
        if client_id != self.client.client_id or client_secret != self.client.client_secret:
            raise SavvycalError(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        if refresh_token not in self.refresh_tokens:
            raise SavvycalError(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The refresh token is invalid, expired or revoked",
                },
            )
        self.refresh_tokens.discard(refresh_token)
        access = secrets.token_urlsafe(32)
        new_refresh = secrets.token_urlsafe(32)
        now = self._now()
        self.access_tokens[access] = now + timedelta(seconds=ACCESS_TOKEN_TTL_S)
        self.refresh_tokens.add(new_refresh)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_TTL_S,
            "refresh_token": new_refresh,
            "created_at": int(now.timestamp()),
        }


def basic_credentials(request: Request) -> tuple[str | None, str | None]:
    """``(client_id, client_secret)`` from an HTTP Basic header, if present."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except ValueError:
        return None, None
    return user, password


class RateLimiter:
    """Fixed 60 s window per key; refused requests get ``Retry-After`` (window end)."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> int | None:
        """Count a request; ``None`` when allowed, else the seconds to wait."""
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= self.window_s:
            started, count = now, 0
        count += 1
        self._windows[key] = (started, count)
        if count > self.limit:
            return max(1, math.ceil(started + self.window_s - now))
        return None

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()
