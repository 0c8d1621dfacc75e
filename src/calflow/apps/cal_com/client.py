"""Cal.com API v2 client: base URL, bearer auth, per-resource version headers, paging.

The ``cal-api-version`` header is per resource (see PROVIDERS.md): sending the wrong
one routes the request to an older controller, so every call names its resource.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

from calflow.errors import AuthError
from calflow.flowapp import ProviderResponse
from calflow.flowapp.client import IntegrationClient
from calflow.flowapp.http import Verify
from calflow.flowapp.pagination import OffsetPaginator

DEFAULT_BASE_URL = "https://api.cal.com"
BOOKINGS = "2024-08-13"
SLOTS = "2024-09-04"
EVENT_TYPES = "2024-06-14"
NO_VERSION = ""

SLOT_TAKEN_HINTS = (
    "already has booking",
    "not available",
    "no available users",
    "slot",
    "booking limit",
    "already booked",
)


def is_slot_taken(status: int, message: str) -> bool:
    """Cal.com answers a taken or unbookable time with 409, or 400 and a known message."""
    if status == 409:
        return True
    text = message.lower()
    return status == 400 and any(hint in text for hint in SLOT_TAKEN_HINTS)


def api_root(base_url: str) -> str:
    """``https://api.cal.com`` from any of ``…``, ``…/``, ``…/v2``."""
    root = base_url.rstrip("/")
    return root[: -len("/v2")] if root.endswith("/v2") else root


class CalComClient(IntegrationClient):
    """A Cal.com v2 client for one integration."""

    provider_name = "Cal.com"

    token_fields = ("api_key", "access_token")
    default_base_url = DEFAULT_BASE_URL
    api_root = staticmethod(api_root)

    def error_message(self, body: Any) -> str | None:
        if not isinstance(body, Mapping):
            return None
        err = body.get("error")
        if isinstance(err, Mapping):
            message = str(err.get("message") or err.get("code") or "")
            details = err.get("details")
            if isinstance(details, Mapping) and isinstance(details.get("message"), str | list):
                extra = details["message"]
                extra_text = "; ".join(map(str, extra)) if isinstance(extra, list) else extra
                if extra_text and extra_text not in message:
                    message = f"{message}: {extra_text}" if message else extra_text
            return message or None
        msg = body.get("message")
        if isinstance(msg, list):
            return "; ".join(map(str, msg))
        if isinstance(msg, str):
            return msg
        return super().error_message(body)

    async def call(
        self,
        method: str,
        path: str,
        version: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        accept: Collection[int] = (),
        verify: Verify | None = None,
    ) -> ProviderResponse:
        """One API call with the resource's version header; refreshes OAuth tokens once.

        ``verify`` checks, before a non-idempotent call is retried, whether the first
        attempt took effect (see :mod:`calflow.flowapp.http`).
        """
        headers = {"cal-api-version": version} if version else {}
        try:
            return await self.request(
                method,
                path,
                params=params,
                json_body=body,
                headers=headers,
                accept=accept,
                verify=verify,
            )
        except AuthError as exc:
            if exc.status != 401 or not await self._refresh_oauth():
                raise
            return await self.request(
                method,
                path,
                params=params,
                json_body=body,
                headers=headers,
                accept=accept,
                verify=verify,
            )

    async def _refresh_oauth(self) -> bool:
        """Refresh a platform OAuth access token (``POST /v2/oauth/{clientId}/refresh``)."""
        refresh = self.ctx.value("refresh_token")
        client_id = self.ctx.value("oauth_client_id")
        client_secret = self.ctx.value("oauth_client_secret")
        if self.ctx.value("api_key") or not (refresh and client_id and client_secret):
            return False
        # The refresh call authenticates with the client secret alone: no Authorization
        # header at all (an empty one is not valid HTTP).
        expired = self.headers.pop("Authorization", None)
        try:
            resp = await self.request(
                "POST",
                f"/v2/oauth/{client_id}/refresh",
                json_body={"refreshToken": refresh},
                headers={"x-cal-secret-key": str(client_secret)},
            )
        finally:
            if expired is not None:
                self.headers["Authorization"] = expired
        data = resp.body.get("data", {}) if isinstance(resp.body, Mapping) else {}
        access, new_refresh = data.get("accessToken"), data.get("refreshToken")
        if not access:
            return False
        secrets = {"access_token": str(access)}
        if new_refresh:
            secrets["refresh_token"] = str(new_refresh)
        await self.ctx.save_secrets(secrets)
        self.headers["Authorization"] = f"Bearer {access}"
        return True

    async def paginate(
        self,
        path: str,
        version: str,
        params: Mapping[str, Any],
        limit: int | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Any]:
        """Items of a ``take``/``skip`` listing, across pages, up to ``limit``."""
        pager = OffsetPaginator(page_size=min(page_size, limit or page_size))
        seen = 0
        while True:
            resp = await self.call("GET", path, version, params={**params, **pager.params()})
            items = data_of(resp)
            if not isinstance(items, list):
                return
            for item in items:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            pager.advance(resp.body, len(items))
            if not pager.has_next:
                return


def data_of(resp: ProviderResponse) -> Any:
    """The ``data`` of a success envelope (the whole body when there is no envelope)."""
    body = resp.body
    if isinstance(body, Mapping) and "data" in body:
        return body["data"]
    return body


def message_of(client: CalComClient, resp: ProviderResponse) -> str:
    return client.error_message(resp.body) or f"Cal.com answered {resp.status}"
