"""Verifying SavvyCal webhook deliveries.

SavvyCal signs each delivery with ``x-savvycal-signature: sha256=<HEX>``: the HMAC-SHA256
of the raw body keyed by the webhook's secret. The docs show the hex in uppercase, so
it is compared case-insensitively, and in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-savvycal-signature"
_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value SavvyCal would send for ``body`` (lowercase hex)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{_PREFIX}{digest}"


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is a valid signature of the raw ``body`` under ``secret``."""
    if not secret or not header:
        return False
    value = header.strip()
    if value[: len(_PREFIX)].lower() != _PREFIX:
        return False
    given = value[len(_PREFIX) :].strip().lower()
    expected = sign(secret, body)[len(_PREFIX) :]
    return hmac.compare_digest(given.encode(), expected.encode())
