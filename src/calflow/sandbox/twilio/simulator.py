"""The Twilio Messages simulator: API sub-app at ``/twilio`` plus ``/_sandbox/twilio`` controls.

Base URL ``http://HOST:PORT/twilio`` (the client adds ``/2010-04-01``). Credentials are
the configured Account SID and auth token (HTTP Basic); see :mod:`.messages` for the
validation and the magic numbers, :mod:`.callbacks` for delivery progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from calflow.sandbox.config import SandboxRuntime
from calflow.sandbox.twilio import routes
from calflow.sandbox.twilio.callbacks import StatusDispatcher
from calflow.sandbox.twilio.errors import TwilioError, twilio_error_handler, unrouted
from calflow.sandbox.twilio.state import TwilioState

_BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>502</body></html>"
_FAULTS = {
    500: TwilioError(500, 20500, "An internal server error has occurred"),
    503: TwilioError(503, 20503, "Service unavailable"),
}


class TwilioSimulator:
    """In-memory Twilio Messages API (send, fetch, list; account; status callbacks).

    Args:
        runtime: the shared sandbox runtime (faults, latency, clock, config).
        webhook_transport: httpx transport for status callbacks (``None``: real HTTP).
    """

    name = "twilio"

    def __init__(
        self, runtime: SandboxRuntime, *, webhook_transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.state = self._fresh_state()
        self.dispatcher = StatusDispatcher(
            lambda: self.state, runtime.now, self.config.webhook_timeout_s, webhook_transport
        )
        self.api = self._build_api()

    def _fresh_state(self) -> TwilioState:
        return TwilioState(
            self.config.resolved_twilio_account_sid,
            self.config.resolved_twilio_auth_token,
            self.config.random_seed,
            self.runtime.now(),
        )

    def seed(self) -> None:
        """Start with an empty message log."""
        self.state = self._fresh_state()

    def reset(self) -> None:
        self.seed()

    def state_json(self) -> dict[str, Any]:
        """Credentials, every message (oldest first) and every status callback sent."""
        return {
            "account_sid": self.state.account_sid,
            "auth_token": self.state.auth_token,
            "messages": [m.to_json() for m in self.state.messages.values()],
            "callbacks": [asdict(c) for c in self.state.callbacks],
        }

    async def flush(self) -> int:
        """Wait for pending delivery progress and status callbacks."""
        return await self.dispatcher.flush()

    def mount(self, app: FastAPI) -> None:
        """Mount the API at ``/twilio`` and the controls at ``/_sandbox/twilio``."""
        app.mount(f"/{self.name}", self.api)
        app.include_router(self._controls(), prefix=f"/_sandbox/{self.name}")

    def _controls(self) -> APIRouter:
        router = APIRouter()

        @router.get("/messages")
        async def sent(to: str | None = None) -> JSONResponse:
            """The messages sent so far (optionally to one number), oldest first."""
            found = [m.to_json() for m in self.state.messages.values() if to in (None, m.to)]
            return JSONResponse(found)

        @router.post("/flush")
        async def flush() -> JSONResponse:
            return JSONResponse({"flushed": await self.flush()})

        return router

    def _build_api(self) -> FastAPI:
        api = FastAPI(title="Twilio API (sandbox)", docs_url=None, redoc_url=None)
        api.state.twilio = self
        api.add_exception_handler(TwilioError, twilio_error_handler)
        api.add_exception_handler(StarletteHTTPException, unrouted)
        api.include_router(routes.router)
        api.middleware("http")(self._edge)
        return api

    def _fault(self) -> Response | None:
        rt = self.runtime
        if rt.fail_rate <= 0 or rt.fault_rng.random() >= rt.fail_rate:
            return None
        kind = rt.fault_rng.choice((500, 502, 503))
        if kind == 502:
            return HTMLResponse(_BAD_GATEWAY, status_code=502)
        return _FAULTS[kind].response()

    async def _edge(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Latency and injected faults, before any state is touched."""
        if self.runtime.latency_ms > 0:
            await asyncio.sleep(self.runtime.latency_ms / 1000)
        return self._fault() or await call_next(request)
