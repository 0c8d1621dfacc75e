"""Everything the demo runs, in this process: the sandbox, the receiver and the engine.

The sandbox (Cal.com, SavvyCal, Twilio and the SMTP sink) and calflow's webhook
receiver each run under uvicorn on a free local port, as tasks of the running event
loop; the workflow engine (DBOS and the dispatcher) runs beside them, exactly as in
``calflow serve``. :func:`running_stack` starts them in that order and stops them in
the reverse one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn

from calflow.integrations import IntegrationStore
from calflow.sandbox import SandboxConfig
from calflow.sandbox.app import SandboxHandle, create_sandbox_app
from calflow.server.app import create_app
from calflow.settings import Settings
from calflow.workflows.engine import WorkflowEngine

HOST = "127.0.0.1"


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves Ctrl-C to asyncio: several of them share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Stack:
    """What is running, and where."""

    settings: Settings
    store: IntegrationStore
    sandbox_config: SandboxConfig
    sandbox: SandboxHandle
    sandbox_url: str
    receiver_url: str
    engine: WorkflowEngine

    @property
    def calcom_url(self) -> str:
        return f"{self.sandbox_url}/calcom"

    @property
    def twilio_url(self) -> str:
        return f"{self.sandbox_url}/twilio"

    @property
    def smtp_port(self) -> int:
        address = self.sandbox.smtp.address
        if address is None:
            raise RuntimeError(f"the SMTP sink is not listening: {self.sandbox.smtp.error}")
        return address[1]


async def _serve(
    app: Any, lifespan: Literal["on", "off"]
) -> tuple[QuietServer, asyncio.Task[None], str]:
    """``app`` under uvicorn on a free port of ``HOST``; returns once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan=lifespan, timeout_graceful_shutdown=2
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            await task  # raises what stopped it
            raise RuntimeError("a demo server stopped while starting")
        await asyncio.sleep(0.01)
    return server, task, f"http://{HOST}:{port}"


async def _stop(server: QuietServer, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, timeout=5)


@contextlib.asynccontextmanager
async def running_stack(settings: Settings, store: IntegrationStore) -> AsyncIterator[Stack]:
    """Start the sandbox, the receiver and the engine on ``store``; stop them on exit."""
    # A random seed per run: the sandbox makes booking uids from it, and the inbox keys
    # events by uid, so a second demo in the same home must not reuse the first's uids.
    config = SandboxConfig(seed=0, random_seed=secrets.randbelow(2**31), smtp_port=0)
    sandbox_app = create_sandbox_app(config)
    async with contextlib.AsyncExitStack() as stack:
        server, task, sandbox_url = await _serve(sandbox_app, "on")
        stack.push_async_callback(_stop, server, task)
        server, task, receiver_url = await _serve(create_app(store, settings), "off")
        stack.push_async_callback(_stop, server, task)
        engine = WorkflowEngine(store, settings, concurrency=16)
        await engine.start()
        stack.push_async_callback(engine.stop)
        yield Stack(
            settings=settings,
            store=store,
            sandbox_config=config,
            sandbox=sandbox_app.state.sandbox,
            sandbox_url=sandbox_url,
            receiver_url=receiver_url,
            engine=engine,
        )
