"""The SavvyCal app (API v1): events, scheduling links, open slots, webhooks."""

from __future__ import annotations

from calflow.apps.savvycal.actions.book_event import BookEvent
from calflow.apps.savvycal.actions.cancel_event import CancelEvent
from calflow.apps.savvycal.actions.reads import GetEvent, GetLinkSlots, GetMe, ListEvents, ListLinks
from calflow.apps.savvycal.actions.webhooks import RegisterWebhook, UnregisterWebhook
from calflow.apps.savvycal.client import DEFAULT_BASE_URL, DEFAULT_TOKEN_URL
from calflow.apps.savvycal.fetchers import Links, LinkSlots
from calflow.flowapp import App, AuthMode, CredentialField
from calflow.server.signatures import WEBHOOK_SIGNATURE_FIELD, check_webhook_settings

APP = App(
    key="savvycal",
    name="SavvyCal",
    description="SavvyCal scheduling (API v1): events, scheduling links, slots, webhooks.",
    rate_limit=(60, 60.0),  # unpublished: a polite default, 429s are retried anyway
    concurrency=4,
    credential_fields=(
        CredentialField(
            "base_url",
            "API base URL",
            default=DEFAULT_BASE_URL,
            kind="url",
            description="https://api.savvycal.com (with or without /v1).",
        ),
        CredentialField(
            "token",
            "Personal token",
            secret=True,
            placeholder="pt_secret_…",
            description="The private key of a personal token (Settings → Developers).",
        ),
        CredentialField("access_token", "OAuth access token", secret=True),
        CredentialField("refresh_token", "OAuth refresh token", secret=True),
        CredentialField("oauth_client_id", "OAuth client id"),
        CredentialField("oauth_client_secret", "OAuth client secret", secret=True),
        CredentialField(
            "token_url",
            "OAuth token URL",
            default=DEFAULT_TOKEN_URL,
            kind="url",
            description="Where expired OAuth access tokens are refreshed.",
        ),
        CredentialField("webhook_id", "Webhook id", description="Set by RegisterWebhook."),
        CredentialField(
            "webhook_secret",
            "Webhook secret",
            secret=True,
            description="Set by RegisterWebhook; verifies deliveries.",
        ),
        WEBHOOK_SIGNATURE_FIELD,
    ),
    checks=(check_webhook_settings,),
    auth_modes=(
        AuthMode("token", "Personal token", ("token",)),
        AuthMode("oauth", "OAuth access token", ("access_token",)),
    ),
    actions=(
        GetMe,
        ListEvents,
        GetEvent,
        CancelEvent,
        BookEvent,
        GetLinkSlots,
        ListLinks,
        RegisterWebhook,
        UnregisterWebhook,
    ),
    fetchers=(Links, LinkSlots),
)

__all__ = ["APP"]
