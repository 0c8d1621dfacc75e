"""The Twilio simulator's state: the account, its numbers, messages and status callbacks."""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

API_VERSION = "2010-04-01"
#: Numbers the sandbox account owns (``+15005550006`` is Twilio's test-credentials From).
OWNED_NUMBERS = ("+15005550006", "+15017122661")


def rfc2822(value: datetime | None) -> str | None:
    """Twilio's date format: ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return email.utils.format_datetime(value) if value is not None else None


@dataclass
class Message:
    """One message resource."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    messaging_service_sid: str | None
    status: str
    num_segments: int
    date_created: datetime
    date_updated: datetime
    status_callback: str | None = None
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        """The message as Twilio serializes it (counts are strings, dates RFC 2822)."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": self.uri,
        }


@dataclass
class Callback:
    """One status callback the sandbox POSTed."""

    url: str
    message_sid: str
    message_status: str
    signature: str
    status_code: int | None = None
    error: str | None = None


@dataclass
class TwilioState:
    """Messages in creation order and the status callbacks sent for them."""

    account_sid: str
    auth_token: str
    random_seed: int
    created: datetime
    messages: dict[str, Message] = field(default_factory=dict)
    callbacks: list[Callback] = field(default_factory=list)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.random_seed + 11)

    def new_sid(self, prefix: str) -> str:
        """``prefix`` + 32 lowercase hex digits, from the seeded generator."""
        return prefix + "".join(self._rng.choice("0123456789abcdef") for _ in range(32))

    def account_json(self) -> dict[str, Any]:
        """The account resource (``GET /Accounts/{sid}.json``)."""
        return {
            "sid": self.account_sid,
            "friendly_name": "calflow sandbox",
            "status": "active",
            "type": "Full",
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.created),
            "owner_account_sid": self.account_sid,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}.json",
        }
