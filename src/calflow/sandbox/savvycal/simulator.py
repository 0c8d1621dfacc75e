"""The SavvyCal API v1 simulator: state, API sub-app (mounted at ``/savvycal``) and controls."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from calflow.sandbox.config import SandboxRuntime
from calflow.sandbox.savvycal import routes_events, routes_links, routes_webhooks
from calflow.sandbox.savvycal.auth import OAuthClient, RateLimiter, TokenStore, bearer_token
from calflow.sandbox.savvycal.control import control_router
from calflow.sandbox.savvycal.errors import (
    NOT_FOUND,
    SavvycalError,
    message_error,
    savvycal_error_handler,
)
from calflow.sandbox.savvycal.seed import seed_events, seed_static
from calflow.sandbox.savvycal.serialize import event_json, link_json, person_json, webhook_json
from calflow.sandbox.savvycal.service import EventService
from calflow.sandbox.savvycal.state import SavvycalState
from calflow.sandbox.savvycal.webhooks import WebhookDispatcher

#: How many events ``state_json`` lists in full (the rest are counted).
STATE_EVENTS_SHOWN = 200
_BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>502</body></html>"


async def _unrouted(request: Request, exc: Exception) -> Response:
    """Unknown route: SavvyCal's ``{"errors": [{"message": "Not found"}]}`` 404."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 404
    return JSONResponse({"errors": [{"message": NOT_FOUND}]}, status_code=status)


class SavvycalSimulator:
    """Faithful in-memory SavvyCal API v1 (links, events, webhooks, personal and OAuth auth).

    Args:
        runtime: the shared sandbox runtime (faults, latency, clock, config).
        webhook_transport: httpx transport for webhook deliveries (``None``: real HTTP).
        webhook_attempts: delivery attempts per webhook before giving up.
        webhook_backoff_s: wait before the first retry (doubles on each further retry).
    """

    name = "savvycal"

    def __init__(
        self,
        runtime: SandboxRuntime,
        *,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        webhook_attempts: int = 3,
        webhook_backoff_s: float = 0.5,
    ) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.state = SavvycalState(self.config.random_seed)
        self.dispatcher = WebhookDispatcher(
            lambda: self.state,
            runtime.now,
            self.config.webhook_timeout_s,
            webhook_transport,
            attempts=webhook_attempts,
            backoff_s=webhook_backoff_s,
        )
        self.service = EventService(lambda: self.state, runtime.now, self.dispatcher)
        self.limiter = RateLimiter(self.config.savvycal_rate_limit_per_min)
        self.tokens = self._tokens()
        self.seed()
        self.api = self._build_api()

    @property
    def token(self) -> str:
        """The accepted personal token (``pt_secret_…``)."""
        return self.config.resolved_savvycal_token

    def _tokens(self) -> TokenStore:
        rng = SavvycalState(self.config.random_seed + 7)
        client = OAuthClient(f"sandbox_{rng.new_hex(8)}", f"secret_{rng.new_hex(20)}")
        return TokenStore(self.token, client, f"rt_{rng.new_hex(20)}", self.runtime.now)

    def seed(self) -> None:
        """Rebuild the state from the seed (account, links and the configured events)."""
        now = self.runtime.now()
        self.state = SavvycalState(self.config.random_seed)
        seed_static(self.state, now)
        seed_events(self.state, self.config.resolved_savvycal_seed, now)

    def reset(self) -> None:
        """Reseed, restore the seeded OAuth tokens and forget rate-limit windows."""
        self.seed()
        self.tokens = self._tokens()
        self.limiter.reset()

    def state_json(self) -> dict[str, Any]:
        """Links, webhooks, deliveries, OAuth client, and the first events (plus counts)."""
        st = self.state
        shown = [event_json(st, st.by_seq[seq]) for _, seq in st.order[:STATE_EVENTS_SHOWN]]
        return {
            "user": person_json(st.me),
            "people": [person_json(p) for p in st.people.values()],
            "token": self.token,
            "oauth": {
                "client_id": self.tokens.client.client_id,
                "client_secret": self.tokens.client.client_secret,
                "refresh_token": self.tokens.seed_refresh_token,
            },
            "links": [link_json(link) for link in st.links.values()],
            "event_count": len(st.events),
            "event_states": dict(Counter(e.state for e in st.events.values())),
            "events": shown,
            "webhooks": [webhook_json(h) for h in st.webhooks.values()],
            "deliveries": [asdict(d) for d in st.deliveries],
        }

    async def flush(self) -> int:
        """Wait for pending webhook deliveries."""
        return await self.dispatcher.flush()

    def mount(self, app: FastAPI) -> None:
        """Mount the API at ``/savvycal`` and the controls at ``/_sandbox/savvycal``."""
        app.mount(f"/{self.name}", self.api)
        app.include_router(control_router(self), prefix=f"/_sandbox/{self.name}")
        app.add_exception_handler(SavvycalError, savvycal_error_handler)

    def _build_api(self) -> FastAPI:
        api = FastAPI(title="SavvyCal API v1 (sandbox)", docs_url=None, redoc_url=None)
        api.state.savvycal = self
        api.add_exception_handler(SavvycalError, savvycal_error_handler)
        api.add_exception_handler(StarletteHTTPException, _unrouted)
        for module in (routes_events, routes_links, routes_webhooks):
            api.include_router(module.router)
        api.middleware("http")(self._edge)
        return api

    def _fault(self) -> Response | None:
        rt = self.runtime
        if rt.fail_rate <= 0 or rt.fault_rng.random() >= rt.fail_rate:
            return None
        kind = rt.fault_rng.choice((500, 502, 503))
        if kind == 502:
            return HTMLResponse(_BAD_GATEWAY, status_code=502)
        exc = message_error(kind, "Internal server error" if kind == 500 else "Service unavailable")
        return JSONResponse(exc.body, status_code=kind)

    async def _edge(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Latency, injected faults and the optional per-token rate limit."""
        if self.runtime.latency_ms > 0:
            await asyncio.sleep(self.runtime.latency_ms / 1000)
        fault = self._fault()
        if fault is not None:
            return fault
        if self.limiter.limit > 0:
            key = bearer_token(request) or (request.client.host if request.client else "anon")
            wait = self.limiter.hit(key)
            if wait is not None:
                exc = message_error(429, "Too many requests", **{"Retry-After": str(wait)})
                return JSONResponse(exc.body, status_code=429, headers=exc.headers)
        return await call_next(request)
