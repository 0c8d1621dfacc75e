"""One engine runs every workspace's workflows, each with its own integrations."""

from __future__ import annotations

from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from e2e.sandbox_process import SandboxProcess
from engine.conftest import API_KEY, Harness, booking_event
from engine.test_engine import get_step


async def test_each_workspace_runs_its_own_workflows(
    harness: Harness, sandbox: SandboxProcess
) -> None:
    h = harness
    engine = h.store.engine
    acme = IntegrationStore(engine, h.store.vault, "acme")
    acme.add("cal_com", "main", {"base_url": sandbox.calcom}, {"api_key": API_KEY})
    WorkflowStore(engine, "acme").apply(
        {"name": "acme-only", "trigger": {"kinds": ["created"]}, "steps": [get_step("get")]}
    )
    h.apply({"name": "default-only", "trigger": {"kinds": ["created"]},
             "steps": [get_step("get")]})  # fmt: skip
    Inbox(engine, "acme").publish(booking_event(booking_uid="uid-acme"))
    acme_runs = RunStore(engine, "acme")

    def finished() -> list[dict[str, object]]:
        return [r for r in acme_runs.list() if r["status"] == "succeeded"]

    (run,) = await h.until(finished, what="acme's run")
    assert run["workflow"] == "acme-only" and run["booking_uid"] == "uid-acme"
    (step,) = acme_runs.get(str(run["id"]))["steps"]
    assert step["input"] == {"bookingUid": "uid-acme"} and step["port"] == "not_found"
    assert h.runs() == []  # the default workspace's workflow did not see acme's event
