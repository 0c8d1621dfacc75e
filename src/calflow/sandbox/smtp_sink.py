"""A local SMTP sink: accepts mail on a TCP port and records it for the sandbox state.

It speaks real SMTP (``aiosmtpd``), so the ``email`` app is tested over a socket exactly
as it talks to a real server. Messages show in ``GET /_sandbox/state`` under ``smtp``
and in ``GET /_sandbox/smtp/messages``. Magic recipients, for the refusal paths:

* a local part starting ``reject`` (or any address at ``reject.test``): ``550`` (refused
  for good);
* a local part starting ``tempfail``: ``451`` (try again later).

With ``username`` / ``password`` set, ``MAIL`` needs a successful ``AUTH`` first (PLAIN
or LOGIN, allowed without TLS: the sink is for local use). With ``tls_context`` it offers
STARTTLS and requires it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import secrets
import ssl
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)
HOSTNAME = "calflow-sandbox"
MAX_SHOWN_BODY = 20_000


@dataclass
class ReceivedMail:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    received_at: str
    message_id: str | None
    subject: str | None
    headers: dict[str, str]
    text: str | None
    html: str | None
    size: int


def _part(msg: EmailMessage, subtype: str) -> str | None:
    found = msg.get_body(preferencelist=(subtype,))
    return str(found.get_content())[:MAX_SHOWN_BODY] if found is not None else None


def parse(mail_from: str, rcpt_tos: list[str], raw: bytes) -> ReceivedMail:
    """The recorded form of one accepted message."""
    msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return ReceivedMail(
        mail_from=mail_from,
        rcpt_tos=list(rcpt_tos),
        received_at=datetime.now(UTC).isoformat(),
        message_id=msg.get("Message-ID"),
        subject=msg.get("Subject"),
        headers={k: str(v) for k, v in msg.items()},
        text=_part(msg, "plain"),
        html=_part(msg, "html"),
        size=len(raw),
    )


def refusal(address: str) -> str | None:
    """The SMTP reply refusing a magic recipient, or ``None`` to accept it."""
    local, _, domain = address.lower().rpartition("@")
    if local.startswith("reject") or domain == "reject.test":
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
    if local.startswith("tempfail"):
        return f"451 4.7.1 <{address}>: Recipient address rejected: try again later"
    return None


@dataclass
class SmtpSink:
    """The sink: records mail, serves it to the sandbox state; ``start`` opens the port."""

    username: str | None = None
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    """Offer STARTTLS with this server context (and require it before MAIL)."""
    name: str = "smtp"
    messages: list[ReceivedMail] = field(default_factory=list)
    address: tuple[str, int] | None = None
    error: str | None = None
    _server: asyncio.AbstractServer | None = field(default=None, repr=False)

    # --- aiosmtpd handler hooks ------------------------------------------------
    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refused = refusal(address)
        if refused is not None:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(parse(str(envelope.mail_from), list(envelope.rcpt_tos), raw))
        return "250 2.0.0 Message accepted for delivery"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.username is not None
            and self.password is not None
            and secrets.compare_digest(data.login, self.username.encode())
            and secrets.compare_digest(data.password, self.password.encode())
        )
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 / 535

    # --- listening ------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: a free port) in the running loop; return the port.

        A port that cannot be bound is logged and kept in ``error``, not raised: the
        rest of the sandbox runs without the sink.
        """
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            return SMTP(
                self,
                hostname=HOSTNAME,
                authenticator=self._authenticate,
                auth_require_tls=False,
                tls_context=self.tls_context,
                require_starttls=self.tls_context is not None,
                loop=loop,
            )

        try:
            self._server = await loop.create_server(protocol, host, port)
        except OSError as exc:
            self.error = f"cannot listen on {host}:{port}: {exc}"
            log.warning("SMTP sink %s", self.error)
            return 0
        bound = self._server.sockets[0].getsockname()
        self.address, self.error = (host, int(bound[1])), None
        return int(bound[1])

    async def stop(self) -> None:
        """Stop listening (recorded messages stay)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server, self.address = None, None

    # --- sandbox simulator protocol --------------------------------------------
    def state_json(self) -> dict[str, Any]:
        """Where the sink listens (``null`` when it does not) and every message received."""
        return {
            "listening": f"{self.address[0]}:{self.address[1]}" if self.address else None,
            "error": self.error,
            "messages": [asdict(m) for m in self.messages],
        }

    def seed(self) -> None:
        self.messages.clear()

    def reset(self) -> None:
        self.messages.clear()

    async def flush(self) -> int:
        return 0

    def mount(self, app: FastAPI) -> None:
        """``GET /_sandbox/smtp/messages`` (``?to=`` filters by recipient)."""
        router = APIRouter()

        @router.get("/messages")
        async def received(to: str | None = None) -> JSONResponse:
            found = [asdict(m) for m in self.messages if to is None or to in m.rcpt_tos]
            return JSONResponse(found)

        app.include_router(router, prefix=f"/_sandbox/{self.name}")
