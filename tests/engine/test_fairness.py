"""Workspaces take turns: one workspace's flood of events or runs, or its slow triggers,
does not hold back another's (the dispatcher and the scheduler's claim)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from calflow.db.engine import reset_engines, write_transaction
from calflow.db.models import EventRow, RunRow
from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from calflow.workflows.dispatch import Dispatcher
from calflow.workflows.runs import RunStore
from calflow.workflows.services import Services
from calflow.workflows.store import WorkflowStore

from .conftest import booking_event, isolated_pg_url, sqlite_url
from .test_engine import get_step

__all__ = ["isolated_pg_url", "sqlite_url"]

START = datetime(2031, 5, 6, 9, 0, tzinfo=UTC)
RECEIVED = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Spaces:
    svc: Services

    def publish(self, workspace: str, uids: list[str], at: datetime) -> None:
        events = [
            booking_event(booking_uid=uid, start=START, end=START + timedelta(minutes=30),
                          occurred_at=at, received_at=at + timedelta(milliseconds=n))
            for n, uid in enumerate(uids)
        ]  # fmt: skip
        Inbox(self.svc.store.engine, workspace).publish_many([(e, None) for e in events])

    def pending(self, workspace: str) -> int:
        with self.svc.store.engine.connect() as conn:
            rows = conn.execute(
                select(EventRow.id).where(
                    EventRow.workspace_id == workspace, EventRow.dispatched_at.is_(None)
                )
            ).all()
        return len(rows)

    def run_uids(self, workspace: str) -> set[str]:
        with self.svc.store.engine.connect() as conn:
            query = select(RunRow.booking_uid).where(RunRow.workspace_id == workspace)
            return {str(uid) for uid in conn.execute(query).scalars()}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def spaces(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spaces]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "isolated_pg_url")
    store = IntegrationStore.default(Settings(home=tmp_path, database_url=url))
    for workspace in ("flood", "acme"):
        IntegrationStore(store.engine, store.vault, workspace).add(
            "cal_com", "main", {"base_url": "https://api.cal.com"}, {"api_key": "cal_live_x"}
        )
    svc = Services.for_store(store)
    yield Spaces(svc)
    asyncio.run(svc.aclose())
    reset_engines()


def _flow(workspace: Spaces, space: str, when: str | None = None) -> None:
    trigger: dict[str, object] = {"kinds": ["created"]}
    if when is not None:
        trigger["when"] = when
    WorkflowStore(workspace.svc.store.engine, space).apply(
        {"name": f"{space}-flow", "trigger": trigger, "steps": [get_step("get")]}
    )


def test_a_flood_of_one_workspace_does_not_queue_another_behind_it(spaces: Spaces) -> None:
    _flow(spaces, "flood")
    _flow(spaces, "acme")
    spaces.publish("flood", [f"flood-{n}" for n in range(1200)], RECEIVED)
    spaces.publish("acme", ["acme-1"], RECEIVED + timedelta(minutes=5))  # stored last
    # a slice long enough for any machine: the count is the batch's, not the clock's
    dispatcher = Dispatcher(spaces.svc, batch=500, slice_s=600.0)
    handled = asyncio.run(dispatcher.dispatch_once())
    assert handled == 500
    assert spaces.run_uids("acme") == {"acme-1"}  # in the first batch, not the fourth
    assert spaces.pending("flood") == 1200 - 499
    assert len(spaces.run_uids("flood")) == 499


def test_a_workspace_whose_slice_ran_out_waits_its_turn_in_order(spaces: Spaces) -> None:
    """With no time to match (slice 0), each batch takes one event of each workspace
    that needs matching; the rest stay pending, in order, and the loop does not wait."""
    _flow(spaces, "flood", when="booking.uid.startswith('flood')")
    _flow(spaces, "acme")
    spaces.publish("flood", [f"flood-{n}" for n in range(5)], RECEIVED)
    spaces.publish("acme", ["acme-1", "acme-2"], RECEIVED + timedelta(minutes=5))
    dispatcher = Dispatcher(spaces.svc, batch=500, slice_s=0.0)
    assert asyncio.run(dispatcher.dispatch_once()) == 2
    assert dispatcher.behind
    assert spaces.run_uids("flood") == {"flood-0"}
    assert spaces.run_uids("acme") == {"acme-1"}
    for _ in range(4):
        asyncio.run(dispatcher.dispatch_once())
    assert spaces.run_uids("flood") == {f"flood-{n}" for n in range(5)}
    assert spaces.run_uids("acme") == {"acme-1", "acme-2"}
    assert spaces.pending("flood") == spaces.pending("acme") == 0


def test_the_claim_takes_the_workspaces_in_turn_within_their_room(spaces: Spaces) -> None:
    _flow(spaces, "flood")
    _flow(spaces, "acme")
    spaces.publish("flood", [f"flood-{n}" for n in range(40)], RECEIVED)
    spaces.publish("acme", ["acme-1", "acme-2"], RECEIVED + timedelta(minutes=5))
    dispatcher = Dispatcher(spaces.svc, batch=500)
    asyncio.run(dispatcher.dispatch_once())
    engine = spaces.svc.store.engine
    with write_transaction(engine) as conn:  # all due (explicit past dates), the flood's first
        conn.execute(update(RunRow).where(RunRow.workspace_id == "flood")
                     .values(next_due_at=datetime(2020, 1, 1, tzinfo=UTC)))  # fmt: skip
        conn.execute(update(RunRow).where(RunRow.workspace_id == "acme")
                     .values(next_due_at=datetime(2020, 6, 1, tzinfo=UTC)))  # fmt: skip
    runs = RunStore(engine)
    first = runs.claim_fair("w#1", 6, 60)
    assert [ws for _, ws in first].count("acme") == 2  # due last, taken in the first six
    room = {"flood": 3, "acme": 10}
    second = runs.claim_fair("w#2", 10, 60, room.__getitem__)
    assert [ws for _, ws in second] == ["flood"] * 3  # acme has none left; flood its room
    taken = {run_id for run_id, _ in first + second}
    assert len(taken) == 9
    third = runs.claim_fair("w#3", 100, 60)
    assert len(third) == 33 and not taken & {run_id for run_id, _ in third}


def test_one_workspace_gets_no_more_than_its_share_of_the_runs_in_flight(
    spaces: Spaces,
) -> None:
    from calflow.workflows.scheduler import WORKSPACE_SHARE, Scheduler

    scheduler = Scheduler(spaces.svc, "w", batch=8, in_flight=1)
    assert scheduler.workspace_cap == int(8 * WORKSPACE_SHARE) == 6
    scheduler.taken_by.update(["flood"] * 6)
    assert scheduler._workspace_room("flood") == 0
    assert scheduler._workspace_room("acme") == 6
    scheduler._stored(["flood", "flood"])
    assert scheduler._workspace_room("flood") == 2
    scheduler._stored(["flood"] * 4)
    assert "flood" not in scheduler.taken_by  # nothing in flight: forgotten
