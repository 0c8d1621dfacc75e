"""Rate limiting, fault injection, clock, reset and seeding."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calflow.sandbox import SandboxConfig, SandboxRuntime
from calflow.sandbox.calcom import CalcomSimulator

from ._support import API_KEY, BOOKINGS, CLOCK, Sandbox, make_sandbox


async def test_rate_limit_headers_and_429() -> None:
    config = SandboxConfig(api_key=API_KEY, rate_limit_per_min=3, rate_limit_block_s=30)
    async for sb in make_sandbox(config):
        first = await sb.api.get("/v2/me")
        assert first.headers["X-RateLimit-Limit-Default"] == "3"
        assert first.headers["X-RateLimit-Remaining-Default"] == "2"
        assert 0 < int(first.headers["X-RateLimit-Reset-Default"]) <= 60
        await sb.api.get("/v2/me")
        third = await sb.api.get("/v2/me")
        assert third.headers["X-RateLimit-Remaining-Default"] == "0"
        limited = await sb.api.get("/v2/me")
        assert limited.status_code == 429
        assert "Retry-After" not in limited.headers
        assert limited.json()["error"] == {
            "code": "ThrottlerException",
            "message": "ThrottlerException: Too Many Requests",
            "details": {
                "message": "ThrottlerException: Too Many Requests",
                "error": "Too Many Requests",
                "statusCode": 429,
            },
        }
        assert limited.headers["X-RateLimit-Reset-Default"] == "30"
        still = await sb.api.get("/v2/me")
        assert still.status_code == 429
        other_key = await sb.api.get("/v2/me", headers={"Authorization": "Bearer other"})
        assert other_key.status_code == 401


async def test_fault_injection_and_latency(sb: Sandbox) -> None:
    assert (await sb.root.post("/_sandbox/faults", json={"fail_rate": 1.0})).status_code == 200
    statuses = set()
    for _ in range(30):
        response = await sb.api.get("/v2/me")
        statuses.add(response.status_code)
        if response.status_code == 502:
            assert response.headers["content-type"].startswith("text/html")
        if response.status_code == 500:
            assert response.json()["error"]["code"] == "InternalServerErrorException"
    assert statuses == {500, 502, 503}
    start = await sb.root.post("/_sandbox/faults", json={"fail_rate": 0, "latency_ms": 50})
    assert start.json() == {"fail_rate": 0.0, "latency_ms": 50.0, "twilio_slow_s": 5.0}
    began = time.monotonic()
    assert (await sb.api.get("/v2/me")).status_code == 200
    assert time.monotonic() - began >= 0.05
    assert (await sb.root.post("/_sandbox/faults", json={"fail_rate": 2})).status_code == 400
    # how long the slow magic number holds Twilio's answer, and its rule
    held = await sb.root.post("/_sandbox/faults", json={"twilio_slow_s": 8})
    assert held.json()["twilio_slow_s"] == 8.0
    bad = await sb.root.post("/_sandbox/faults", json={"twilio_slow_s": -1})
    assert bad.status_code == 400 and "twilio_slow_s" in bad.text


async def test_faults_do_not_touch_state(sb: Sandbox) -> None:
    start = await sb.first_slot()
    await sb.root.post("/_sandbox/faults", json={"fail_rate": 1.0})
    for _ in range(5):
        assert (await sb.book(start)).status_code >= 500
    await sb.root.post("/_sandbox/faults", json={"fail_rate": 0.0})
    assert (await sb.state())["bookings"] == []


async def test_seed_is_deterministic_and_varied() -> None:
    states = []
    for _ in range(2):
        config = SandboxConfig(api_key=API_KEY, seed=40, random_seed=7, clock_start=CLOCK)
        async for sb in make_sandbox(config):
            states.append(await sb.state())
    first, second = states
    assert [b["uid"] for b in first["bookings"]] == [b["uid"] for b in second["bookings"]]
    bookings = first["bookings"]
    assert len(bookings) >= 40
    assert any(b["status"] == "cancelled" for b in bookings)
    assert any("rescheduledToUid" in b for b in bookings)
    assert any(a.get("phoneNumber", "").startswith("+") for b in bookings for a in b["attendees"])
    assert len({b["attendees"][0]["timeZone"] for b in bookings}) > 2


async def test_seeded_bookings_listable_past_and_upcoming() -> None:
    async for sb in make_sandbox(
        SandboxConfig(api_key=API_KEY, seed=30, rate_limit_per_min=0, clock_start=CLOCK)
    ):
        past = await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"status": "past"})
        upcoming = await sb.api.get("/v2/bookings", headers=BOOKINGS, params={"status": "upcoming"})
        assert past.json()["data"] and upcoming.json()["data"]


async def test_reset_and_clock(sb: Sandbox) -> None:
    await sb.book(await sb.first_slot())
    clock = await sb.root.post("/_sandbox/clock", json={"offset_s": 3600})
    assert clock.json()["offset_s"] == 3600
    assert (await sb.root.post("/_sandbox/reset")).json() == {"reset": True}
    assert (await sb.state())["bookings"] == []


async def test_a_pinned_clock_starts_at_clock_start_ticks_shifts_and_restarts() -> None:
    runtime = SandboxRuntime.from_config(SandboxConfig(clock_start=CLOCK))
    assert CLOCK <= runtime.now() < CLOCK + timedelta(seconds=5)
    runtime.clock_offset_s = 3600
    assert runtime.now() - CLOCK >= timedelta(hours=1)
    runtime.reset()
    assert CLOCK <= runtime.now() < CLOCK + timedelta(seconds=5)
    with pytest.raises(ValueError, match="aware"):
        SandboxConfig(clock_start=datetime(2030, 1, 7, 6, 10))


def test_seeded_bookings_stay_in_working_hours_across_a_dst_change() -> None:
    # a seeded reschedule by whole days across the change keeps the local time: the same UTC
    # time put one at 17:00 in Paris on 2027-03-30
    now = datetime(2027, 3, 27, 12, tzinfo=UTC)  # the day before Europe's change
    sim = CalcomSimulator(SandboxRuntime.from_config(SandboxConfig(seed=400, clock_start=now)))
    paris = ZoneInfo("Europe/Paris")  # the first host of every seeded event type
    for booking in sim.state.bookings.values():
        start, end = booking.start.astimezone(paris), booking.end.astimezone(paris)
        assert start.weekday() < 5 and start.hour >= 9, (booking.uid, start)
        assert (end.hour, end.minute) <= (17, 0) and end.date() == start.date(), booking.uid
