"""Status callbacks, as Twilio sends them.

When a message has a ``StatusCallback`` URL, each status it takes after creation is
POSTed there as a form (``MessageSid``, ``MessageStatus``, ``SmsSid``, ``SmsStatus``,
``AccountSid``, ``From``, ``To``, ``ApiVersion``) signed with ``X-Twilio-Signature``:
base64 of HMAC-SHA1, keyed by the auth token, of the URL followed by every parameter
name and value sorted by name. The initial status (``queued``, or ``accepted`` for a
Messaging Service) is not reported, and neither is the brief ``sending``; ``queued``
is, when a Messaging Service message reaches it. One message's callbacks go out in
the order of its statuses. Twilio does not retry a failed status callback, and neither
does the sandbox. When the statuses change is :mod:`.queue`'s business.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections import deque
from collections.abc import Callable, Mapping

import httpx

from calflow.sandbox.twilio.queue import Change
from calflow.sandbox.twilio.state import API_VERSION, Callback, Message, TwilioState

USER_AGENT = "TwilioProxy/1.1"
REPORTED = frozenset({"queued", "sent", "delivered"})
"""The statuses a status callback reports (when the message has a callback URL)."""


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` of a form POST to ``url``."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def callback_params(message: Message, status: str) -> dict[str, str]:
    """The form Twilio posts when the message takes ``status``."""
    params = {
        "AccountSid": message.account_sid,
        "ApiVersion": API_VERSION,
        "MessageSid": message.sid,
        "MessageStatus": status,
        "SmsSid": message.sid,
        "SmsStatus": status,
        "To": message.to,
    }
    if message.from_:
        params["From"] = message.from_
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    return params


class StatusDispatcher:
    """Posts the status callbacks of status changes, in background tasks."""

    def __init__(
        self,
        state: Callable[[], TwilioState],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._state = state
        self._timeout_s = timeout_s
        self._transport = transport
        self._waiting: dict[str, deque[dict[str, str]]] = {}
        self._pending: set[asyncio.Task[None]] = set()

    def report(self, changes: list[Change]) -> None:
        """Queue the callbacks of ``changes`` (must run on the event loop; returns at once)."""
        for change in changes:
            url = change.message.status_callback
            if not url or change.status not in REPORTED:
                continue
            sid = change.message.sid
            waiting = self._waiting.get(sid)
            params = callback_params(change.message, change.status)
            if waiting is not None:  # a task is posting this message's earlier callbacks
                waiting.append(params)
                continue
            self._waiting[sid] = deque([params])
            task = asyncio.get_running_loop().create_task(self._drain(sid, url))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _drain(self, sid: str, url: str) -> None:
        # One client per message: a TLS context costs ~20 ms of CPU, so none is made
        # for the messages without a callback URL.
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=self._timeout_s, follow_redirects=False
            ) as client:
                waiting = self._waiting[sid]
                while waiting:
                    await self._post(client, url, waiting.popleft())
        finally:
            self._waiting.pop(sid, None)

    async def _post(self, client: httpx.AsyncClient, url: str, params: dict[str, str]) -> None:
        sig = signature(self._state().auth_token, url, params)
        record = Callback(url, params["MessageSid"], params["MessageStatus"], sig)
        try:
            response = await client.post(
                url, data=params, headers={"X-Twilio-Signature": sig, "User-Agent": USER_AGENT}
            )
            record.status_code = response.status_code
        except httpx.HTTPError as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        self._state().callbacks.append(record)

    async def flush(self) -> int:
        """Wait until every queued callback was posted; returns how many tasks were awaited."""
        count = 0
        while self._pending:
            batch = list(self._pending)
            count += len(batch)
            await asyncio.gather(*batch, return_exceptions=True)
        return count
