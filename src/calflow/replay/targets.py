"""Where replayed items go: a webhook URL, calflow's own event bus, or nowhere (dry run).

Deliveries to a URL are signed in the provider's own scheme (by the adapter), or with
``signature="standard"`` as Standard Webhooks: the target drops the provider's signature
header and adds ``webhook-id`` (the item's deterministic id, so a receiver drops a second
replay), ``webhook-timestamp`` and ``webhook-signature``, made afresh for every attempt so
a retry after a long ``Retry-After`` is still within the receiver's tolerance.

A target answers each item with an :class:`~calflow.replay.model.Outcome`. The webhook
target retries 429 (honouring ``Retry-After`` and ``X-RateLimit-Reset*``), 408, 5xx,
timeouts and connection errors with backoff, up to ``max_attempts``; any other 4xx
fails the item at once with the status and the receiver's answer; a redirect fails
it too (redirects are never followed). ``calflow`` publishes through the one door of
the event bus: the seam is :data:`Intake`, which the event bus provides.
"""

from __future__ import annotations

import asyncio
import importlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import httpx

from calflow.errors import ConfigError, FieldError, ValidationError
from calflow.flowapp.http import retry_after_seconds
from calflow.net.clients import outbound_client
from calflow.net.guard import refused_in
from calflow.net.poster import Poster, PostResponse
from calflow.netpolicy import Allowance, operator_allowance
from calflow.replay.adapter import ProviderAdapter
from calflow.replay.model import FAILED, SENT, SKIPPED, Outcome, ReplayItem
from calflow.replay.pacing import Pacer
from calflow.server.signatures import (
    PROVIDER_HEADERS,
    SCHEMES,
    STANDARD,
    StandardSecretError,
    standard_headers,
    standard_webhook,
)

if TYPE_CHECKING:
    from calflow.integrations import IntegrationStore

UNREACHABLE = "target unreachable"


@dataclass(frozen=True)
class Delivery:
    """One replayed item handed to calflow's event bus, as a live webhook would arrive."""

    provider: str
    integration_id: str
    item_id: str
    kind: str
    object_id: str
    body: bytes
    headers: dict[str, str]
    run_workflows: bool = False
    """Start workflows as for a live delivery; else the event is ``history`` (an old
    change starts none)."""


IntakeResult = Literal["accepted", "duplicate"]
Intake = Callable[[Delivery], Awaitable[IntakeResult]]
INTAKE_HOOK = "calflow.events.intake:make_replay_intake"
"""Where the event bus provides its intake factory (module:attribute, called with the store)."""


def load_intake(store: IntegrationStore) -> Intake:
    """The event bus's intake for ``store``'s workspace."""
    module_name, _, attr = INTAKE_HOOK.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"--into calflow needs calflow's event bus, which failed to load ({exc}); "
            "replay to a webhook URL with --to instead"
        ) from None
    factory: Callable[[IntegrationStore], Intake] = getattr(module, attr)
    return factory(store)


HeaderSigner = Callable[[ReplayItem, dict[str, str]], dict[str, str]]
"""The headers to send an item with, signed, given the adapter's headers."""


def signature_problems(signature: str, into: str | None) -> list[FieldError]:
    """What is wrong with a replay's ``signature`` choice (empty when nothing)."""
    if signature not in SCHEMES:
        return [FieldError("signature", f"must be one of: {', '.join(SCHEMES)}", "enum")]
    if signature == STANDARD and into:
        return [FieldError("signature", "signs deliveries to a URL (--to), not --into", "scope")]
    return []


def check_standard_secret(secret: str | None) -> str:
    """``secret`` if it can sign Standard Webhooks; ``ValidationError`` on ``secret``."""
    if not secret:
        raise ValidationError(
            "Standard Webhooks signing needs a secret",
            [FieldError("secret", "give the receiver's whsec_<base64> secret", "required")],
        )
    try:
        standard_webhook(secret)
    except StandardSecretError as exc:
        raise ValidationError(
            "invalid signing secret", [FieldError("secret", exc.message, "format")]
        ) from None
    return secret


def standard_signer(secret: str | None) -> HeaderSigner:
    """Signs each delivery as Standard Webhooks (instead of the provider's scheme)."""
    key = check_standard_secret(secret)

    def sign(item: ReplayItem, headers: dict[str, str]) -> dict[str, str]:
        out = {k: v for k, v in headers.items() if k.lower() not in PROVIDER_HEADERS}
        out.update(standard_headers(key, item.id, item.body))
        return out

    return sign


class Target(Protocol):
    """Sends one item; never raises for a per-item failure (it returns an outcome)."""

    name: str

    async def send(self, item: ReplayItem, headers: dict[str, str]) -> Outcome: ...

    async def aclose(self) -> None: ...


def _outcome(
    item: ReplayItem,
    status: Literal["sent", "skipped", "failed"],
    reason: str = "",
    http_status: int | None = None,
    attempts: int = 0,
    latency: float = 0.0,
) -> Outcome:
    return Outcome(
        item_id=item.id,
        object_id=item.object_id,
        kind=item.kind,
        status=status,
        reason=reason,
        http_status=http_status,
        attempts=attempts,
        latency_s=latency,
        page=item.page,
    )


def _snippet(response: httpx.Response | PostResponse) -> str:
    text = " ".join(response.text.split())
    return text[:200] + ("…" if len(text) > 200 else "")


class WebhookTarget:
    """POSTs each item's body to ``url`` with the provider's headers."""

    def __init__(
        self,
        url: str,
        pacer: Pacer,
        *,
        concurrency: int,
        timeout_s: float,
        max_attempts: int,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sign: HeaderSigner | None = None,
        allowance: Allowance | None = None,
    ) -> None:
        self.url = url
        self._sign = sign
        self.name = url
        self._pacer = pacer
        self._max_attempts = max(1, max_attempts)
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        # A given transport (tests) goes through httpx; otherwise aiohttp, guarded at
        # connect time with ``allowance`` (by default the operator's)
        self._http: httpx.AsyncClient | None = None
        self._fast: Poster | None = None
        allowance = allowance or operator_allowance()
        if transport is not None:
            self._http = outbound_client(allowance, timeout_s=timeout_s, transport=transport)
        else:
            self._fast = Poster(url, max_connections=concurrency, timeout_s=timeout_s,
                                allowance=allowance)  # fmt: skip

    async def _post(self, body: bytes, headers: dict[str, str]) -> httpx.Response | PostResponse:
        if self._fast is not None:
            return await self._fast.post(body, headers)
        assert self._http is not None
        return await self._http.post(self.url, content=body, headers=headers)

    def _backoff(self, attempt: int) -> float:
        cap = min(self._backoff_max_s, self._backoff_base_s * (2 ** (attempt - 1)))
        return float(cap / 2 + random.uniform(0, cap / 2))

    async def send(self, item: ReplayItem, headers: dict[str, str]) -> Outcome:
        started = time.perf_counter()
        reason = ""
        status: int | None = None
        for attempt in range(1, self._max_attempts + 1):
            await self._pacer.acquire()
            wait: float | None = None
            try:
                signed = self._sign(item, headers) if self._sign is not None else headers
                response = await self._post(item.body, signed)
            except httpx.TimeoutException as exc:
                reason = f"target timed out: {type(exc).__name__}"
            except httpx.LocalProtocolError as exc:  # ours to fix: retrying cannot help
                latency = time.perf_counter() - started
                return _outcome(item, FAILED, f"not sent: {exc}", None, attempt, latency)
            except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
                if refused_in(exc) is not None:  # the operator's rule: retrying cannot help
                    latency = time.perf_counter() - started
                    return _outcome(item, FAILED, f"not sent: {exc}", None, attempt, latency)
                reason = f"{UNREACHABLE}: {type(exc).__name__}: {exc}".rstrip(": ")
            else:
                status = response.status_code
                latency = time.perf_counter() - started
                if 200 <= status < 300:
                    return _outcome(item, SENT, "", status, attempt, latency)
                if 300 <= status < 400:
                    where = response.headers.get("location", "?")
                    return _outcome(
                        item,
                        FAILED,
                        f"target redirected: {status} to {where} (not followed)",
                        status,
                        attempt,
                        latency,
                    )
                if status == 429:
                    wait = retry_after_seconds(response.headers)
                    reason = f"target rate limited: {status} {_snippet(response)}".strip()
                    if wait is not None:
                        self._pacer.pause(wait)
                elif status >= 500 or status == 408:
                    reason = f"target error: {status} {_snippet(response)}".strip()
                else:
                    return _outcome(
                        item,
                        FAILED,
                        f"target refused: {status} {_snippet(response)}".strip(),
                        status,
                        attempt,
                        latency,
                    )
            if attempt < self._max_attempts:
                await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
        latency = time.perf_counter() - started
        final = f"{reason} (after {self._max_attempts} attempts)"
        return _outcome(item, FAILED, final, status, self._max_attempts, latency)

    async def aclose(self) -> None:
        if self._fast is not None:
            await self._fast.aclose()
        if self._http is not None:
            await self._http.aclose()


class IntakeTarget:
    """Publishes each item into calflow's event bus through its intake."""

    name = "calflow"

    def __init__(
        self,
        intake: Intake,
        adapter: ProviderAdapter,
        integration_id: str,
        run_workflows: bool = False,
    ) -> None:
        self._intake = intake
        self._adapter = adapter
        self._integration_id = integration_id
        self._run_workflows = run_workflows

    async def send(self, item: ReplayItem, headers: dict[str, str]) -> Outcome:
        started = time.perf_counter()
        delivery = Delivery(
            provider=self._adapter.provider,
            integration_id=self._integration_id,
            item_id=item.id,
            kind=item.kind,
            object_id=item.object_id,
            body=item.body,
            headers=headers,
            run_workflows=self._run_workflows,
        )
        result = await self._intake(delivery)
        latency = time.perf_counter() - started
        if result == "duplicate":
            return _outcome(item, SKIPPED, "duplicate: already in calflow", None, 1, latency)
        return _outcome(item, SENT, "", None, 1, latency)

    async def aclose(self) -> None:
        return None
