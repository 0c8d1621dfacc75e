"""Creating a message as Twilio does: required parameters, number checks, magic numbers.

Magic ``To`` numbers (Twilio's test-credential numbers, plus sandbox faults):

=================  =====================================================================
``+15005550001``   400 / 21211 invalid To
``+15005550002``   400 / 21612 cannot route to this number
``+15005550003``   400 / 21408 no permission for the region
``+15005550004``   400 / 21610 the recipient unsubscribed (STOP)
``+15005550009``   400 / 21614 not a mobile number
``+15005550429``   429 / 20429 too many requests
``+15005550500``   500 / 20500 internal error
``+15005550504``   the message is created, then the answer waits ``twilio_slow_s`` seconds
                   (a client timing out after sending: the message exists)
=================  =====================================================================
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import datetime

import phonenumbers

from calflow.sandbox.twilio.errors import TwilioError, bad_request
from calflow.sandbox.twilio.segments import segment_count
from calflow.sandbox.twilio.state import OWNED_NUMBERS, Message, TwilioState

MAX_BODY = 1600
SLOW_TO = "+15005550504"
_RECIPIENT_FAULTS = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number: {to}, is not currently reachable."),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number: {to}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number {to} is not a valid mobile number"),
}
_STATUS_FAULTS = {
    "+15005550429": TwilioError(429, 20429, "Too Many Requests"),
    "+15005550500": TwilioError(500, 20500, "An internal server error has occurred"),
}
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SHORT_CODE = re.compile(r"^\d{5,6}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")


def _is_phone(value: str) -> bool:
    if not _E164.match(value):
        return False
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(value)))
    except phonenumbers.NumberParseException:
        return False


def _check_sender(sender: str | None, service: str | None) -> None:
    if service is not None and not _SERVICE_SID.match(service):
        raise bad_request(21701, f"The Messaging Service Sid {service} is invalid.")
    if sender is None:
        return
    if _ALPHA_SENDER.match(sender) or _SHORT_CODE.match(sender):
        return
    if not _is_phone(sender):
        raise bad_request(
            21212,
            f"The 'From' number {sender} is not a valid phone number, shortcode, or "
            "alphanumeric sender ID.",
        )
    if sender not in OWNED_NUMBERS:
        raise bad_request(
            21606,
            f"The From phone number {sender} is not a valid, SMS-capable inbound phone "
            "number or short code for your account.",
        )


def validate(form: Mapping[str, str]) -> tuple[str, str | None, str, str | None]:
    """``(to, from, body, messaging_service_sid)`` or the ``TwilioError`` Twilio answers."""
    to = form.get("To", "").strip()
    sender = form.get("From", "").strip() or None
    service = form.get("MessagingServiceSid", "").strip() or None
    body = form.get("Body", "")
    if not to:
        raise bad_request(21604, "A 'To' phone number is required.")
    if sender is None and service is None:
        raise bad_request(21603, "A 'From' phone number is required.")
    if not body and not form.get("MediaUrl"):
        raise bad_request(21602, "Message body is required.")
    if to in _RECIPIENT_FAULTS:
        code, text = _RECIPIENT_FAULTS[to]
        raise bad_request(code, text.format(to=to))
    if to in _STATUS_FAULTS:
        raise _STATUS_FAULTS[to]
    if not _is_phone(to):
        raise bad_request(21211, f"The 'To' number {to} is not a valid phone number.")
    _check_sender(sender, service)
    if sender == to:
        raise bad_request(21266, "'To' and 'From' number cannot be the same")
    if len(body) > MAX_BODY:
        raise bad_request(21617, "The concatenated message body exceeds the 1600 character limit.")
    return to, sender, body, service


def create(state: TwilioState, form: Mapping[str, str], now: datetime) -> Message:
    """Validate ``form`` and store the new message (``queued``, or ``accepted`` when it
    goes through a Messaging Service without a From)."""
    to, sender, body, service = validate(form)
    message = Message(
        sid=state.new_sid("SM"),
        account_sid=state.account_sid,
        to=to,
        from_=sender,
        body=body,
        messaging_service_sid=service,
        status="accepted" if sender is None else "queued",
        num_segments=segment_count(body),
        date_created=now,
        date_updated=now,
        status_callback=form.get("StatusCallback") or None,
    )
    state.messages[message.sid] = message
    return message


async def slow_answer(message: Message, delay_s: float) -> None:
    """The answer to the slow magic number waits, after the message was stored."""
    if message.to == SLOW_TO:
        await asyncio.sleep(delay_s)
