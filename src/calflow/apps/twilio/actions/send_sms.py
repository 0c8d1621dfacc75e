"""SendSms: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from calflow.apps.savvycal.phones import to_e164
from calflow.apps.twilio.client import HANDLED, TwilioClient, twilio_code
from calflow.apps.twilio.lookup import find_message
from calflow.errors import ConfigError, RateLimitError, RetryableError, ValidationError
from calflow.flowapp import ERROR, Action, ActionContext, ActionResult, OutputPort

SENT = OutputPort("sent", "Twilio accepted the message; data carries its SID and status.")
INVALID_NUMBER = OutputPort(
    "invalid_number",
    "The To number is not a valid phone number, not a mobile, unsubscribed, or not "
    "permitted (checked before sending, or said so by Twilio).",
)
#: Twilio error codes that say the recipient number cannot get this SMS.
RECIPIENT_CODES = {
    21211: "not a valid phone number",
    21214: "cannot be reached",
    21217: "does not appear to be valid",
    21407: "does not support SMS",
    21408: "is in a region this account has no permission to send to",
    21421: "is invalid",
    21610: "has unsubscribed (replied STOP)",
    21612: "cannot be routed to",
    21614: "is not a mobile number",
}
#: Connection failures that happen before any byte of the request left.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Twilio itself answered with an error: the message was not queued.
_NOT_QUEUED = (500, 503)
_FIELDS = (
    "sid",
    "status",
    "to",
    "from",
    "body",
    "messaging_service_sid",
    "account_sid",
    "date_created",
    "direction",
    "price",
    "price_unit",
    "error_code",
    "error_message",
    "uri",
)


def _segments(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def sent_data(message: Mapping[str, Any]) -> dict[str, Any]:
    """The ``sent`` port's data from Twilio's message resource (segments as an integer)."""
    out = {k: message.get(k) for k in _FIELDS}
    out["num_segments"] = _segments(message.get("num_segments"))
    return out


def _invalid(to: str, reason: str, code: int | None) -> ActionResult:
    return ActionResult.ok(
        {"to": to, "reason": reason, "twilio_code": code},
        port="invalid_number",
        code="INVALID_NUMBER",
        message=reason,
    )


def _sender(data: Mapping[str, Any], ctx: ActionContext) -> dict[str, str]:
    """``From`` or ``MessagingServiceSid``: the input's first, then the integration's."""
    chosen = (
        ("From", data.get("from")),
        ("MessagingServiceSid", data.get("messaging_service_sid")),
        ("From", ctx.value("from_number")),
        ("MessagingServiceSid", ctx.value("messaging_service_sid")),
    )
    for name, value in chosen:
        if value:
            return {name: str(value).strip()}
    raise ConfigError(
        "SendSms needs a sender: give 'from' or 'messaging_service_sid', or set from_number "
        "or messaging_service_sid on the integration"
    )


class SendSms(Action):
    key = "SendSms"
    name = "Send an SMS"
    description = (
        "Send a text message through Twilio. 'to' is normalized to E.164 first; a number "
        "that is not valid (or that Twilio refuses as invalid, not mobile, unsubscribed or "
        "not permitted) answers on 'invalid_number'. Twilio has no idempotency key, so a "
        "send is never retried once it may have reached Twilio: a timeout or a gateway "
        "error after sending fails with code MAYBE_SENT (check the Twilio logs before "
        "sending again). Failures that are safe to retry (nothing sent, rate limit, Twilio "
        "500/503) fail with UNAVAILABLE or RATE_LIMIT."
    )
    schema_file = "send_sms.json"
    ports = (SENT, INVALID_NUMBER, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        region = data.get("default_phone_region") or ctx.value("default_phone_region")
        try:
            to = to_e164(data["to"], str(region) if region else None, "to")
        except ValidationError as exc:
            return _invalid(data["to"], exc.errors[0].message if exc.errors else exc.message, None)
        form = {"To": to, "Body": data["body"], **_sender(data, ctx)}
        callback = data.get("status_callback") or ctx.value("status_callback")
        if callback:
            form["StatusCallback"] = str(callback)
        # No automatic retry of the POST itself: only a 429 is retried (not accepted).
        client = TwilioClient(ctx, dataclasses.replace(ctx.policy, max_retries=0))
        try:
            resp = await client.request(
                "POST", client.account_path("/Messages"), form=form, accept=HANDLED
            )
        except RateLimitError:
            raise
        except RetryableError as exc:
            if isinstance(exc.__cause__, _NOTHING_SENT) or exc.status in _NOT_QUEUED:
                raise
            return ActionResult.fail(
                "MAYBE_SENT",
                f"{exc.message}; the message may have been sent, so it was not retried "
                "(look it up in the Twilio logs before sending again)",
                {"to": to, "from": form.get("From"), "status": exc.status},
            )
        code = twilio_code(resp.body)
        if resp.status == 400 and code in RECIPIENT_CODES:
            reason = client.error_message(resp.body) or f"{to} {RECIPIENT_CODES[code]}"
            return _invalid(to, reason, code)
        if not resp.ok:
            return client.failure(resp)
        if not isinstance(resp.body, Mapping) or not resp.body.get("sid"):
            return ActionResult.fail("BAD_RESPONSE", "Twilio answered without a message SID")
        return ActionResult.ok(sent_data(resp.body), port="sent")

    async def reconcile(
        self, data: dict[str, Any], ctx: ActionContext, since: datetime
    ) -> ActionResult | None:
        """The ``sent`` result of an attempt begun at ``since`` if Twilio has its message.

        Looks for a message to the same number from the same sender with the same body,
        created since ``since`` (less a small clock-skew allowance), in any status:
        a message still ``queued`` behind its sender's throughput counts (see
        :mod:`calflow.apps.twilio.lookup`). ``None``: the attempt never reached Twilio.
        """
        region = data.get("default_phone_region") or ctx.value("default_phone_region")
        try:
            to = to_e164(data["to"], str(region) if region else None, "to")
            sender = _sender(data, ctx)
        except (ValidationError, ConfigError):
            return None  # refused before sending
        found = await find_message(TwilioClient(ctx), to, data["body"], sender, since)
        if found is None:
            return None
        return ActionResult.ok({**sent_data(found), "reconciled": True}, port="sent")
