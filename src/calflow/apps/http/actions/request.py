"""Request: one HTTP call to any URL; the response status picks the port."""

from __future__ import annotations

import time
from typing import Any

import httpx

from calflow.apps.http.response import body_of, headers_dict, read_capped
from calflow.apps.http.target import request_headers, resolve_url
from calflow.errors import ConfigError, FieldError, RetryableError, ValidationError
from calflow.flowapp import ERROR, SUCCESS, Action, ActionContext, ActionResult, OutputPort
from calflow.net.guard import refused_in

REDIRECT = OutputPort("redirect", "The server answered 3xx (not followed); data has location.")
CLIENT_ERROR = OutputPort("client_error", "The server answered 4xx.")
SERVER_ERROR = OutputPort("server_error", "The server answered 5xx.")
#: Methods a retry cannot make happen twice (RFC 9110 §9.2.2).
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _port(status: int) -> str:
    if 200 <= status < 300:
        return "success"
    if 300 <= status < 400:
        return "redirect"
    return "client_error" if status < 500 else "server_error"


def _content(data: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    if "json" in data and "body" in data:
        raise ValidationError(
            "give either json or body, not both",
            [FieldError("body", "json is given too", "exclusive")],
        )
    if "json" in data:
        return {"json": data["json"]}
    if "body" in data:
        if "content-type" not in {k.lower() for k in headers}:
            headers["Content-Type"] = data["content_type"]
        return {"content": data["body"].encode()}
    return {}


def _timeout(data: dict[str, Any], ctx: ActionContext) -> float:
    try:
        return float(data.get("timeout_s") or ctx.value("timeout_s") or 30)
    except ValueError:
        raise ConfigError("the integration's timeout_s must be a number") from None


class Request(Action):
    key = "Request"
    name = "HTTP request"
    description = (
        "Call any URL (method, headers, query, JSON or raw body, timeout). Redirects are "
        "not followed. The status picks the port: success (2xx), redirect (3xx, with "
        "location), client_error (4xx), server_error (5xx); data has status, headers and "
        "the body (parsed JSON, else text, at most 256 KiB). Transport failures fail: "
        "UNAVAILABLE when nothing was sent or the method is idempotent (retryable), "
        "MAYBE_SENT for a POST or PATCH whose answer was lost (not retried)."
    )
    schema_file = "request.json"
    ports = (SUCCESS, REDIRECT, CLIENT_ERROR, SERVER_ERROR, ERROR)

    async def execute(self, data: dict[str, Any], ctx: ActionContext) -> ActionResult:
        method = data["method"]
        url = await resolve_url(data, ctx)
        headers = request_headers(data, ctx, url)
        content = _content(data, headers)
        started = time.monotonic()
        try:
            async with ctx.http.stream(
                method,
                url,
                headers=headers,
                timeout=httpx.Timeout(_timeout(data, ctx)),
                follow_redirects=False,
                **content,
            ) as response:
                raw, truncated = await read_capped(response)
        except httpx.TransportError as exc:
            return self._transport_failure(exc, method, url)
        out: dict[str, Any] = {
            "status": response.status_code,
            "reason": response.reason_phrase,
            "url": str(url),
            "method": method,
            "headers": headers_dict(response.headers),
            **body_of(response, raw, truncated),
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        }
        port = _port(response.status_code)
        if port == "redirect":
            out["location"] = response.headers.get("location")
        return ActionResult.ok(out, port=port)

    @staticmethod
    def _transport_failure(exc: httpx.TransportError, method: str, url: httpx.URL) -> ActionResult:
        what = f"{method} {url.copy_with(query=None)} failed ({type(exc).__name__}: {exc})"
        refused = refused_in(exc)
        if refused is not None:
            raise ValidationError(f"{method} {url.copy_with(query=None)}: {refused}",
                                  [FieldError("url", str(refused), "url")]) from None  # fmt: skip
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            raise ValidationError(what, [FieldError("url", str(exc), "request")]) from None
        if isinstance(exc, _NOTHING_SENT) or method in IDEMPOTENT:
            raise RetryableError(what) from None
        return ActionResult.fail(
            "MAYBE_SENT",
            f"{what}; the server may have acted on it, so it was not retried",
            {"method": method, "url": str(url)},
        )
