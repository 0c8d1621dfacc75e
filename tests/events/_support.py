"""Test support: the in-process sandbox (Cal.com + SavvyCal) with every webhook captured,
and a ``Runner`` whose HTTP goes to the same sandbox app.

Deliveries are what the sandboxes send (their ``sendPayload`` equivalents); the tests
normalize those bodies rather than hand-written ones.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from calflow.flowapp import BookingChange, RetryPolicy
from calflow.flowapp.runner import Runner
from calflow.integrations import Integration
from calflow.sandbox import SandboxConfig, create_sandbox_app
from calflow.sandbox.app import SandboxHandle
from calflow.sandbox.calcom.webhooks import TRIGGERS

API_KEY = "cal_live_events_test"
TOKEN = "pt_secret_events_test"
CAL_HOOK = "https://hooks.example.com/cal"
SC_HOOK = "https://hooks.example.com/savvycal"
BOOKINGS = {"cal-api-version": "2024-08-13"}
SLOTS = {"cal-api-version": "2024-09-04"}
RECEIVED = datetime(2050, 1, 2, 3, 4, 5, tzinfo=UTC)
"""A fixed receive time, far from the sandbox clock, so a test sees which one was used."""


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Hooks:
    """Webhook requests the sandbox sent (answered 200)."""

    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, text="ok")

    def bodies(self, url: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if str(r.url) == url]


@dataclass
class Sandbox:
    app: FastAPI
    root: httpx.AsyncClient
    cal: httpx.AsyncClient
    sc: httpx.AsyncClient
    hooks: Hooks
    changes: list[BookingChange] = field(default_factory=list)

    @property
    def handle(self) -> SandboxHandle:
        handle: SandboxHandle = self.app.state.sandbox
        return handle

    # deliveries ---------------------------------------------------------------
    async def flush(self) -> None:
        assert (await self.root.post("/_sandbox/flush")).status_code == 200

    async def cal_hooks(self) -> list[dict[str, Any]]:
        """Every Cal.com delivery so far, in order."""
        await self.flush()
        return self.hooks.bodies(CAL_HOOK)

    async def sc_hooks(self) -> list[dict[str, Any]]:
        """Every SavvyCal delivery so far (one per payload id: retries left out)."""
        await self.flush()
        return self.hooks.bodies(SC_HOOK)

    async def new_cal_hooks(self, before: int) -> list[dict[str, Any]]:
        return (await self.cal_hooks())[before:]

    async def new_sc_hooks(self, before: int) -> list[dict[str, Any]]:
        return (await self.sc_hooks())[before:]

    async def clock(self, offset_s: float) -> None:
        response = await self.root.post("/_sandbox/clock", json={"offset_s": offset_s})
        assert response.status_code == 200, response.text

    # Cal.com --------------------------------------------------------------------
    async def cal_slot(self, event_type_id: int = 101, index: int = 0) -> str:
        response = await self.cal.get(
            "/v2/slots",
            headers=SLOTS,
            params={"start": "2000-01-01", "end": "2100-01-01", "eventTypeId": event_type_id},
        )
        assert response.status_code == 200, response.text
        days = response.json()["data"]
        return str([s["start"] for day in sorted(days) for s in days[day]][index])

    async def cal_book(
        self, event_type_id: int = 101, index: int = 0, *, web: bool = False, **body: Any
    ) -> dict[str, Any]:
        """A Cal.com booking through the API (or the booking page with ``web``)."""
        payload: dict[str, Any] = {
            "start": await self.cal_slot(event_type_id, index),
            "eventTypeId": event_type_id,
            "attendee": {
                "name": "Bob Smith",
                "email": "bob@example.com",
                "timeZone": "Europe/London",
            },
            **body,
        }
        if web:
            response = await self.root.post("/_sandbox/calcom/bookings", json=payload)
        else:
            response = await self.cal.post("/v2/bookings", headers=BOOKINGS, json=payload)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def cal_post(self, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.cal.post(path, headers=BOOKINGS, json=body or {})
        assert response.status_code in (200, 201), response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def cal_control(self, path: str) -> dict[str, Any]:
        response = await self.root.post(f"/_sandbox/calcom{path}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    # SavvyCal -------------------------------------------------------------------
    def link_id(self, slug: str) -> str:
        links = self.handle.savvycal.state.links.values()
        return next(link.id for link in links if link.slug == slug)

    async def sc_slot(self, slug: str = "30min", index: int = 0) -> dict[str, Any]:
        response = await self.sc.get(f"/v1/links/{self.link_id(slug)}/slots")
        assert response.status_code == 200, response.text
        slot: dict[str, Any] = response.json()[index]
        return slot

    async def sc_book(self, slug: str = "30min", index: int = 0, **body: Any) -> dict[str, Any]:
        slot = await self.sc_slot(slug, index)
        payload = {
            "display_name": "Bob Smith",
            "email": "bob@example.com",
            "start_at": slot["start_at"],
            "end_at": slot["end_at"],
            "time_zone": "Europe/London",
            **body,
        }
        response = await self.sc.post(f"/v1/links/{self.link_id(slug)}/events", json=payload)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def sc_control(self, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.root.post(f"/_sandbox/savvycal{path}", json=body or {})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    # calflow's actions ------------------------------------------------------------
    async def run(self, app: str, action: str, data: dict[str, Any]) -> Any:
        """Run a real action against the sandbox; its BookingChanges land in ``changes``."""

        async def sink(change: BookingChange) -> None:
            self.changes.append(change)

        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))
        async with (
            http,
            Runner(http=http, policy=RetryPolicy(backoff_base_s=0.001), sink=sink) as runner,
        ):
            integration = CAL_INTEGRATION if app == "cal_com" else SC_INTEGRATION
            result = await runner.run_action(app, action, data, integration)
        assert result.success, result
        return result


def _integration(id_: str, app: str, base_url: str, secrets: dict[str, str]) -> Integration:
    now = datetime.now(UTC)
    return Integration(
        id=id_,
        workspace_id="default",
        app_key=app,
        name=id_,
        config=MappingProxyType({"base_url": base_url}),
        secrets=MappingProxyType({k: SecretStr(v) for k, v in secrets.items()}),
        created_at=now,
        updated_at=now,
    )


CAL_INTEGRATION = _integration("int_cal", "cal_com", "http://sb/calcom", {"api_key": API_KEY})
SC_INTEGRATION = _integration("int_sc", "savvycal", "http://sb/savvycal", {"token": TOKEN})


async def make_sandbox() -> AsyncIterator[Sandbox]:
    hooks = Hooks()
    config = SandboxConfig(
        api_key=API_KEY, savvycal_token=TOKEN, rate_limit_per_min=0, seed=0, savvycal_seed=0
    )
    app = create_sandbox_app(config, webhook_transport=httpx.MockTransport(hooks.handler))
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://sb") as root,
        httpx.AsyncClient(
            transport=transport,
            base_url="http://sb/calcom",
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as cal,
        httpx.AsyncClient(
            transport=transport,
            base_url="http://sb/savvycal",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as sc,
    ):
        sandbox = Sandbox(app, root, cal, sc, hooks)
        sandbox.handle.savvycal.dispatcher.backoff_s = 0.01
        hook = await cal.post(
            "/v2/webhooks",
            json={
                "subscriberUrl": CAL_HOOK,
                "triggers": list(TRIGGERS),
                "active": True,
                "secret": "s3cret",
            },
        )
        assert hook.status_code == 201, hook.text
        hook = await sc.post("/v1/webhooks", json={"url": SC_HOOK})
        assert hook.status_code == 201, hook.text
        yield sandbox
