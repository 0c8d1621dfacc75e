"""Talking SMTP with ``aiosmtplib``, and sorting its failures by what the caller should do.

- Nothing was sent (cannot connect, TLS or greeting failed, 4xx before DATA was
  accepted): ``RetryableError`` (UNAVAILABLE), except TLS problems, which are config.
- Login refused: ``AuthError``.
- Every recipient refused for good (5xx) or the message refused at DATA (5xx): the
  ``rejected`` port; a transient refusal (4xx) is retryable.
- The connection broke or timed out while the message was being sent: ``MAYBE_SENT``
  (the server may have accepted it; not retried, as a second try could deliver twice).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from calflow.errors import AuthError, ConfigError, RetryableError
from calflow.flowapp import ActionContext, ActionResult

SECURITY = ("starttls", "ssl", "none")
_FALSE = {"false", "0", "no", "off"}


def flag(value: Any, default: bool) -> bool:
    """A yes/no integration field (stored as text: ``"false"``, ``"0"``, ``"no"``, ``"off"``)."""
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in _FALSE


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to connect, from the integration."""

    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    timeout_s: float
    verify_tls: bool

    @classmethod
    def of(cls, ctx: ActionContext) -> SmtpSettings:
        security = str(ctx.value("security") or "starttls").lower()
        if security not in SECURITY:
            raise ConfigError(f"security must be one of {', '.join(SECURITY)}, not {security!r}")
        try:
            port = int(ctx.value("port") or (465 if security == "ssl" else 587))
            timeout_s = float(ctx.value("timeout_s") or 30)
        except ValueError as exc:
            raise ConfigError(f"port and timeout_s must be numbers ({exc})") from None
        username = ctx.value("username")
        password = ctx.value("password")
        return cls(
            host=ctx.require("host"),
            port=port,
            security=security,
            username=str(username) if username else None,
            password=str(password) if password is not None else None,
            timeout_s=timeout_s,
            verify_tls=flag(ctx.value("verify_tls"), True),
        )

    def client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.security == "ssl",
            start_tls=self.security == "starttls",
            timeout=self.timeout_s,
            validate_certs=self.verify_tls,
        )


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


async def open_session(settings: SmtpSettings) -> aiosmtplib.SMTP:
    """A connected (and, with a username, logged-in) client; nothing is sent yet."""
    where = f"{settings.host}:{settings.port}"
    client = settings.client()
    try:
        await client.connect()
        if settings.username:
            await client.login(settings.username, settings.password or "")
    except aiosmtplib.SMTPAuthenticationError as exc:
        client.close()
        raise AuthError(f"SMTP server {where} refused the login: {_reply(exc)}") from None
    except (ssl.SSLError, aiosmtplib.SMTPNotSupported) as exc:
        client.close()
        raise ConfigError(f"SMTP server {where}: TLS failed ({exc})") from None
    except aiosmtplib.SMTPResponseException as exc:
        client.close()
        raise RetryableError(f"SMTP server {where} answered {_reply(exc)}") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        client.close()
        text = str(exc)
        if "TLS" in text or "AUTH" in text or "authentication" in text.lower():
            raise ConfigError(f"SMTP server {where}: {text}") from None
        raise RetryableError(f"SMTP server {where} is unreachable: {text}") from None
    return client


def _refused(errors: Sequence[aiosmtplib.SMTPRecipientRefused]) -> dict[str, str]:
    return {e.recipient: _reply(e) for e in errors}


async def deliver(
    settings: SmtpSettings, msg: EmailMessage, sender: str, recipients: list[str]
) -> ActionResult:
    """Send ``msg``; the result is ``sent``, ``rejected`` or a failure (see the module doc)."""
    client = await open_session(settings)
    where = f"{settings.host}:{settings.port}"
    base = {"message_id": msg["Message-ID"], "from": sender, "recipients": recipients}
    try:
        errors, reply = await client.send_message(msg, sender=sender, recipients=recipients)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = _refused(exc.recipients)
        if any(e.code < 500 for e in exc.recipients):
            raise RetryableError(
                f"SMTP server {where} deferred the recipients: {refused}"
            ) from None
        message = "every recipient was refused"
        data = {**base, "accepted": [], "refused": refused, "reason": message}
        return ActionResult.ok(data, port="rejected", code="REJECTED", message=message)
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code == 530:
            raise AuthError(f"SMTP server {where} requires a login: {_reply(exc)}") from None
        if exc.code < 500:
            raise RetryableError(f"SMTP server {where} answered {_reply(exc)}") from None
        reason = f"the server refused the message: {_reply(exc)}"
        data = {**base, "accepted": [], "refused": {}, "reason": reason}
        return ActionResult.ok(data, port="rejected", code="REJECTED", message=reason)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return ActionResult.fail(
            "MAYBE_SENT",
            f"SMTP connection to {where} failed while sending ({exc}); the message may have "
            "been accepted, so it was not retried",
            base,
        )
    finally:
        await close_session(client)
    refused = {k: f"{v.code} {v.message}" for k, v in errors.items()}
    accepted = [r for r in recipients if r not in refused]
    data = {**base, "accepted": accepted, "refused": refused, "response": reply}
    return ActionResult.ok(data, port="sent")


async def close_session(client: aiosmtplib.SMTP) -> None:
    """QUIT politely; close the socket if the server does not answer."""
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
