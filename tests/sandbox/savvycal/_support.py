"""SavvyCal test support: the sandbox app over httpx's ASGI transport, webhooks captured."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from calflow.sandbox import SandboxConfig, create_sandbox_app
from calflow.sandbox.app import SandboxHandle
from calflow.sandbox.savvycal import SavvycalSimulator

from .._support import CLOCK

__all__ = ["ALL", "CLOCK", "TOKEN", "Captured", "Sandbox", "make_sandbox"]

TOKEN = "pt_secret_testtoken"
ALL: dict[str, str | int] = {
    "period": "all",
    "state": "all",
    "attendance": "any",
    "direction": "asc",
    "limit": 100,
}


@dataclass
class Captured:
    """Webhook requests received by the mock transport; ``status`` picks each answer."""

    requests: list[httpx.Request] = field(default_factory=list)
    status: Callable[[int], int] = lambda _n: 200

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status(len(self.requests)), text="ok")


@dataclass
class Sandbox:
    """A sandbox app with a client on its SavvyCal API and one on its root."""

    app: FastAPI
    api: httpx.AsyncClient
    root: httpx.AsyncClient
    hooks: Captured

    @property
    def sim(self) -> SavvycalSimulator:
        handle: SandboxHandle = self.app.state.sandbox
        return handle.savvycal

    def link_id(self, slug: str) -> str:
        return next(link.id for link in self.sim.state.links.values() if link.slug == slug)

    async def state(self) -> dict[str, Any]:
        response = await self.root.get("/_sandbox/state", params={"flush": "true"})
        data: dict[str, Any] = response.json()["savvycal"]
        return data

    async def slot(self, slug: str = "30min", index: int = 0) -> dict[str, Any]:
        response = await self.api.get(f"/v1/links/{self.link_id(slug)}/slots")
        assert response.status_code == 200, response.text
        slots: list[dict[str, Any]] = response.json()
        return slots[index]

    async def book(self, slug: str = "30min", /, **extra: Any) -> httpx.Response:
        slot = await self.slot(slug)
        body: dict[str, Any] = {
            "display_name": "Bob Smith",
            "email": "bob@example.com",
            "start_at": slot["start_at"],
            "end_at": slot["end_at"],
            "time_zone": "Europe/London",
            "phone_number": "+447700900123",
        }
        body.update(extra)
        return await self.api.post(f"/v1/links/{self.link_id(slug)}/events", json=body)

    async def walk(self, **params: Any) -> list[dict[str, Any]]:
        """Every event of a full ``after`` walk."""
        query = {**ALL, **params}
        seen: list[dict[str, Any]] = []
        while True:
            page = await self.api.get("/v1/events", params=query)
            assert page.status_code == 200, page.text
            data = page.json()
            seen += data["entries"]
            if data["metadata"]["after"] is None:
                return seen
            query["after"] = data["metadata"]["after"]


async def make_sandbox(
    config: SandboxConfig, hooks: Captured | None = None
) -> AsyncIterator[Sandbox]:
    hooks = hooks or Captured()
    app = create_sandbox_app(config, webhook_transport=httpx.MockTransport(hooks.handler))
    sim: SavvycalSimulator = app.state.sandbox.savvycal
    sim.dispatcher.backoff_s = 0.01
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(
            transport=transport, base_url="http://sb/savvycal", headers=headers
        ) as api,
        httpx.AsyncClient(transport=transport, base_url="http://sb") as root,
    ):
        yield Sandbox(app, api, root, hooks)
