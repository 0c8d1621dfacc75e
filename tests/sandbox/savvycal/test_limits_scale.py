"""Rate limit, injected faults, reset, and pagination speed on a large seed."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from calflow.sandbox import SandboxConfig, SandboxRuntime
from calflow.sandbox.savvycal import SavvycalSimulator

from ._support import ALL, CLOCK, TOKEN, make_sandbox


async def test_rate_limit_429_with_retry_after() -> None:
    async for sc in make_sandbox(
        SandboxConfig(savvycal_token=TOKEN, savvycal_rate_limit_per_min=2)
    ):
        assert (await sc.api.get("/v1/me")).status_code == 200
        assert (await sc.api.get("/v1/me")).status_code == 200
        limited = await sc.api.get("/v1/me")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json() == {"errors": [{"message": "Too many requests"}]}


async def test_faults_and_reset() -> None:
    async for sc in make_sandbox(SandboxConfig(savvycal_token=TOKEN, seed=5, clock_start=CLOCK)):
        await sc.root.post("/_sandbox/faults", json={"fail_rate": 1})
        statuses = {(await sc.api.get("/v1/me")).status_code for _ in range(20)}
        assert statuses <= {500, 502, 503} and statuses
        await sc.root.post("/_sandbox/faults", json={"fail_rate": 0})
        before = [e["id"] for e in await sc.walk()]
        assert (await sc.book()).status_code == 201
        await sc.root.post("/_sandbox/reset")
        assert [e["id"] for e in await sc.walk()] == before


async def test_large_seed_paginates_fast() -> None:
    # SavvyCal alone: the shared ``seed`` would also seed 10 000 Cal.com bookings.
    config = SandboxConfig(savvycal_token=TOKEN, seed=10_000)
    started = time.perf_counter()
    sim = SavvycalSimulator(SandboxRuntime.from_config(config))
    assert time.perf_counter() - started < 10
    headers = {"Authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=sim.api)
    async with httpx.AsyncClient(transport=transport, base_url="http://sb", headers=headers) as api:
        query: dict[str, str | int] = dict(ALL)
        seen: list[str] = []
        started = time.perf_counter()
        while True:
            data = (await api.get("/v1/events", params=query)).json()
            seen += [e["id"] for e in data["entries"]]
            if data["metadata"]["after"] is None:
                break
            query["after"] = data["metadata"]["after"]
        elapsed = time.perf_counter() - started
        assert len(seen) == len(set(seen)) == 10_000
        assert elapsed < 20, elapsed
        page = await api.get("/v1/events", params={**ALL, "state": "declined", "limit": 5})
        assert page.status_code == 200 and len(page.json()["entries"]) == 5
    state = sim.state_json()
    assert state["event_count"] == 10_000 and len(state["events"]) == 200


@pytest.mark.parametrize("day", range(7))
def test_about_a_third_of_the_seeded_events_are_upcoming_on_any_day(day: int) -> None:
    # counted in calendar days back from "now", a Thursday's 60 events were all in the past
    now = CLOCK + timedelta(days=day, hours=13 * day)
    config = SandboxConfig(savvycal_token=TOKEN, seed=60, clock_start=now)
    events = SavvycalSimulator(SandboxRuntime.from_config(config)).state.events.values()
    upcoming = [e for e in events if e.start > now]
    assert 12 <= len(upcoming) <= 24, (now, len(upcoming))
    assert {"confirmed", "awaiting_approval"} <= {e.state for e in upcoming}
