"""SavvyCal API v1 client: base URL, bearer auth, error shapes, OAuth refresh, cursors.

Auth is a personal token's private key (``pt_secret_…``) or an OAuth access token; an
OAuth token that has expired (401) is refreshed once with the refresh-token grant and
the new tokens are stored in the vault.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

from calflow.errors import AuthError
from calflow.flowapp import ProviderResponse
from calflow.flowapp.client import IntegrationClient
from calflow.flowapp.pagination import CursorPaginator

DEFAULT_BASE_URL = "https://api.savvycal.com"
DEFAULT_TOKEN_URL = "https://savvycal.com/oauth/token"  # noqa: S105 (a URL)
MAX_PAGE = 100


def api_root(base_url: str) -> str:
    """``https://api.savvycal.com`` from any of ``…``, ``…/``, ``…/v1``, ``…/v1/``."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _messages(value: Any) -> list[str]:
    """The texts in one field's errors: ``[{"message"}]``, ``["text"]`` or a bare text."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        msg = value.get("message") or value.get("detail")
        return [str(msg)] if msg else []
    if isinstance(value, list):
        return [m for item in value for m in _messages(item)]
    return []


def errors_text(errors: Any) -> str | None:
    """Readable text for SavvyCal's three ``errors`` shapes.

    ``[{"message": m}]`` → ``m``; ``{"field": [{"message": m}]}`` and
    ``{"field": ["m"]}`` → ``field: m`` (several joined with ``; ``).
    """
    if isinstance(errors, Mapping):
        parts: list[str] = []
        for name, value in errors.items():
            texts = _messages(value)
            parts.extend(f"{name}: {t}" for t in texts)
        return "; ".join(parts) or None
    texts = _messages(errors)
    return "; ".join(texts) or None


def field_errors(body: Any) -> Mapping[str, Any]:
    """The per-field errors of a body (``{}`` when it has none)."""
    errors = body.get("errors") if isinstance(body, Mapping) else None
    return errors if isinstance(errors, Mapping) else {}


class SavvyCalClient(IntegrationClient):
    """A SavvyCal v1 client for one integration."""

    provider_name = "SavvyCal"

    token_fields = ("token", "access_token")
    default_base_url = DEFAULT_BASE_URL
    api_root = staticmethod(api_root)

    def url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):  # the OAuth token endpoint
            return path
        return super().url(path)

    def error_message(self, body: Any) -> str | None:
        if isinstance(body, Mapping):
            if "errors" in body:
                text = errors_text(body["errors"])
                if text:
                    return text
            # OAuth token endpoint: {"error": "invalid_grant", "error_description": …}
            if isinstance(body.get("error_description"), str):
                return f"{body.get('error')}: {body['error_description']}"
        return super().error_message(body)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        accept: Collection[int] = (),
    ) -> ProviderResponse:
        """One API call; an expired OAuth access token is refreshed once and retried."""
        try:
            return await self.request(method, path, params=params, json_body=body, accept=accept)
        except AuthError as exc:
            if exc.status != 401 or not await self._refresh_oauth():
                raise
            return await self.request(method, path, params=params, json_body=body, accept=accept)

    async def _refresh_oauth(self) -> bool:
        """The refresh-token grant at ``token_url``; new tokens go to the vault."""
        refresh = self.ctx.value("refresh_token")
        client_id = self.ctx.value("oauth_client_id")
        client_secret = self.ctx.value("oauth_client_secret")
        if self.ctx.value("token") or not (refresh and client_id and client_secret):
            return False
        expired = self.headers.pop("Authorization", None)
        try:
            resp = await self.request(
                "POST",
                str(self.ctx.value("token_url") or DEFAULT_TOKEN_URL),
                form={
                    "grant_type": "refresh_token",
                    "refresh_token": str(refresh),
                    "client_id": str(client_id),
                    "client_secret": str(client_secret),
                },
                accept=(400, 401),  # a refused grant: report the original 401
            )
        finally:
            if expired is not None:
                self.headers["Authorization"] = expired
        body = resp.body if resp.ok and isinstance(resp.body, Mapping) else {}
        access, new_refresh = body.get("access_token"), body.get("refresh_token")
        if not access:
            return False
        secrets = {"access_token": str(access)}
        if new_refresh:
            secrets["refresh_token"] = str(new_refresh)
        await self.ctx.save_secrets(secrets)
        self.headers["Authorization"] = f"Bearer {access}"
        return True

    async def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> AsyncIterator[Any]:
        """Entries of a cursor listing (``after=<metadata.after>`` until null), up to ``limit``."""
        pager = CursorPaginator(page_size=min(MAX_PAGE, limit or MAX_PAGE))
        seen = 0
        while True:
            resp = await self.call("GET", path, params={**(params or {}), **pager.params()})
            entries = entries_of(resp.body)
            for item in entries:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            pager.advance(resp.body, len(entries))
            if not pager.has_next:
                return


def entries_of(body: Any) -> list[Any]:
    """The items of a listing: ``{"entries": [...]}`` or a bare array."""
    if isinstance(body, Mapping):
        body = body.get("entries")
    return list(body) if isinstance(body, list) else []


def message_of(client: SavvyCalClient, resp: ProviderResponse) -> str:
    return client.error_message(resp.body) or f"SavvyCal answered {resp.status}"
