"""Test data for the API tests: a workspace's integration, event, run, workflow and job."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from calflow.events import BookingEvent, EventType, Person
from calflow.events.inbox import Inbox
from calflow.replay.jobs import JobStore
from calflow.workflows.runs import RunStore

from .conftest import Tenant

SECRET = "cal_live_very_secret_value_123"


def workflow(name: str = "notify", url: str = "https://hooks.example.com/x") -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"kinds": ["created"]},
        "steps": [{"id": "hook", "action": "http.Request", "integration": "web",
                   "input": {"url": url, "method": "POST", "json": {"uid": "{{ booking.uid }}"}}}],
    }  # fmt: skip


async def add_web(client: httpx.AsyncClient) -> str:
    """The http integration ``web`` that :func:`workflow` names; its id."""
    made = await client.post("/api/v1/integrations", json={"app": "http", "name": "web"})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def booking_event(uid: str, kind: str = "created", **over: Any) -> BookingEvent:
    now = datetime.now(UTC)
    start = now + timedelta(days=2)
    base = BookingEvent(
        provider="cal_com", kind=kind, original_type=f"BOOKING_{kind.upper()}",
        booking_uid=uid, source="webhook", occurred_at=now, received_at=now,
        start=start, end=start + timedelta(minutes=30), title="Intro call",
        event_type=EventType(id="101", slug="30min"),
        attendees=(Person(name="Ann Lee", email="ann@example.com"),), raw={"kind": kind},
    )  # fmt: skip
    return replace(base, **over)


@dataclass
class Seeded:
    integration: str
    event: str
    run: str
    workflow: str
    job: str


async def seed(tenant: Tenant, base_url: str = "http://127.0.0.1:9/calcom") -> Seeded:
    """One of everything in ``tenant``'s workspace (the integration through the API)."""
    made = await tenant.client.post(
        "/api/v1/integrations",
        json={"app": "cal_com", "name": "main", "config": {"base_url": base_url},
              "secrets": {"api_key": SECRET}},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    integration = made.json()["id"]
    store = tenant.store
    published = Inbox(store.engine, tenant.id).publish(
        booking_event(f"uid-{tenant.name}", integration_id=integration)
    )
    runs = RunStore(store.engine, tenant.id)
    run_id = f"run_{tenant.name}"
    runs.create(run_id, workflow_id="wf_x", workflow_name="notify", workflow_version=1,
                event_id=published.event_id, provider="cal_com",
                booking_uid=f"uid-{tenant.name}")  # fmt: skip
    await add_web(tenant.client)
    wf = await tenant.client.post("/api/v1/workflows", json=workflow())
    assert wf.status_code == 201, wf.text
    job = JobStore(store.engine, store.vault, tenant.id).create(
        integration_id=integration, provider="cal_com", target="calflow",
        options={"into": "calflow"}, secret=None,
    )  # fmt: skip
    JobStore(store.engine, store.vault, tenant.id).finish(
        job.id, "failed", error="test", duration_s=0.0
    )
    return Seeded(integration, published.event_id, run_id, wf.json()["id"], job.id)
