"""The Cal.com API v2 simulator: state, API sub-app (mounted at ``/calcom``) and controls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from calflow.sandbox.calcom import (
    routes_bookings,
    routes_event_types,
    routes_slots,
    routes_webhooks,
)
from calflow.sandbox.calcom.auth import RateLimiter, bearer_token, throttled
from calflow.sandbox.calcom.bookings import BookingService
from calflow.sandbox.calcom.control import control_router
from calflow.sandbox.calcom.envelope import (
    CalcomError,
    calcom_error_handler,
    error_body,
    route_not_found,
)
from calflow.sandbox.calcom.seed import seed_bookings, seed_static
from calflow.sandbox.calcom.state import CalcomState
from calflow.sandbox.calcom.webhooks import WebhookDispatcher
from calflow.sandbox.config import SandboxRuntime

_BAD_GATEWAY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_UNAVAILABLE = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


async def _unrouted(request: Request, exc: Exception) -> Response:
    """Unknown route or method: NestJS's ``Cannot METHOD path`` 404 in the envelope."""
    return await calcom_error_handler(request, route_not_found(request))


class CalcomSimulator:
    """Faithful in-memory Cal.com API v2 (see the package docstring for the scope)."""

    name = "calcom"

    def __init__(
        self, runtime: SandboxRuntime, *, webhook_transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.state = CalcomState(self.config.random_seed)
        self.dispatcher = WebhookDispatcher(
            lambda: self.state,
            runtime.now,
            self.config.webhook_timeout_s,
            webhook_transport,
            meeting_shape=self.config.calcom_meeting_payload,
        )
        self.service = BookingService(lambda: self.state, runtime.now, self.dispatcher)
        self.limiter = RateLimiter(self.config.rate_limit_per_min, self.config.rate_limit_block_s)
        self.guests_limiter = RateLimiter(5, 60)
        self.seed()
        self.api = self._build_api()

    @property
    def api_key(self) -> str:
        """The accepted API key."""
        return self.config.resolved_api_key

    def seed(self) -> None:
        """Rebuild the state from the seed (static data plus ``config.seed`` bookings)."""
        self.state = CalcomState(self.config.random_seed)
        seed_static(self.state)
        seed_bookings(self.state, self.config.seed, self.runtime.now())

    def reset(self) -> None:
        """Reseed and forget rate-limit windows."""
        self.seed()
        self.limiter.reset()
        self.guests_limiter.reset()
        self.dispatcher.meeting_shape = self.config.calcom_meeting_payload

    def state_json(self) -> dict[str, Any]:
        """The whole state as JSON-ready data."""
        return self.state.to_json()

    async def flush(self) -> int:
        """Wait for pending webhook deliveries."""
        return await self.dispatcher.flush()

    def mount(self, app: FastAPI) -> None:
        """Mount the API at ``/calcom`` and the controls at ``/_sandbox/calcom``."""
        app.mount(f"/{self.name}", self.api)
        app.include_router(control_router(self), prefix=f"/_sandbox/{self.name}")
        app.add_exception_handler(CalcomError, calcom_error_handler)

    def _build_api(self) -> FastAPI:
        api = FastAPI(title="Cal.com API v2 (sandbox)", docs_url=None, redoc_url=None)
        api.state.calcom = self
        api.add_exception_handler(CalcomError, calcom_error_handler)
        api.add_exception_handler(StarletteHTTPException, _unrouted)
        for module in (routes_bookings, routes_slots, routes_event_types, routes_webhooks):
            api.include_router(module.router)
        api.middleware("http")(self._edge)
        return api

    def _fault(self, request: Request) -> Response | None:
        rt = self.runtime
        if rt.fail_rate <= 0 or rt.fault_rng.random() >= rt.fail_rate:
            return None
        kind = rt.fault_rng.choice((500, 502, 503))
        if kind == 502:
            return HTMLResponse(_BAD_GATEWAY, status_code=502)
        if kind == 503:
            return HTMLResponse(_UNAVAILABLE, status_code=503)
        exc = CalcomError(500, "Internal server error")
        return JSONResponse(error_body(request, exc), status_code=500)

    async def _edge(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Latency, injected faults and per-key throttling, before any handler runs."""
        if self.runtime.latency_ms > 0:
            await asyncio.sleep(self.runtime.latency_ms / 1000)
        fault = self._fault(request)
        if fault is not None:
            return fault
        if self.limiter.limit <= 0:
            return await call_next(request)
        key = bearer_token(request) or (request.client.host if request.client else "anonymous")
        decision = self.limiter.hit(key)
        if not decision.allowed:
            exc = throttled(decision)
            return JSONResponse(error_body(request, exc), status_code=429, headers=exc.headers)
        response = await call_next(request)
        response.headers.update(decision.headers())
        return response
