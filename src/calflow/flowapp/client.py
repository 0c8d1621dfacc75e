"""A provider client built from an integration: base URL field, bearer token fields."""

from __future__ import annotations

from typing import ClassVar

from calflow.flowapp.context import ActionContext
from calflow.flowapp.http import ProviderClient


class IntegrationClient(ProviderClient):
    """``ProviderClient`` for one integration: the first set ``token_fields`` value is the
    bearer token, and ``base_url`` (or ``default_base_url``) passes through ``api_root``."""

    token_fields: ClassVar[tuple[str, ...]] = ("api_key", "access_token")
    default_base_url: ClassVar[str] = ""

    def __init__(self, ctx: ActionContext) -> None:
        token = next((ctx.value(f) for f in self.token_fields if ctx.value(f)), None)
        if not token:
            ctx.require(self.token_fields[0])
        super().__init__(
            ctx.http,
            self.api_root(str(ctx.value("base_url") or self.default_base_url)),
            {"Authorization": f"Bearer {token}", "Accept": "application/json"},
            ctx.policy,
        )
        self.ctx = ctx

    @staticmethod
    def api_root(base_url: str) -> str:
        """The root that request paths are joined to (apps strip a version suffix here)."""
        return base_url.rstrip("/")
