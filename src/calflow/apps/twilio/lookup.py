"""Finding a message an earlier, cut-off ``SendSms`` may have created, whatever its status.

Twilio has no idempotency key and no filter on ``date_created``; its ``DateSent``
filters match only messages that have left Twilio, and a message can wait ``queued``
(no ``date_sent``) for seconds to hours behind its sender's throughput. So the lookup
lists the recipient's messages (``To``, and ``From`` when the step sent from a number),
newest first, following ``next_page_uri``, and takes the first one with the same body,
the same sender (From number or Messaging Service) and a ``date_created`` no earlier
than the intent less :data:`CLOCK_SKEW`.

It stops at the first message that was *sent* before that bound: nothing listed after
it can be newer, whether the list runs in creation (SID) order, as the sandbox's does,
or by ``date_sent`` as Twilio's docs say (a queued message, undated, is not a bound
under the second order, so it does not stop the scan).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from calflow.apps.twilio.client import API_VERSION, TwilioClient
from calflow.flowapp.http import BadResponseError

CLOCK_SKEW = timedelta(seconds=10)
"""How much earlier than calflow's recorded intent a message's ``date_created`` may be
and still be that intent's message: Twilio's dates are whole seconds (up to 1 s early)
and its clock and calflow's host's may differ by a few seconds. A message with the same
body, to the same number from the same sender, created within this allowance before
the intent would be taken for it (and the SMS not sent again)."""
PAGE_SIZE = 100


def parse_date(value: Any) -> datetime | None:
    """A Twilio RFC 2822 date (``Thu, 24 Aug 2023 05:01:45 +0000``), or ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


def _same_sender(message: Mapping[str, Any], sender: Mapping[str, str]) -> bool:
    if "From" in sender:
        return message.get("from") == sender["From"]
    return message.get("messaging_service_sid") == sender.get("MessagingServiceSid")


def _next_path(client: TwilioClient, uri: str) -> str:
    """``next_page_uri`` as a path under the client's base; it must be this very list."""
    parts = urlsplit(uri)
    path = parts.path.removeprefix(f"/{API_VERSION}")
    if path != client.account_path("/Messages"):
        raise BadResponseError(f"Twilio answered an unexpected next_page_uri {uri!r}", 200, uri)
    return f"{path}?{parts.query}" if parts.query else path


async def find_message(
    client: TwilioClient, to: str, body: str, sender: Mapping[str, str], since: datetime
) -> Mapping[str, Any] | None:
    """The message to ``to`` with ``body`` from ``sender`` created since ``since`` (less
    :data:`CLOCK_SKEW`), in any status; ``None`` if Twilio has none. Provider errors
    propagate: a step that cannot tell waits rather than sends twice."""
    bound = _aware(since) - CLOCK_SKEW
    path = client.account_path("/Messages")
    query = {"To": to, "PageSize": str(PAGE_SIZE)}
    if "From" in sender:
        query["From"] = sender["From"]
    params: dict[str, str] | None = query
    while True:
        resp = await client.request("GET", path, params=params)
        page = resp.body
        messages = page.get("messages") if isinstance(page, Mapping) else None
        if not isinstance(page, Mapping) or not isinstance(messages, list):
            raise BadResponseError("Twilio answered a message list without messages", 200, page)
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            created = parse_date(message.get("date_created"))
            if (
                message.get("body") == body
                and created is not None
                and created >= bound
                and _same_sender(message, sender)
            ):
                return message
            sent = parse_date(message.get("date_sent"))
            if sent is not None and sent < bound:
                return None
        following = page.get("next_page_uri")
        if not isinstance(following, str) or not following:
            return None
        path, params = _next_path(client, following), None
