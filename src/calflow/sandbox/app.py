"""The root sandbox ASGI app: simulators mounted under ``/<name>`` plus ``/_sandbox`` controls.

A simulator is any object satisfying :class:`Simulator`; it mounts its own API and
control routes. Cal.com is mounted at ``/calcom`` (client base URL
``http://HOST:PORT/calcom``), SavvyCal at ``/savvycal`` (base URL
``http://HOST:PORT/savvycal/v1``) and Twilio at ``/twilio`` (base URL
``http://HOST:PORT/twilio``); other simulators plug in the same way. The SMTP sink
records mail (state under ``smtp``); it listens on ``config.smtp_port`` while the app's
lifespan runs (``uvicorn`` runs it; an ASGI test transport does not).

Shared controls:

* ``GET /_sandbox/state`` → ``{"<name>": simulator state, ...}`` (``?flush=true`` waits
  for pending webhook deliveries first)
* ``POST /_sandbox/faults {fail_rate?, latency_ms?, twilio_slow_s?}``
* ``POST /_sandbox/clock {offset_s}`` shifts the sandbox's "now"
* ``POST /_sandbox/flush`` waits for pending webhook deliveries of every simulator
* ``POST /_sandbox/reset`` reseeds every simulator and restores faults and clock
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

import httpx
from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import JSONResponse

from calflow.sandbox.calcom import CalcomSimulator
from calflow.sandbox.config import SandboxConfig, SandboxRuntime
from calflow.sandbox.savvycal import SavvycalSimulator
from calflow.sandbox.smtp_sink import SmtpSink
from calflow.sandbox.twilio import TwilioSimulator


class Simulator(Protocol):
    """What the root app needs from a provider simulator."""

    name: str

    def mount(self, app: FastAPI) -> None:
        """Mount the provider API at ``/<name>`` and controls at ``/_sandbox/<name>``."""

    def state_json(self) -> dict[str, Any]:
        """The simulator's whole state, JSON-ready."""

    def seed(self) -> None:
        """(Re)build the seeded state."""

    def reset(self) -> None:
        """Return to the freshly seeded state."""

    async def flush(self) -> int:
        """Wait for pending outbound deliveries; return how many were awaited."""


SimulatorFactory = Callable[[SandboxRuntime], Simulator]
_S = TypeVar("_S")


@dataclass
class SandboxHandle:
    """Stored on ``app.state.sandbox``: the runtime and the simulators by name."""

    runtime: SandboxRuntime
    simulators: dict[str, Simulator]

    def _get(self, name: str, kind: type[_S]) -> _S:
        sim = self.simulators[name]
        assert isinstance(sim, kind)
        return sim

    @property
    def calcom(self) -> CalcomSimulator:
        """The Cal.com simulator."""
        return self._get("calcom", CalcomSimulator)

    @property
    def savvycal(self) -> SavvycalSimulator:
        """The SavvyCal simulator."""
        return self._get("savvycal", SavvycalSimulator)

    @property
    def twilio(self) -> TwilioSimulator:
        """The Twilio simulator."""
        return self._get("twilio", TwilioSimulator)

    @property
    def smtp(self) -> SmtpSink:
        """The SMTP sink."""
        return self._get("smtp", SmtpSink)


def create_sandbox_app(
    config: SandboxConfig | None = None,
    *,
    simulators: Sequence[SimulatorFactory] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the sandbox root app.

    Args:
        config: behaviour of the sandbox (defaults to ``SandboxConfig()``).
        simulators: extra simulator factories mounted after Cal.com and SavvyCal.
        webhook_transport: httpx transport for webhook deliveries (tests use
            ``httpx.MockTransport``); ``None`` sends real HTTP requests.
    """
    config = config or SandboxConfig()
    runtime = SandboxRuntime.from_config(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sink = handle.smtp
        if config.smtp_port is not None:
            await sink.start(config.smtp_host, config.smtp_port)
        try:
            yield
        finally:
            await sink.stop()

    app = FastAPI(title="calflow sandbox", docs_url=None, redoc_url=None, lifespan=lifespan)
    factories: list[SimulatorFactory] = [
        lambda rt: CalcomSimulator(rt, webhook_transport=webhook_transport),
        lambda rt: SavvycalSimulator(rt, webhook_transport=webhook_transport),
        lambda rt: TwilioSimulator(rt, webhook_transport=webhook_transport),
        lambda rt: SmtpSink(config.smtp_username, config.smtp_password),
        *(simulators or ()),
    ]
    sims: dict[str, Simulator] = {}
    for factory in factories:
        sim = factory(runtime)
        sim.mount(app)
        sims[sim.name] = sim
    handle = SandboxHandle(runtime, sims)
    app.state.sandbox = handle

    @app.get("/_sandbox/state")
    async def state(flush: bool = False) -> JSONResponse:
        if flush:
            for sim in sims.values():
                await sim.flush()
        return JSONResponse({name: sim.state_json() for name, sim in sims.items()})

    @app.post("/_sandbox/faults")
    async def faults(body: Annotated[dict[str, Any] | None, Body()] = None) -> JSONResponse:
        body = body or {}
        fail_rate = body.get("fail_rate", runtime.fail_rate)
        latency_ms = body.get("latency_ms", runtime.latency_ms)
        if not isinstance(fail_rate, int | float) or not 0 <= fail_rate <= 1:
            raise HTTPException(400, "fail_rate must be a number in [0, 1]")
        if not isinstance(latency_ms, int | float) or latency_ms < 0:
            raise HTTPException(400, "latency_ms must be a non-negative number")
        slow_s = body.get("twilio_slow_s", runtime.twilio_slow_s)
        if not isinstance(slow_s, int | float) or isinstance(slow_s, bool) or slow_s < 0:
            raise HTTPException(400, "twilio_slow_s must be a non-negative number")
        runtime.fail_rate, runtime.latency_ms = float(fail_rate), float(latency_ms)
        runtime.twilio_slow_s = float(slow_s)
        return JSONResponse({"fail_rate": runtime.fail_rate, "latency_ms": runtime.latency_ms,
                             "twilio_slow_s": runtime.twilio_slow_s})  # fmt: skip

    @app.post("/_sandbox/clock")
    async def clock(body: Annotated[dict[str, Any] | None, Body()] = None) -> JSONResponse:
        body = body or {}
        offset = body.get("offset_s")
        if not isinstance(offset, int | float) or isinstance(offset, bool):
            raise HTTPException(400, "offset_s must be a number")
        runtime.clock_offset_s = float(offset)
        return JSONResponse({"offset_s": runtime.clock_offset_s, "now": runtime.now().isoformat()})

    @app.post("/_sandbox/flush")
    async def flush_all() -> JSONResponse:
        return JSONResponse({name: await sim.flush() for name, sim in sims.items()})

    @app.post("/_sandbox/reset")
    async def reset() -> JSONResponse:
        runtime.reset()
        for sim in sims.values():
            sim.reset()
        return JSONResponse({"reset": True})

    return app
