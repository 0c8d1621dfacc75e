"""Verifying webhook signatures on the raw body, in constant time, per provider.

- Cal.com: ``X-Cal-Signature-256`` = lowercase hex HMAC-SHA256(secret, body).
- SavvyCal: ``x-savvycal-signature: sha256=<HEX>`` (hex compared case-insensitively).
- Standard Webhooks (opt-in per integration, ``webhook_signature = "standard"``):
  ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64>`` (several,
  space-separated, during rotation) over ``"{id}.{timestamp}.{body}"`` with a
  ``whsec_<base64>`` secret, timestamps within five minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

STANDARD_TOLERANCE_S = 300


def _hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_calcom(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    given = headers.get("x-cal-signature-256", "").strip().lower()
    if not given or given == "no-secret-provided":
        return False
    return hmac.compare_digest(given.encode(), _hex(secret.encode(), body).encode())


def verify_savvycal(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    given = headers.get("x-savvycal-signature", "").strip()
    if given[:7].lower() != "sha256=":
        return False
    expected = _hex(secret.encode(), body)
    return hmac.compare_digest(given[7:].strip().lower().encode(), expected.encode())


def _standard_key(secret: str) -> bytes:
    text = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64>`` for a Standard Webhooks delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard(
    secret: str, body: bytes, headers: Mapping[str, str], now: float | None = None
) -> bool:
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp.isdigit() and signatures):
        return False
    if abs((now or time.time()) - int(timestamp)) > STANDARD_TOLERANCE_S:
        return False
    expected = standard_signature(secret, msg_id, timestamp, body).encode()
    return any(
        hmac.compare_digest(sig.encode(), expected)
        for sig in signatures.split()
        if sig.startswith("v1,")
    )


def verify(
    provider: str, scheme: str | None, secret: str, body: bytes, headers: Mapping[str, str]
) -> bool:
    """Whether ``body`` carries a valid signature for ``provider`` (or the opted-in scheme)."""
    if scheme == "standard":
        return verify_standard(secret, body, headers)
    if provider == "savvycal":
        return verify_savvycal(secret, body, headers)
    return verify_calcom(secret, body, headers)
