"""One workspace's flood or hanging provider does not hold back another's reminder (a real
worker process, the Twilio sandbox).

The dispatcher takes the workspaces' events in turn and the scheduler their due runs,
one workspace holding at most ``WORKSPACE_SHARE`` of the runs in flight
(``calflow.workflows.scheduler``): acme's one booking is handled within the bound while
the flood workspace has thousands of events queued, or hundreds of runs hanging on a
provider that answers after 8 s.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from calflow.db.engine import reset_engines
from calflow.db.models import RunRow
from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.runs import RunStore
from calflow.workflows.store import WorkflowStore
from e2e.sandbox_process import SandboxProcess

from .test_faults import _sms_flow, _with_phone
from .test_processes import calflow_process, poll

pytestmark = pytest.mark.slow

SLOW_TO = "+15005550504"
BOUND_S = 2.0
"""The documented bound is 1 s per batch of turns; the margin is for a loaded machine."""


def _workspaces(home: Path, sandbox: SandboxProcess) -> dict[str, tuple[Inbox, RunStore]]:
    twilio = httpx.get(f"{sandbox.root}/_sandbox/state", timeout=30).json()["twilio"]
    store = IntegrationStore.default(Settings(home=home))
    spaces = {}
    for workspace in ("default", "flood"):
        IntegrationStore(store.engine, store.vault, workspace).add(
            "twilio", "sms",
            {"base_url": f"{sandbox.root}/twilio", "account_sid": twilio["account_sid"],
             "from_number": "+15005550006"},
            {"auth_token": twilio["auth_token"]},
        )  # fmt: skip
        flow = _sms_flow("immediately", workspace + " {{ booking.uid }}", attempts=1)
        WorkflowStore(store.engine, workspace).apply(flow)
        spaces[workspace] = (Inbox(store.engine, workspace), RunStore(store.engine, workspace))
    return spaces


def _count(runs: RunStore, status: str | None = None) -> int:
    query = select(func.count()).select_from(RunRow).where(RunRow.workspace_id == runs.workspace_id)
    if status is not None:
        query = query.where(RunRow.status == status)
    with runs.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _acme_waited(spaces: dict[str, tuple[Inbox, RunStore]]) -> float:
    """Publish acme's booking now; seconds until its SMS step started."""
    inbox, runs = spaces["default"]
    published = inbox.publish(_with_phone("acme-1", "+33612000001"))

    def started() -> dict[str, Any] | None:
        for run in runs.list(limit=10):
            steps = runs.get(str(run["id"]))["steps"]
            if steps and steps[0].get("started_at"):
                return dict(steps[0])
        return None

    step = poll(started, wait_s=60, what="acme's SMS step")
    received = datetime.fromisoformat(str(inbox.get(published.event_id)["received_at"]))
    return (datetime.fromisoformat(step["started_at"]) - received).total_seconds()


def test_a_flood_of_events_in_one_workspace_does_not_delay_another(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    spaces = _workspaces(tmp_path, sandbox)
    flood_inbox, flood_runs = spaces["flood"]
    with calflow_process(["worker", "--id", "fair"], {"CALFLOW_HOME": str(tmp_path)}):
        events = [_with_phone(f"flood-{n}", f"+3361290{n:04d}") for n in range(3000)]
        for start in range(0, len(events), 500):
            flood_inbox.publish_many([(e, None) for e in events[start : start + 500]])
        poll(lambda: _count(flood_runs) >= 200 or None, wait_s=60, what="the flood to run")
        waited = _acme_waited(spaces)
        left = len(events) - _count(flood_runs, "succeeded")
    assert left > 500, "the flood ended too soon to show anything: make it larger"
    assert waited <= BOUND_S, waited
    reset_engines()


def test_runs_hanging_on_a_provider_in_one_workspace_leave_room_for_another(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    spaces = _workspaces(tmp_path, sandbox)
    flood_inbox, flood_runs = spaces["flood"]
    httpx.post(f"{sandbox.root}/_sandbox/faults", json={"twilio_slow_s": 8.0}, timeout=10)
    try:
        with calflow_process(["worker", "--id", "fair"], {"CALFLOW_HOME": str(tmp_path)}):
            # more runs than the scheduler keeps in flight (600), each hanging 8 s
            events = [_with_phone(f"slow-{n}", SLOW_TO) for n in range(700)]
            flood_inbox.publish_many([(e, None) for e in events])
            poll(lambda: _count(flood_runs, "running") >= 400 or None,
                 wait_s=60, what="the flood's runs to hang")  # fmt: skip
            time.sleep(1.0)  # the scheduler has taken all it will
            held = _count(flood_runs, "running")
            waited = _acme_waited(spaces)
    finally:
        httpx.post(f"{sandbox.root}/_sandbox/faults", json={"twilio_slow_s": 5.0}, timeout=10)
    assert held <= 450, held  # 3/4 of the 600 places
    assert waited <= BOUND_S, waited
    reset_engines()
