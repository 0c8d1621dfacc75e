"""The Twilio Messages simulator: API sub-app at ``/twilio`` plus ``/_sandbox/twilio`` controls.

Base URL ``http://HOST:PORT/twilio`` (the client adds ``/2010-04-01``). Credentials are
the configured Account SID and auth token (HTTP Basic); see :mod:`.messages` for the
validation and the magic numbers, :mod:`.queue` for the senders' throughput and the
status progression, :mod:`.listing` for the list's filters and paging,
:mod:`.callbacks` for status callbacks.

Controls (under ``/_sandbox/twilio``):

* ``GET /messages?to=`` every message (to one number), oldest first, statuses as of now
* ``POST /options {mps?}`` the senders' throughput for the messages created from now on
  (segments per second per sender, 0: no limit); answers ``{mps}``
* ``POST /flush`` apply the status changes due by the sandbox clock and wait for their
  callbacks (messages still waiting their turn stay queued)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from calflow.sandbox.config import SandboxRuntime
from calflow.sandbox.twilio import routes
from calflow.sandbox.twilio.callbacks import StatusDispatcher
from calflow.sandbox.twilio.errors import TwilioError, twilio_error_handler, unrouted
from calflow.sandbox.twilio.queue import SendQueue
from calflow.sandbox.twilio.state import Message, TwilioState

_BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>502</body></html>"
_WAKE_S = 1.0
"""Longest wait between two looks at the queue (the sandbox clock may have been moved)."""
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
        self.queue = SendQueue(self.config.twilio_mps)
        self.dispatcher = StatusDispatcher(
            lambda: self.state, self.config.webhook_timeout_s, webhook_transport
        )
        self._timer: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None
        self.api = self._build_api()

    def _fresh_state(self) -> TwilioState:
        return TwilioState(
            self.config.resolved_twilio_account_sid,
            self.config.resolved_twilio_auth_token,
            self.config.random_seed,
            self.runtime.now(),
        )

    def seed(self) -> None:
        """Start with an empty message log and queue, at the configured throughput."""
        self.state = self._fresh_state()
        self.queue = SendQueue(self.config.twilio_mps)

    def reset(self) -> None:
        self.seed()

    def admit(self, message: Message) -> None:
        """Queue a new message behind its sender's earlier ones (on the event loop)."""
        self.dispatcher.report(self.queue.admit(message, self.runtime.now()))
        self._arm(asyncio.get_running_loop())

    def tick(self) -> None:
        """Apply the status changes due by the sandbox clock and queue their callbacks.

        Off the event loop (a test reading the state directly) it does nothing: the
        callbacks could not be sent, so the changes wait for the next request.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        changes = self.queue.advance(self.runtime.now())
        if changes:
            self.dispatcher.report(changes)
        self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Look at the queue again when its next change is due, or ``_WAKE_S`` from now if
        that is sooner: the sandbox clock may be moved forward meanwhile."""
        due = self.queue.next_due()
        timer = self._timer
        if due is None or (timer is not None and timer[0] is loop and not timer[1].cancelled()):
            return
        wait = min(max((due - self.runtime.now()).total_seconds(), 0.0), _WAKE_S)
        self._timer = (loop, loop.call_later(wait, self._wake))

    def _wake(self) -> None:
        self._timer = None
        self.tick()

    def state_json(self) -> dict[str, Any]:
        """Credentials, the throughput, every message (oldest first, statuses as of now)
        and every status callback sent."""
        self.tick()
        return {
            "account_sid": self.state.account_sid,
            "auth_token": self.state.auth_token,
            "mps": self.queue.mps,
            "messages": [m.to_json() for m in self.state.messages.values()],
            "callbacks": [asdict(c) for c in self.state.callbacks],
        }

    async def flush(self) -> int:
        """Apply the changes due by now and wait for their status callbacks (a message
        still waiting its turn is not waited for)."""
        self.tick()
        return await self.dispatcher.flush()

    def mount(self, app: FastAPI) -> None:
        """Mount the API at ``/twilio`` and the controls at ``/_sandbox/twilio``."""
        app.mount(f"/{self.name}", self.api)
        app.include_router(self._controls(), prefix=f"/_sandbox/{self.name}")

    def _controls(self) -> APIRouter:
        router = APIRouter()

        @router.get("/messages")
        async def sent(to: str | None = None) -> JSONResponse:
            """The messages created so far (optionally to one number), oldest first."""
            self.tick()
            found = [m.to_json() for m in self.state.messages.values() if to in (None, m.to)]
            return JSONResponse(found)

        @router.post("/options")
        async def options(body: Annotated[dict[str, Any] | None, Body()] = None) -> JSONResponse:
            """Set ``{mps}``: segments per second per sender for new messages (0: no limit)."""
            mps = (body or {}).get("mps", self.queue.mps)
            if isinstance(mps, bool) or not isinstance(mps, int | float) or not 0 <= mps < 1e6:
                raise HTTPException(400, "mps must be a number from 0 (no limit) below 1000000")
            self.queue.mps = float(mps)
            return JSONResponse({"mps": self.queue.mps})

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
        """Injected faults before any state is touched; latency after the answer is
        ready, as from a Twilio that has already taken the message: a client that gives
        up or dies while it waits has sent its SMS all the same."""
        fault = self._fault()
        if fault is not None:
            return fault
        response = await call_next(request)
        if self.runtime.latency_ms > 0:
            await asyncio.sleep(self.runtime.latency_ms / 1000)
        return response
