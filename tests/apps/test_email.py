"""The email app over real SMTP sockets, against the sandbox's SMTP sink."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from calflow.errors import ConfigError, RetryableError, ValidationError
from calflow.flowapp import ActionResult
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration
from calflow.sandbox.smtp_sink import SmtpSink
from e2e.sandbox_process import free_port

from .savvycal._support import make_integration

FROM = "Clinic <noreply@clinic.example>"


def smtp(port: int, password: str | None = None, **config: Any) -> Integration:
    values = {"host": "127.0.0.1", "port": str(port), "security": "none", "from_address": FROM}
    secrets = {"password": password} if password is not None else {}
    found = make_integration({**values, **config}, secrets)
    return dataclasses.replace(found, app_key="email", name="smtp test")


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    found = SmtpSink()
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
def port(sink: SmtpSink) -> int:
    assert sink.address is not None
    return sink.address[1]


async def send(
    data: dict[str, Any], integration: Integration, *, raise_retryable: bool = False
) -> ActionResult:
    async with Runner(publish=False) as runner:
        return await runner.run_action(
            "email", "SendEmail", data, integration, raise_retryable=raise_retryable
        )


BASIC = {"to": "ada@example.com", "subject": "Your booking", "text": "See you at 10:00."}


async def test_sent_carries_the_message_id_and_the_sink_got_it(sink: SmtpSink, port: int) -> None:
    result = await send(BASIC, smtp(port))
    assert (result.success, result.port) == (True, "sent")
    assert (
        result.data["message_id"].startswith("<")
        and "@clinic.example>" in result.data["message_id"]
    )
    assert result.data["accepted"] == ["ada@example.com"] and result.data["refused"] == {}
    (mail,) = sink.messages
    assert mail.mail_from == "noreply@clinic.example"
    assert mail.rcpt_tos == ["ada@example.com"]
    assert mail.message_id == result.data["message_id"]
    assert mail.subject == "Your booking" and mail.text == "See you at 10:00.\n"
    assert mail.html is None
    assert mail.headers["From"] == FROM


async def test_text_and_html_with_cc_bcc_reply_to_and_headers(sink: SmtpSink, port: int) -> None:
    data = {
        "to": ["Ada <ada@example.com>", "bob@example.com"],
        "cc": "cy@example.com, Ada <ada@example.com>",
        "bcc": "audit@clinic.example",
        "reply_to": "desk@clinic.example",
        "from": "Front desk <desk@clinic.example>",
        "subject": "Réservation confirmée",
        "text": "Plain",
        "html": "<p>Rich</p>",
        "headers": {"X-Booking-Uid": "bk_1"},
    }
    result = await send(data, smtp(port))
    assert result.port == "sent"
    expected = ["ada@example.com", "bob@example.com", "cy@example.com", "audit@clinic.example"]
    assert result.data["recipients"] == expected
    (mail,) = sink.messages
    assert mail.rcpt_tos == expected
    assert mail.mail_from == "desk@clinic.example"
    assert mail.headers["To"] == "Ada <ada@example.com>, bob@example.com"
    assert mail.headers["Cc"] == "cy@example.com, Ada <ada@example.com>"
    assert "Bcc" not in mail.headers and "audit" not in str(mail.headers)
    assert mail.headers["Reply-To"] == "desk@clinic.example"
    assert mail.headers["X-Booking-Uid"] == "bk_1"
    assert mail.subject == "Réservation confirmée"
    assert (mail.text, mail.html) == ("Plain\n", "<p>Rich</p>\n")


async def test_html_only(sink: SmtpSink, port: int) -> None:
    result = await send({"to": "a@example.com", "subject": "s", "html": "<b>hi</b>"}, smtp(port))
    assert result.port == "sent"
    assert (sink.messages[0].text, sink.messages[0].html) == (None, "<b>hi</b>\n")


async def test_every_recipient_refused_is_rejected(sink: SmtpSink, port: int) -> None:
    data = {**BASIC, "to": ["reject@example.com", "x@reject.test"]}
    result = await send(data, smtp(port))
    assert (result.success, result.port, result.code) == (True, "rejected", "REJECTED")
    assert set(result.data["refused"]) == {"reject@example.com", "x@reject.test"}
    assert result.data["refused"]["x@reject.test"].startswith("550")
    assert sink.messages == []


async def test_some_recipients_refused_is_sent_with_the_refusals(sink: SmtpSink, port: int) -> None:
    result = await send({**BASIC, "to": "ok@example.com, reject-me@example.com"}, smtp(port))
    assert result.port == "sent"
    assert result.data["accepted"] == ["ok@example.com"]
    assert list(result.data["refused"]) == ["reject-me@example.com"]
    assert sink.messages[0].rcpt_tos == ["ok@example.com"]


async def test_temporary_refusal_is_retryable(sink: SmtpSink, port: int) -> None:
    result = await send({**BASIC, "to": "tempfail@example.com"}, smtp(port))
    assert (result.success, result.port, result.code) == (False, "error", "UNAVAILABLE")
    with pytest.raises(RetryableError, match="451"):
        await send({**BASIC, "to": "tempfail@example.com"}, smtp(port), raise_retryable=True)


async def test_nothing_listening_is_unavailable() -> None:
    result = await send(BASIC, smtp(free_port()))
    assert (result.success, result.code) == (False, "UNAVAILABLE")


@pytest.fixture
async def locked() -> AsyncIterator[int]:
    found = SmtpSink(username="clinic", password="s3cret-pass")
    yield await found.start()
    await found.stop()


async def test_login(locked: int) -> None:
    ok = await send(BASIC, smtp(locked, "s3cret-pass", username="clinic"))
    assert ok.port == "sent"
    wrong = await send(BASIC, smtp(locked, "nope-nope", username="clinic"))
    assert (wrong.success, wrong.code) == (False, "AUTH_ERROR")
    assert "nope-nope" not in str(wrong.to_dict())
    anonymous = await send(BASIC, smtp(locked))
    assert (anonymous.success, anonymous.code) == (False, "AUTH_ERROR")


async def test_test_connection(locked: int) -> None:
    async with Runner(publish=False) as runner:
        ok = await runner.run_action(
            "email", "TestConnection", {}, smtp(locked, "s3cret-pass", username="clinic")
        )
        assert ok.success and ok.data["logged_in"] is True and "auth" in ok.data["extensions"]
        bad = await runner.run_action(
            "email", "TestConnection", {}, smtp(locked, "wrong-pass", username="clinic")
        )
        assert bad.code == "AUTH_ERROR"


async def test_starttls_required_but_not_offered_is_a_config_error(port: int) -> None:
    with pytest.raises(ConfigError, match="TLS"):
        await send(BASIC, smtp(port, security="starttls"))


class _Answering(SmtpSink):
    """A sink that answers DATA with a fixed reply, after an optional delay."""

    def __init__(self, reply: str, delay_s: float = 0.0) -> None:
        super().__init__()
        self.reply, self.delay_s = reply, delay_s

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay_s)
        return self.reply


@pytest.mark.parametrize(
    ("reply", "port_", "code"),
    [
        ("554 5.7.1 Message rejected as spam", "rejected", "REJECTED"),
        ("452 4.3.1 Insufficient system storage", "error", "UNAVAILABLE"),
    ],
)
async def test_data_refusals(reply: str, port_: str, code: str) -> None:
    sink = _Answering(reply)
    bound = await sink.start()
    try:
        result = await send(BASIC, smtp(bound))
    finally:
        await sink.stop()
    assert (result.port, result.code) == (port_, code)


async def test_timeout_while_sending_is_maybe_sent_and_not_retried() -> None:
    sink = _Answering("250 OK", delay_s=1.0)
    bound = await sink.start()
    try:
        result = await send(BASIC, smtp(bound, timeout_s="0.3"))
    finally:
        await sink.stop()
    assert (result.success, result.code) == (False, "MAYBE_SENT")
    assert "may have been accepted" in str(result.message)
    assert len(sink.messages) == 1  # the server had it: exactly one copy, no retry


@pytest.mark.parametrize(
    "data",
    [
        {"to": "a@example.com", "subject": "s"},
        {"subject": "s", "text": "t"},
        {"to": "a@example.com", "text": "t"},
        {"to": "not an address", "subject": "s", "text": "t"},
        {"to": ["a@example.com", "b@"], "subject": "s", "text": "t"},
        {"to": "a@example.com", "subject": "two\nlines", "text": "t"},
        {"to": "a@example.com", "subject": "s", "text": "t", "headers": {"Bcc": "x@y.org"}},
        {"to": "a@example.com", "subject": "s", "text": "t", "headers": {"X-A": "a\r\nB: b"}},
        {"to": "a@example.com", "subject": "s", "text": "t", "reply_to": "nope"},
        {"to": "a@example.com\r\nBcc: evil@example.com", "subject": "s", "text": "t"},
        {"to": ["a@example.com\nBcc: evil@example.com"], "subject": "s", "text": "t"},
        {
            "to": "a@example.com",
            "from": "x@example.com\r\nBcc: e@x.org",
            "subject": "s",
            "text": "t",
        },
        {"to": "a@example.com", "subject": "s", "text": "t", "extra": True},
    ],
)
async def test_bad_input_is_a_validation_error(port: int, data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        await send(data, smtp(port))


async def test_no_sender_is_a_config_error(port: int) -> None:
    with pytest.raises(ConfigError, match="sender"):
        await send(BASIC, smtp(port, from_address=""))


async def test_bad_security_setting_is_a_config_error(port: int) -> None:
    with pytest.raises(ConfigError, match="security"):
        await send(BASIC, smtp(port, security="tls1.3"))


def _self_signed(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


async def test_starttls_with_login(tmp_path: Path) -> None:
    sink = SmtpSink(username="clinic", password="tls-pass-1", tls_context=_self_signed(tmp_path))
    bound = await sink.start()
    try:
        trusting = smtp(bound, "tls-pass-1", username="clinic", security="starttls")
        trusting = dataclasses.replace(
            trusting, config={**trusting.config, "verify_tls": "false", "host": "localhost"}
        )
        result = await send(BASIC, trusting)
        assert result.port == "sent"
        async with Runner(publish=False) as runner:
            checked = await runner.run_action("email", "TestConnection", {}, trusting)
        assert checked.data["tls"] is True and checked.data["logged_in"] is True
        strict = dataclasses.replace(trusting, config={**trusting.config, "verify_tls": "true"})
        with pytest.raises(ConfigError, match="TLS"):
            await send(BASIC, strict)
        plain = smtp(bound, "tls-pass-1", username="clinic", security="none")
        refused = await send(BASIC, plain)
        assert (refused.success, refused.code) == (False, "AUTH_ERROR"), refused.to_dict()
    finally:
        await sink.stop()
    assert len(sink.messages) == 1
