"""Fixtures of the end-to-end tests: the sandbox as a separate process, a real store."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from calflow.db.engine import reset_engines
from calflow.flowapp.http import RetryPolicy
from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from db_fixtures import clean_calflow_env

from .sandbox_process import SandboxProcess, sandbox_process

__all__ = ["clean_calflow_env"]

API_KEY = "cal_live_e2e_3b1f9c0d7a"
SEED = 150
"""Enough seeded bookings for listings to span more than one 100-item page."""
SAVVYCAL_TOKEN = "pt_secret_e2e_5c2a7d9e41b8f306"
SAVVYCAL_SEED = 250
"""Seeded SavvyCal events: a full listing spans three 100-item pages."""

FAST_POLICY = RetryPolicy(max_retries=2, backoff_base_s=0.01, backoff_max_s=0.05)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    """One seeded sandbox process for the whole session (no rate limit, no faults)."""
    with sandbox_process(
        API_KEY, seed=SEED, savvycal_token=SAVVYCAL_TOKEN, savvycal_seed=SAVVYCAL_SEED
    ) as sb:
        yield sb


@pytest.fixture(scope="session")
def savvycal_sandbox(sandbox: SandboxProcess) -> SandboxProcess:
    """The same process: it serves SavvyCal at ``/savvycal`` with ``SAVVYCAL_TOKEN``."""
    return sandbox


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IntegrationStore]:
    """A real IntegrationStore on a temporary SQLite home (key file generated there)."""
    yield IntegrationStore.default(Settings(home=tmp_path))
    reset_engines()


@pytest.fixture
def integration(store: IntegrationStore, sandbox: SandboxProcess) -> str:
    """The name of a Cal.com integration pointing at the sandbox."""
    store.add("cal_com", "main", {"base_url": sandbox.calcom}, {"api_key": API_KEY})
    return "main"


@pytest.fixture
def savvycal_integration(store: IntegrationStore, savvycal_sandbox: SandboxProcess) -> str:
    """The name of a SavvyCal integration (personal token) pointing at the sandbox."""
    store.add("savvycal", "sc", {"base_url": savvycal_sandbox.savvycal}, {"token": SAVVYCAL_TOKEN})
    return "sc"


@pytest.fixture
async def runner(store: IntegrationStore) -> AsyncIterator[Runner]:
    """A Runner on the real store, with quick retries."""
    async with Runner(store=store, policy=FAST_POLICY, timeout_s=10) as r:
        yield r


@dataclass
class Received:
    """One request a webhook receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A tiny webhook subscriber: records every POST it gets and answers 200."""

    url: str
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server in a thread that records webhook deliveries."""
    got: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            got.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/calcom", got)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
