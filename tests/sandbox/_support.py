"""Test support: a sandbox app driven through httpx's ASGI transport, webhooks captured."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from fastapi import FastAPI

from calflow.sandbox import SandboxConfig, create_sandbox_app

API_KEY = "cal_live_testkey"
BOOKINGS = {"cal-api-version": "2024-08-13"}
SLOTS = {"cal-api-version": "2024-09-04"}
EVENT_TYPES = {"cal-api-version": "2024-06-14"}
CLOCK = datetime(2030, 1, 7, 6, 10, tzinfo=UTC)
"""The sandbox clock's start (``SandboxConfig.clock_start``): a Monday, 06:10 UTC, so the
first open slot is that same day and nothing depends on when the tests run."""


@dataclass
class Captured:
    """Webhook requests received by the mock transport."""

    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, text="ok")


@dataclass
class Sandbox:
    """A sandbox app with a client on its Cal.com API and one on its root."""

    app: FastAPI
    api: httpx.AsyncClient
    root: httpx.AsyncClient
    hooks: Captured

    async def state(self) -> dict[str, Any]:
        response = await self.root.get("/_sandbox/state", params={"flush": "true"})
        data: dict[str, Any] = response.json()["calcom"]
        return data

    async def first_slot(self, event_type_id: int = 101, index: int = 0) -> str:
        response = await self.api.get(
            "/v2/slots",
            headers=SLOTS,
            params={"start": "2000-01-01", "end": "2100-01-01", "eventTypeId": event_type_id},
        )
        days = response.json()["data"]
        starts = [s["start"] for day in sorted(days) for s in days[day]]
        return starts[index]

    async def book(self, start: str, /, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "start": start,
            "eventTypeId": 101,
            "attendee": {
                "name": "Bob Smith",
                "email": "bob@example.com",
                "timeZone": "Europe/London",
            },
        }
        body.update(extra)
        return await self.api.post("/v2/bookings", headers=BOOKINGS, json=body)

    async def hook(self, triggers: list[str], secret: str | None = "s3cret") -> dict[str, Any]:  # noqa: S107
        body: dict[str, Any] = {
            "subscriberUrl": "https://hooks.example.com/cal",
            "triggers": triggers,
            "active": True,
        }
        if secret:
            body["secret"] = secret
        response = await self.api.post("/v2/webhooks", json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data


async def make_sandbox(config: SandboxConfig) -> AsyncIterator[Sandbox]:
    hooks = Captured()
    app = create_sandbox_app(config, webhook_transport=httpx.MockTransport(hooks.handler))
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://sb/calcom", headers=headers) as api,
        httpx.AsyncClient(transport=transport, base_url="http://sb") as root,
    ):
        yield Sandbox(app, api, root, hooks)


@contextmanager
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A local HTTP receiver on a free port: yields its URL and the (headers, body) list."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
