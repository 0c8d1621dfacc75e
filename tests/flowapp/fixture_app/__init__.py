"""A tiny FlowApp used by the framework tests: real modules with schema files beside them."""

from __future__ import annotations

from calflow.flowapp import App, AuthMode, CredentialField

from .actions import Behave, CallProvider, Contact, Echo, Pick, Strict
from .fetchers import Colors, Sizes

APP = App(
    key="fixture",
    name="Fixture",
    description="A tiny app for framework tests.",
    credential_fields=(
        CredentialField("base_url", "Base URL", required=True, default="https://fixture.test"),
        CredentialField("region", "Region"),
        CredentialField("api_key", "API key", secret=True),
        CredentialField("token", "Token", secret=True),
    ),
    auth_modes=(
        AuthMode("api_key", "API key", ("api_key",)),
        AuthMode("token", "Token", ("token",)),
    ),
    actions=(Echo, Contact, Behave, Strict, CallProvider, Pick),
    fetchers=(Colors, Sizes),
)

__all__ = ["APP"]
