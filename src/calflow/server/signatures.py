"""Webhook signatures on the raw body: the providers' own schemes and Standard Webhooks.

- Cal.com: ``X-Cal-Signature-256`` = lowercase hex HMAC-SHA256(secret, body).
- SavvyCal: ``x-savvycal-signature: sha256=<HEX>`` (hex compared case-insensitively).
- Standard Webhooks (per integration ``webhook_signature = "standard"``; replay
  ``--signature standard``): signed and verified by the ``standardwebhooks`` package
  (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64>``, several
  during rotation, five minutes of tolerance). calflow adds two gates in front of it:
  the secret must be ``whsec_<base64>`` (padded when unpadded, as the library does;
  anything that does not decode is refused, never used as a raw key), and the headers
  must be well formed before the library parses them (the library reads the timestamp
  with ``float()``, which takes Arabic-Indic digits, signs, exponents and ``1_0``).

Every check is constant time in the signature (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from calflow.errors import ConfigError, FieldError
from calflow.flowapp.model import CredentialField

PROVIDER = "provider"
STANDARD = "standard"
SCHEMES = (PROVIDER, STANDARD)
"""The values of an integration's ``webhook_signature`` (absent: ``provider``)."""

STANDARD_TOLERANCE_S = 300
"""The library's tolerance for ``webhook-timestamp`` (fixed there), for messages."""
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
PROVIDER_HEADERS = ("x-cal-signature-256", "x-savvycal-signature")
"""The providers' own signature headers (dropped when a delivery is signed ``standard``)."""

_PREFIX = "whsec_"
_TIMESTAMP = re.compile(r"[1-9][0-9]{0,11}")  # Unix seconds in ASCII digits, to year 33658
_MSG_ID = re.compile(r"[\x21-\x7e]{1,256}")  # visible ASCII, as the ids senders use
_MAX_SIGNATURES = 4096
BAD_SIGNATURE = "the signature does not match the body"

WEBHOOK_SIGNATURE_FIELD = CredentialField(
    "webhook_signature",
    "Webhook signature",
    placeholder=PROVIDER,
    choices=SCHEMES,
    description=(
        "How deliveries are signed: 'provider' (the provider's own scheme, the default) "
        "or 'standard' (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature; "
        "the webhook secret is then whsec_<base64>)."
    ),
)
"""The setting every booking-provider app declares beside ``webhook_secret``."""


class StandardSecretError(ConfigError):
    """A Standard Webhooks secret that is not ``whsec_<base64>``."""

    code = "BAD_SECRET"


# --------------------------------------------------------------------- provider schemes


def _hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_calcom(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    given = headers.get("x-cal-signature-256", "").strip().lower()
    if not given or given == "no-secret-provided":
        return False
    return hmac.compare_digest(given.encode(), _hex(secret, body).encode())


def verify_savvycal(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    given = headers.get("x-savvycal-signature", "").strip()
    if given[:7].lower() != "sha256=":
        return False
    return hmac.compare_digest(given[7:].strip().lower().encode(), _hex(secret, body).encode())


# --------------------------------------------------------------------- Standard Webhooks


def standard_webhook(secret: str) -> Webhook:
    """The library's signer/verifier for ``secret``; ``StandardSecretError`` unless it is
    base64 (after ``whsec_``, padded when unpadded). The message never shows the secret."""
    text = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise StandardSecretError(
            "the webhook secret is not a Standard Webhooks secret: it must be "
            "whsec_<base64> (standard alphabet; padding optional)"
        )
    return Webhook(secret)


def standard_headers(
    secret: str, msg_id: str, body: bytes, when: datetime | None = None
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` (``when``, default now) and
    ``webhook-signature`` for ``body``."""
    when = when or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    signature = standard_webhook(secret).sign(msg_id, when, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(when.timestamp())),
        "webhook-signature": signature,
    }


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64>`` for a delivery stamped ``timestamp`` (Unix seconds)."""
    when = datetime.fromtimestamp(int(timestamp), UTC)
    return standard_webhook(secret).sign(msg_id, when, body)


def _header_problem(msg_id: str, timestamp: str, signatures: str) -> str | None:
    missing = [
        name
        for name, value in zip(STANDARD_HEADERS, (msg_id, timestamp, signatures), strict=True)
        if not value
    ]
    if missing:
        return f"missing Standard Webhooks header(s): {', '.join(missing)}"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "webhook-timestamp must be Unix seconds: 1 to 12 ASCII digits, no sign or point"
    if not _MSG_ID.fullmatch(msg_id):
        return "webhook-id must be 1 to 256 visible ASCII characters"
    if len(signatures) > _MAX_SIGNATURES:
        return f"webhook-signature is longer than {_MAX_SIGNATURES} characters"
    return None


_LIBRARY_REASONS = {
    "Message timestamp too old": (
        f"webhook-timestamp is more than {STANDARD_TOLERANCE_S // 60} minutes in the past"
    ),
    "Message timestamp too new": (
        f"webhook-timestamp is more than {STANDARD_TOLERANCE_S // 60} minutes in the future"
    ),
    "No matching signature found": "no signature in webhook-signature matches the body",
}


def standard_refusal(secret: str, body: bytes, headers: Mapping[str, str]) -> str | None:
    """Why a Standard Webhooks delivery is refused, or ``None`` when it verifies.

    ``headers`` have lowercase names. ``StandardSecretError`` when the secret is unusable
    (a configuration error, not the sender's)."""
    webhook = standard_webhook(secret)
    msg_id, timestamp, signatures = (headers.get(name, "") for name in STANDARD_HEADERS)
    problem = _header_problem(msg_id, timestamp, signatures)
    if problem is not None:
        return problem
    given = dict(zip(STANDARD_HEADERS, (msg_id, timestamp, signatures), strict=True))
    try:
        webhook.verify(body, given, json_parse=False)
    except WebhookVerificationError as exc:
        return _LIBRARY_REASONS.get(str(exc), f"the signature does not verify ({exc})")
    return None


# --------------------------------------------------------------------- one entry point


def refusal(
    provider: str, scheme: str | None, secret: str, body: bytes, headers: Mapping[str, str]
) -> str | None:
    """Why ``body`` is refused for ``provider`` (or the integration's ``scheme``), or
    ``None`` when its signature verifies. ``headers`` have lowercase names."""
    if scheme == STANDARD:
        return standard_refusal(secret, body, headers)
    check = verify_savvycal if provider == "savvycal" else verify_calcom
    return None if check(secret, body, headers) else BAD_SIGNATURE


def verify(
    provider: str, scheme: str | None, secret: str, body: bytes, headers: Mapping[str, str]
) -> bool:
    """Whether ``body`` carries a valid signature for ``provider`` (or the opted-in scheme)."""
    return refusal(provider, scheme, secret, body, headers) is None


def check_webhook_settings(values: Mapping[str, Any]) -> list[FieldError]:
    """The problems of an integration's webhook settings: with ``webhook_signature =
    standard``, a ``webhook_secret`` that is set must be a Standard Webhooks secret."""
    secret = values.get("webhook_secret")
    if values.get("webhook_signature") != STANDARD or not isinstance(secret, str) or not secret:
        return []
    try:
        standard_webhook(secret)
    except StandardSecretError as exc:
        return [FieldError("webhook_secret", exc.message, "format")]
    return []
