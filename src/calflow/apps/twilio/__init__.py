"""The Twilio app (Messages API): send SMS, check the account."""

from __future__ import annotations

from calflow.apps.twilio.actions.get_account import GetAccount
from calflow.apps.twilio.actions.send_sms import SendSms
from calflow.apps.twilio.client import DEFAULT_BASE_URL
from calflow.flowapp import App, AuthMode, CredentialField

APP = App(
    key="twilio",
    name="Twilio",
    description="Twilio Programmable Messaging: send SMS.",
    concurrency=10,  # Twilio queues messages per sender itself; keep API calls polite
    credential_fields=(
        CredentialField(
            "base_url",
            "API base URL",
            default=DEFAULT_BASE_URL,
            kind="url",
            description="https://api.twilio.com, or the calflow sandbox's /twilio.",
        ),
        CredentialField("account_sid", "Account SID", required=True, placeholder="AC…"),
        CredentialField("auth_token", "Auth token", secret=True, required=True),
        CredentialField(
            "from_number",
            "Default sender",
            kind="sender",
            description="A Twilio number (E.164), short code or alphanumeric sender ID.",
            placeholder="+15005550006",
        ),
        CredentialField(
            "messaging_service_sid",
            "Default Messaging Service SID",
            description="Used when neither the step nor the integration names a From.",
            placeholder="MG…",
        ),
        CredentialField(
            "default_phone_region",
            "Phone region",
            kind="country",
            description="Two-letter country for numbers given without +country code.",
            placeholder="US",
        ),
        CredentialField(
            "status_callback",
            "Status callback URL",
            kind="url",
            description="Default URL Twilio posts delivery status changes to.",
        ),
    ),
    auth_modes=(
        AuthMode("auth_token", "Account SID and auth token", ("account_sid", "auth_token")),
    ),
    actions=(SendSms, GetAccount),
)

__all__ = ["APP"]
