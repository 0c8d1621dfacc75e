"""Delivery progress and status callbacks, as Twilio sends them.

After a message is created it moves to ``sent`` and then ``delivered``; when it has a
``StatusCallback`` URL, each change is POSTed there as a form (``MessageSid``,
``MessageStatus``, ``SmsSid``, ``SmsStatus``, ``AccountSid``, ``From``, ``To``,
``ApiVersion``) signed with ``X-Twilio-Signature``: base64 of HMAC-SHA1, keyed by the
auth token, of the URL followed by every parameter name and value sorted by name.
Twilio does not retry a failed status callback, and neither does the sandbox.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime

import httpx

from calflow.sandbox.twilio.state import API_VERSION, Callback, Message, TwilioState

USER_AGENT = "TwilioProxy/1.1"
PROGRESS = ("sent", "delivered")


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` of a form POST to ``url``."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def callback_params(message: Message) -> dict[str, str]:
    """The form Twilio posts for the message's current status."""
    params = {
        "AccountSid": message.account_sid,
        "ApiVersion": API_VERSION,
        "MessageSid": message.sid,
        "MessageStatus": message.status,
        "SmsSid": message.sid,
        "SmsStatus": message.status,
        "To": message.to,
    }
    if message.from_:
        params["From"] = message.from_
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    return params


class StatusDispatcher:
    """Moves messages through ``sent`` and ``delivered`` in background tasks."""

    def __init__(
        self,
        state: Callable[[], TwilioState],
        now: Callable[[], datetime],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._state = state
        self._now = now
        self._timeout_s = timeout_s
        self._transport = transport
        self._pending: set[asyncio.Task[None]] = set()

    def start(self, message: Message) -> None:
        """Begin the message's progress (returns at once)."""
        task = asyncio.get_running_loop().create_task(self._progress(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _progress(self, message: Message) -> None:
        if not message.status_callback:  # no client (a TLS context costs ~20 ms of CPU)
            self._advance_all(message)
            return
        async with httpx.AsyncClient(
            transport=self._transport, timeout=self._timeout_s, follow_redirects=False
        ) as client:
            for status in PROGRESS:
                await asyncio.sleep(0)
                self._advance(message, status)
                await self._post(client, message)

    def _advance(self, message: Message, status: str) -> None:
        now = self._now()
        message.status, message.date_updated = status, now
        if status == "sent":
            message.date_sent = now

    def _advance_all(self, message: Message) -> None:
        for status in PROGRESS:
            self._advance(message, status)

    async def _post(self, client: httpx.AsyncClient, message: Message) -> None:
        url = str(message.status_callback)
        params = callback_params(message)
        sig = signature(self._state().auth_token, url, params)
        record = Callback(url, message.sid, message.status, sig)
        try:
            response = await client.post(
                url, data=params, headers={"X-Twilio-Signature": sig, "User-Agent": USER_AGENT}
            )
            record.status_code = response.status_code
        except httpx.HTTPError as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        self._state().callbacks.append(record)

    async def flush(self) -> int:
        """Wait until every message's progress finished; returns how many were awaited."""
        count = 0
        while self._pending:
            batch = list(self._pending)
            count += len(batch)
            await asyncio.gather(*batch, return_exceptions=True)
        return count
