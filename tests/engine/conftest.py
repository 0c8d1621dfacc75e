"""Fixtures of the workflow engine tests: a sandbox process, a store, a running engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calflow.db.engine import reset_engines
from calflow.events import BookingEvent, EventType, Person
from calflow.events.inbox import Inbox, Published
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.engine import WorkflowEngine
from db_fixtures import clean_calflow_env, isolated_pg_url, sqlite_url
from e2e.sandbox_process import SandboxProcess, sandbox_process

__all__ = ["clean_calflow_env", "isolated_pg_url", "sqlite_url"]

API_KEY = "cal_live_engine_tests"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    with sandbox_process(API_KEY, seed=3) as sb:
        yield sb


@dataclass
class Harness:
    """A running engine on a fresh database, and helpers to feed it and watch runs."""

    engine: WorkflowEngine
    store: IntegrationStore
    inbox: Inbox

    def apply(self, definition: dict[str, Any]) -> str:
        stored, _ = self.engine.services.workflows.apply(definition)
        return stored.id

    def publish(self, event: BookingEvent) -> Published:
        return self.inbox.publish(event)

    def runs(self, **filters: Any) -> list[dict[str, Any]]:
        return self.engine.services.runs.list(**filters)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.engine.services.runs.get(run_id)

    async def until(
        self, check: Callable[[], Any], wait_s: float = 20.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + wait_s
        while True:
            value = await asyncio.to_thread(check)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)

    async def finished(self, count: int = 1, wait_s: float = 20.0) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            runs = self.runs()
            final = [r for r in runs if r["status"] in ("succeeded", "failed", "cancelled")]
            return runs if len(final) >= count else None

        result: list[dict[str, Any]] = await self.until(done, wait_s, f"{count} finished runs")
        return result


def _db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "isolated_pg_url"
    return str(request.getfixturevalue(name))


async def _harness(tmp_path: Path, url: str, sandbox: SandboxProcess) -> AsyncIterator[Harness]:
    settings = Settings(home=tmp_path, database_url=url)
    store = IntegrationStore.default(settings)
    store.add("cal_com", "main", {"base_url": sandbox.calcom}, {"api_key": API_KEY})
    engine = WorkflowEngine(store, settings, concurrency=8)
    await engine.start()
    try:
        yield Harness(engine, store, Inbox(store.engine, store.workspace_id))
    finally:
        await engine.stop()
        reset_engines()


@pytest.fixture
async def harness(tmp_path: Path, sandbox: SandboxProcess) -> AsyncIterator[Harness]:
    """The engine on SQLite."""
    async for h in _harness(tmp_path, f"sqlite:///{tmp_path / 'calflow.db'}", sandbox):
        yield h


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_harness(
    request: pytest.FixtureRequest, tmp_path: Path, sandbox: SandboxProcess
) -> AsyncIterator[Harness]:
    """The engine on SQLite and on PostgreSQL."""
    async for h in _harness(tmp_path, _db_url(request), sandbox):
        yield h


def booking_event(kind: str = "created", **over: Any) -> BookingEvent:
    """A Cal.com booking change for uid ``uid-e1``, starting in two days."""
    now = datetime.now(UTC)
    start = now + timedelta(days=2)
    base = BookingEvent(
        provider="cal_com",
        kind=kind,
        original_type=f"BOOKING_{kind.upper()}",
        booking_uid="uid-e1",
        source="webhook",
        occurred_at=now,
        received_at=now,
        start=start,
        end=start + timedelta(minutes=30),
        title="Intro call",
        event_type=EventType(id="101", slug="30min"),
        attendees=(Person(name="Ann Lee", email="ann@example.com", phone="+33612345678",
                          time_zone="Europe/Paris"),),
        raw={"kind": kind},
    )  # fmt: skip
    return replace(base, **over)


Waiter = Callable[[], Awaitable[None]]
