"""The http app: call any URL from a workflow step (webhooks, your own APIs)."""

from __future__ import annotations

from calflow.apps.http.actions.request import Request
from calflow.flowapp import App, CredentialField

APP = App(
    key="http",
    name="HTTP",
    description="Call any HTTP(S) URL; the response status picks the next step.",
    credential_fields=(
        CredentialField(
            "base_url",
            "Base URL",
            kind="url",
            description="Relative step URLs are joined to it (https://api.example.com/v1).",
        ),
        CredentialField(
            "headers",
            "Headers",
            secret=True,
            description="Sent with every request, stored encrypted: a JSON object or "
            "'Name: value' lines (Authorization: Bearer …). With a base_url, only sent to "
            "URLs on its origin.",
        ),
        CredentialField(
            "allow_private",
            "Allow private addresses",
            default="false",
            kind="boolean",
            description="true lets steps call the loopback, private and link-local "
            "addresses the operator allows (CALFLOW_ALLOW_PRIVATE).",
        ),
        CredentialField("timeout_s", "Timeout (seconds)", default="30", kind="number"),
    ),
    actions=(Request,),
)

__all__ = ["APP"]
