"""A batch slower than its lease keeps its runs: no second worker (or pass) takes them."""

from __future__ import annotations

import httpx

from e2e.sandbox_process import SandboxProcess

from .conftest import Harness, booking_event
from .test_engine import get_step


async def test_a_call_slower_than_the_lease_is_made_once(
    harness: Harness, sandbox: SandboxProcess
) -> None:
    h = harness
    h.engine.services.lease_s = 0.6  # the provider answers in 1.5 s: the lease must be renewed
    h.apply({"name": "slow", "trigger": {"kinds": ["created"]}, "steps": [get_step("get")]})
    async with httpx.AsyncClient(base_url=sandbox.root, timeout=10) as admin:
        await admin.post("/_sandbox/faults", json={"latency_ms": 1500})
        try:
            h.publish(booking_event())
            (run,) = await h.finished(1, wait_s=30)
        finally:
            await admin.post("/_sandbox/faults", json={"latency_ms": 0})
    shown = h.run(run["id"])
    assert shown["status"] == "succeeded"
    assert [(s["step"], s["attempt"], s["status"]) for s in shown["steps"]] == [
        ("get", 1, "succeeded")
    ]
