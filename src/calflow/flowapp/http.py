"""The one place that turns HTTP outcomes into results or errors.

- 2xx: the parsed JSON body (an empty body is ``None``; a non-JSON body is a
  ``BadResponseError``). A body that is not JSON (an HTML error page) is described by its
  status and content type only, never echoed: the page may come from a host the
  provider URL should not have reached.
- 429: wait for ``Retry-After`` (seconds or HTTP date), else an ``X-RateLimit-Reset*``
  header (seconds remaining, or an epoch), else ``default_rate_wait_s``; retry while the
  total wait stays within ``max_total_wait_s``, then ``RateLimitError``.
- 5xx, timeouts, connection errors: up to ``max_retries`` retries with exponential backoff
  and jitter, then ``RetryableError``.
- 401/403: ``AuthError`` with the provider's message.
- other 4xx: ``FatalProviderError`` with the provider's message.
Statuses listed in ``accept`` are returned to the caller instead, so an action can map,
say, a 404 to its ``not_found`` port.

A request that is not idempotent (a booking POST) may have taken effect even though its
answer was a 5xx or a timeout. Before such a request is sent again, ``verify`` (when
given) is awaited: it looks at the provider's state and returns the response to use if
the first attempt did take effect, so a retry never makes a second booking. Connection
errors (nothing was sent) and 429 are retried without asking.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpx

from calflow.errors import (
    AuthError,
    ConfigError,
    FatalProviderError,
    RateLimitError,
    RetryableError,
)
from calflow.net.guard import refused_in

Sleep = Callable[[float], Awaitable[None]]
Verify = Callable[[], Awaitable["ProviderResponse | None"]]


class BadResponseError(FatalProviderError):
    """The provider answered something that is not the JSON it documents."""

    code = "BAD_RESPONSE"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying; the defaults suit interactive calls."""

    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_total_wait_s: float = 60.0
    default_rate_wait_s: float = 5.0
    max_rate_retries: int = 10

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random."""
        cap = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return float(cap / 2 + random.uniform(0, cap / 2))


@dataclass(frozen=True)
class ProviderResponse:
    """A response the caller accepted: status, parsed body, headers."""

    status: int
    body: Any
    headers: httpx.Headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` or ``X-RateLimit-Reset*`` headers, if any."""
    now = time.time() if now is None else now
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):  # neither seconds nor an HTTP date: ignore it
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:  # "-0000" means UTC with no stated offset
                parsed = parsed.replace(tzinfo=UTC)
            return float(max(0.0, parsed.timestamp() - now))
    for name, raw in headers.items():
        if name.lower().startswith("x-ratelimit-reset"):
            try:
                num = float(raw)
            except ValueError:
                continue
            # An epoch (seconds or milliseconds) rather than a count of seconds.
            if num > 1e12:
                num = num / 1000 - now
            elif num > 1e9:
                num = num - now
            return max(0.0, num)
    return None


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip() or "no content type"


def describe_non_json(response: httpx.Response) -> str:
    """A body that is not JSON (an HTML error page, say), by status and content type only:
    none of its text is repeated."""
    reason = f"{response.status_code} {response.reason_phrase}".strip()
    size = len(response.content)
    return f"answered {reason} with {_content_type(response)} instead of JSON ({size} bytes)"


def parse_body(response: httpx.Response) -> Any:
    """The JSON body, ``None`` for an empty one; raise ``ValueError`` for anything else."""
    if not response.content.strip():
        return None
    return json.loads(response.content)


def _error_kind(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status >= 500 or status == 408:
        return "server"
    if status in (401, 403):
        return "auth"
    return "client"


def _count_error(provider: str, kind: str) -> None:
    """Count one failed attempt (``calflow_outbound_http_errors_total``)."""
    from calflow.metrics import OUTBOUND_ERRORS  # loaded on the first failure only

    OUTBOUND_ERRORS.labels(provider, kind).inc()


class ProviderClient:
    """Base of every app's HTTP client: base URL, auth headers, retries, error mapping."""

    provider_name = "provider"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    def error_message(self, body: Any) -> str | None:
        """The provider's own message in an error body; apps override for their shape."""
        if isinstance(body, Mapping):
            for key in ("message", "error", "detail"):
                if isinstance(body.get(key), str):
                    return str(body[key])
        return None

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
        verify: Verify | None = None,
    ) -> ProviderResponse:
        """Send one request with the retry policy; see the module docstring for the rules."""
        merged = {**self.headers, **(headers or {})}
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        rate_retries = 0
        waited = 0.0
        while True:
            try:
                response = await self.http.request(
                    method,
                    self.url(path),
                    params=clean_params or None,
                    json=json_body,
                    data=form,
                    headers=merged,
                )
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                refused = refused_in(exc)
                if refused is not None:  # the operator's rule, not an outage: never retried
                    raise ConfigError(f"{self.provider_name}: {refused}") from None
                timed_out = isinstance(exc, httpx.TimeoutException)
                _count_error(self.provider_name, "timeout" if timed_out else "network")
                kind = "timed out" if timed_out else "is unreachable"
                if attempt >= self.policy.max_retries:
                    raise RetryableError(
                        f"{self.provider_name} {kind} ({type(exc).__name__}) after "
                        f"{attempt + 1} attempts"
                    ) from exc
                delay = self.policy.backoff(attempt)
                attempt += 1
                waited += delay
                await self._sleep(delay)
                if verify is not None and not isinstance(exc, httpx.ConnectError):
                    found = await verify()
                    if found is not None:
                        return found
                continue
            outcome = self._classify(response, accept)
            if isinstance(outcome, ProviderResponse):
                return outcome
            _count_error(self.provider_name, _error_kind(response.status_code))
            if isinstance(outcome, RateLimitError):
                wait = outcome.retry_after
                if wait is None:
                    wait = self.policy.default_rate_wait_s
                rate_retries += 1
                if (
                    waited + wait > self.policy.max_total_wait_s
                    or rate_retries > self.policy.max_rate_retries
                ):
                    raise outcome
                waited += wait
                await self._sleep(wait)
                continue
            if isinstance(outcome, RetryableError) and attempt < self.policy.max_retries:
                delay = self.policy.backoff(attempt)
                attempt += 1
                waited += delay
                await self._sleep(delay)
                if verify is not None:
                    found = await verify()
                    if found is not None:
                        return found
                continue
            raise outcome

    def _classify(
        self, response: httpx.Response, accept: Collection[int]
    ) -> ProviderResponse | Exception:
        status = response.status_code
        try:
            body = parse_body(response)
        except ValueError:
            if 200 <= status < 300 or status in accept:
                return BadResponseError(
                    f"{self.provider_name} {describe_non_json(response)}", status, None
                )
            body = None
            message = describe_non_json(response)
        else:
            message = self.error_message(body) or f"answered {status} {response.reason_phrase}"
        if 200 <= status < 300 or status in accept:
            return ProviderResponse(status, body, response.headers)
        text = f"{self.provider_name}: {message}"
        if status == 429:
            return RateLimitError(
                f"{self.provider_name} rate limit reached: {message}",
                retry_after=retry_after_seconds(response.headers),
                status=status,
            )
        if status >= 500 or status == 408:
            return RetryableError(text, retry_after=None, status=status)
        if status in (401, 403):
            return AuthError(text, status=status)
        return FatalProviderError(text, status=status, body=body)
