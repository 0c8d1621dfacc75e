"""The email app: send mail over SMTP (STARTTLS, implicit TLS or plain; optional login)."""

from __future__ import annotations

from calflow.apps.email.actions.send_email import SendEmail
from calflow.apps.email.actions.test_connection import TestConnection
from calflow.apps.email.smtp import SECURITY
from calflow.flowapp import App, CredentialField

APP = App(
    key="email",
    name="Email (SMTP)",
    description="Send email through any SMTP server.",
    concurrency=4,  # one SMTP connection per send; servers cap connections per client
    credential_fields=(
        CredentialField("host", "SMTP host", required=True, placeholder="smtp.example.com"),
        CredentialField(
            "port",
            "Port",
            kind="port",
            description="587 for STARTTLS (default), 465 for SSL, 25 plain.",
        ),
        CredentialField(
            "security",
            "Security",
            default="starttls",
            choices=SECURITY,
            description="starttls (upgrade, required), ssl (TLS from the start) or none.",
        ),
        CredentialField("username", "Username", description="Leave empty to send without login."),
        CredentialField("password", "Password", secret=True),
        CredentialField(
            "from_address",
            "Default sender",
            placeholder="Clinic <noreply@clinic.example>",
            description="Used when a step gives no 'from'.",
        ),
        CredentialField("timeout_s", "Timeout (seconds)", default="30", kind="number"),
        CredentialField(
            "verify_tls",
            "Verify TLS certificates",
            default="true",
            kind="boolean",
            description="Set false only for a test server with a self-signed certificate.",
        ),
    ),
    actions=(SendEmail, TestConnection),
)

__all__ = ["APP"]
