"""Twilio REST client: HTTP Basic auth (Account SID, Auth Token), form bodies, error codes.

Twilio answers errors as ``{code, message, more_info, status}``; ``code`` is Twilio's own
number (21211 invalid To, 20003 bad credentials, 20429 too many requests…), so results
carry it as ``twilio_code`` beside the HTTP status.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from calflow.flowapp import ActionContext, ActionResult, ProviderClient, ProviderResponse
from calflow.flowapp.http import RetryPolicy

DEFAULT_BASE_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"
#: Statuses the actions map themselves (so the result keeps Twilio's error code).
HANDLED = (400, 401, 403, 404)


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic auth."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def twilio_code(body: Any) -> int | None:
    """Twilio's error code in an error body, if any."""
    code = body.get("code") if isinstance(body, Mapping) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


class TwilioClient(ProviderClient):
    """A Twilio client for one integration; paths are joined under ``/2010-04-01``."""

    provider_name = "Twilio"

    def __init__(self, ctx: ActionContext, policy: RetryPolicy | None = None) -> None:
        self.account_sid = ctx.require("account_sid")
        token = ctx.require("auth_token")
        base_url = str(ctx.value("base_url") or DEFAULT_BASE_URL).rstrip("/")
        super().__init__(
            ctx.http,
            f"{base_url}/{API_VERSION}",
            {"Authorization": basic_auth(self.account_sid, token), "Accept": "application/json"},
            policy or ctx.policy,
        )

    def account_path(self, suffix: str = "") -> str:
        """``/Accounts/{AccountSid}{suffix}.json``."""
        return f"/Accounts/{self.account_sid}{suffix}.json"

    def error_message(self, body: Any) -> str | None:
        if isinstance(body, Mapping) and isinstance(body.get("message"), str):
            code = twilio_code(body)
            return f"{body['message']} (error {code})" if code else str(body["message"])
        return super().error_message(body)

    def failure(self, resp: ProviderResponse) -> ActionResult:
        """The failure result for an accepted 4xx: AUTH_ERROR, NOT_FOUND or PROVIDER_ERROR."""
        message = self.error_message(resp.body) or f"Twilio answered {resp.status}"
        code = {401: "AUTH_ERROR", 403: "AUTH_ERROR", 404: "NOT_FOUND"}.get(
            resp.status, "PROVIDER_ERROR"
        )
        body = resp.body if isinstance(resp.body, Mapping) else {}
        data = {
            "status": resp.status,
            "twilio_code": twilio_code(body),
            "more_info": body.get("more_info"),
        }
        return ActionResult.fail(code, f"Twilio: {message}", data)
