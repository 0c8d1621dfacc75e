"""SendEmail: one message over SMTP (text and/or HTML, to/cc/bcc, reply-to)."""

from __future__ import annotations

from typing import Any

from calflow.apps.email.message import build
from calflow.apps.email.smtp import SmtpSettings, deliver
from calflow.errors import ConfigError
from calflow.flowapp import ERROR, Action, ActionContext, ActionResult, OutputPort

SENT = OutputPort(
    "sent", "The server accepted the message (some recipients may be listed as refused)."
)
REJECTED = OutputPort(
    "rejected", "The server refused every recipient, or the message itself, for good (5xx)."
)


class SendEmail(Action):
    key = "SendEmail"
    name = "Send an email"
    description = (
        "Send an email through the integration's SMTP server. 'sent' carries the Message-ID "
        "and any recipients refused; 'rejected' means the server refused every recipient "
        "or the message for good. Connection failures, temporary (4xx) refusals and "
        "timeouts before sending fail as retryable (UNAVAILABLE); a connection lost while "
        "the message was being sent fails with MAYBE_SENT and is not retried."
    )
    schema_file = "send_email.json"
    ports = (SENT, REJECTED, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        sender = data.get("from") or ctx.value("from_address")
        if not sender:
            raise ConfigError(
                "SendEmail needs a sender: give 'from' or set from_address on the integration"
            )
        msg, envelope_from, recipients = build(data, str(sender))
        return await deliver(SmtpSettings.of(ctx), msg, envelope_from, recipients)
