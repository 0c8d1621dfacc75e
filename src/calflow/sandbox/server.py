"""Run the sandbox: :func:`serve` in the foreground, :func:`run_in_thread` for tests and demos."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from rich.console import Console

from calflow.sandbox.app import create_sandbox_app
from calflow.sandbox.config import SandboxConfig


def serve(host: str, port: int, config: SandboxConfig, sock: socket.socket) -> None:
    """Print the base URLs and the API key, then run uvicorn on ``sock`` (bound to
    ``host:port`` and listening) until interrupted."""
    app = create_sandbox_app(config)
    console = Console()
    base = f"http://{host}:{port}"
    console.print(f"[bold]calflow sandbox[/bold] on {base}")
    console.print(f"  Cal.com base URL: {base}/calcom   (API key: {config.resolved_api_key})")
    savvycal = app.state.sandbox.savvycal
    oauth = savvycal.tokens
    console.print(f"  SavvyCal base URL: {base}/savvycal/v1   (token: {savvycal.token})")
    console.print(
        f"    OAuth: token URL {base}/savvycal/oauth/token  client_id={oauth.client.client_id}"
        f"  client_secret={oauth.client.client_secret}  refresh_token={oauth.seed_refresh_token}"
    )
    links = ", ".join(f"{link.slug}={link.id}" for link in savvycal.state.links.values())
    console.print(f"    links: {links}")
    console.print(f"  state: {base}/_sandbox/state")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])


@contextmanager
def run_in_thread(config: SandboxConfig, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run a real uvicorn server in a background thread; yields the root base URL.

    The Cal.com base URL is ``f"{base_url}/calcom"``. The server shuts down cleanly
    when the context exits; ``POST /_sandbox/flush`` before leaving awaits webhook
    deliveries still in flight (they are otherwise dropped with the server's loop).
    """
    app = create_sandbox_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server failed to start")
            time.sleep(0.01)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
