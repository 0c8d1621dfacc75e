"""TestConnection: connect, say EHLO, start TLS and log in as configured, then quit."""

from __future__ import annotations

from typing import Any

from calflow.apps.email.smtp import SmtpSettings, close_session, open_session
from calflow.flowapp import ERROR, SUCCESS, Action, ActionContext, ActionResult


class TestConnection(Action):
    __test__ = False  # not a pytest class, whatever its name

    key = "TestConnection"
    name = "Test the connection"
    description = "Connect and log in to the SMTP server without sending (a credentials check)."
    schema_file = "empty.json"
    ports = (SUCCESS, ERROR)
    kind = "read"

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        settings = SmtpSettings.of(ctx)
        client = await open_session(settings)
        try:
            extensions = sorted(client.esmtp_extensions)
            tls = client.get_transport_info("sslcontext") is not None
        finally:
            await close_session(client)
        return ActionResult.ok(
            {
                "host": settings.host,
                "port": settings.port,
                "tls": tls,
                "logged_in": bool(settings.username),
                "extensions": extensions,
            }
        )
