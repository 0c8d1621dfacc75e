"""Retention (issue #16, item 5): what is pruned, what never is, in chunks, by hand or by
the dispatching process; a flood of copies of one delivery is counted, not stored.
Explicit dates only: ``NOW`` is fixed and every row's age is set from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from calflow import retention
from calflow.db.engine import open_engine, write_transaction
from calflow.db.models import (
    EventDeliveryRow,
    EventRow,
    ReplayItemRow,
    ReplayJobRow,
    RunRow,
    RunStepRow,
)
from calflow.events.inbox import KEPT_DELIVERIES, Inbox
from calflow.integrations import IntegrationStore
from calflow.retention import Ages, Pruner, prune
from calflow.settings import Settings
from calflow.workflows.dispatch import Dispatcher
from calflow.workflows.services import Services
from db_fixtures import isolated_pg_url, sqlite_url
from e2e.serve_process import CalflowHome

from ._support import booking_event

pytestmark = pytest.mark.slow

__all__ = ["isolated_pg_url", "sqlite_url"]

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=40)
YOUNG = NOW - timedelta(days=2)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    name = "sqlite_url" if request.param == "sqlite" else "isolated_pg_url"
    url = str(request.getfixturevalue(name))
    yield open_engine(Settings(home=tmp_path, database_url=url))


def _event(inbox: Inbox, uid: str, at: datetime, *, dispatched: bool = True, **over: Any) -> str:
    event = replace(booking_event(booking_uid=uid, received_at=at, occurred_at=at), **over)
    published = inbox.publish(event)
    if dispatched:
        with write_transaction(inbox.engine) as conn:
            conn.execute(update(EventRow).where(EventRow.id == published.event_id)
                         .values(dispatched_at=at))  # fmt: skip
    return published.event_id


def _run(
    engine: Engine, run_id: str, event_id: str, status: str, finished: datetime | None
) -> None:
    with write_transaction(engine) as conn:
        conn.execute(insert(RunRow).values(
            id=run_id, workflow_id="wf_x", workflow_name="x", event_id=event_id, provider="cal_com",
            status=status, created_at=finished or NOW, updated_at=finished or NOW,
            finished_at=finished))  # fmt: skip
        conn.execute(insert(RunStepRow).values(run_id=run_id, step_id="s", status="succeeded",
                                               started_at=finished or NOW))  # fmt: skip


def _job(engine: Engine, job_id: str, status: str, at: datetime, items: int) -> None:
    with write_transaction(engine) as conn:
        conn.execute(insert(ReplayJobRow).values(
            id=job_id, integration_id="int_x", provider="cal_com", target="calflow",
            status=status, created_at=at, updated_at=at))  # fmt: skip
        for n in range(items):
            conn.execute(insert(ReplayItemRow).values(
                job_id=job_id, item_id=f"i{n}", object_id=f"o{n}", kind="created",
                status="sent", updated_at=at))  # fmt: skip


def _ids(engine: Engine, column: Any) -> set[str]:
    with engine.connect() as conn:
        return {str(v) for v in conn.execute(select(column)).scalars()}


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _world(engine: Engine) -> dict[str, str]:
    """Old and young records of every kind, and the old ones that must stay."""
    inbox = Inbox(engine)
    ids = {
        "old_done": _event(inbox, "b-old-done", OLD),
        "old_waiting": _event(inbox, "b-old-waiting", OLD),
        "old_alone": _event(inbox, "b-alone", OLD),
        "old_undispatched": _event(inbox, "b-undispatched", OLD, dispatched=False),
        "young": _event(inbox, "b-young", YOUNG),
    }
    # b-alone's later change: the old one is no longer the booking's latest
    ids["alone_latest"] = _event(inbox, "b-alone", OLD + timedelta(hours=1), kind="rescheduled",
                                 original_type="BOOKING_RESCHEDULED",
                                 start=NOW + timedelta(days=3))  # fmt: skip
    _run(engine, "run-old-done", ids["old_done"], "succeeded", OLD)
    _run(engine, "run-old-failed", ids["old_done"], "failed", OLD)
    _run(engine, "run-old-waiting", ids["old_waiting"], "waiting", None)
    _run(engine, "run-young", ids["young"], "succeeded", YOUNG)
    _job(engine, "rpl-old", "completed", OLD, 3)
    _job(engine, "rpl-old-running", "running", OLD, 2)
    _job(engine, "rpl-young", "failed", YOUNG, 1)
    return ids


def test_prune_takes_what_is_past_its_age_and_keeps_the_rest(engine: Engine) -> None:
    ids = _world(engine)
    counted = prune(engine, Ages(), now=NOW, dry_run=True)
    assert _ids(engine, RunRow.id) == {"run-old-done", "run-old-failed", "run-old-waiting",
                                       "run-young"}  # a dry run deletes nothing  # fmt: skip
    pruned = prune(engine, Ages(), now=NOW)
    assert pruned.to_dict() == counted.to_dict()
    assert _ids(engine, RunRow.id) == {"run-old-waiting", "run-young"}
    assert _count(engine, RunStepRow) == 2
    # the finished runs went first, so their old event went too; a waiting run keeps
    # its event; an undispatched event stays
    assert _ids(engine, EventRow.id) == {ids["old_waiting"], ids["old_undispatched"], ids["young"]}
    assert _ids(engine, ReplayJobRow.id) == {"rpl-old-running", "rpl-young"}
    assert _count(engine, ReplayItemRow) == 3
    assert (pruned.runs, pruned.run_steps, pruned.replay_jobs, pruned.replay_items) == (2, 2, 1, 3)
    # a second pass has nothing left to do
    assert prune(engine, Ages(), now=NOW).total() == 0


def test_an_age_of_forever_keeps_a_kind(engine: Engine) -> None:
    _world(engine)
    ages = Ages(runs=None, events=None, deliveries=None, replays=None)
    assert prune(engine, ages, now=NOW).total() == 0
    only_replays = prune(engine, replace(ages, replays=30 * 86400), now=NOW)
    assert (only_replays.total(), only_replays.replay_jobs) == (4, 1)


def test_a_flood_of_one_delivery_is_counted_not_stored(engine: Engine) -> None:
    inbox = Inbox(engine)
    event = booking_event(booking_uid="b-flood", received_at=YOUNG, occurred_at=YOUNG)
    first = inbox.publish(event)
    for _ in range(99):
        assert inbox.publish(event).duplicate
    stored = inbox.get(first.event_id)
    assert stored["duplicates"] == 99  # every copy counted on the event
    assert len(stored["deliveries"]) == KEPT_DELIVERIES  # the first ones kept as rows
    assert _count(engine, EventDeliveryRow) == KEPT_DELIVERIES == 10


def test_old_duplicate_deliveries_go_and_the_first_stays(engine: Engine) -> None:
    inbox = Inbox(engine)
    event_id = _event(inbox, "b-dup", OLD)
    with write_transaction(engine) as conn:
        for at in (OLD, YOUNG):
            conn.execute(insert(EventDeliveryRow).values(event_id=event_id, source="webhook",
                                                         duplicate=1, received_at=at))  # fmt: skip
    pruned = prune(engine, Ages(runs=None, events=None, replays=None), now=NOW)
    assert pruned.event_deliveries == 1
    with engine.connect() as conn:
        left = conn.execute(select(EventDeliveryRow.duplicate)).scalars().all()
    assert sorted(left) == [0, 1]  # the first arrival, and the young duplicate


def test_prune_works_in_chunks_and_a_pruner_goes_on_where_it_stopped(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "CHUNK", 5)
    inbox = Inbox(engine)
    for n in range(23):
        _run(engine, f"run-{n}", _event(inbox, f"b-{n}", OLD), "succeeded", OLD)
    first = prune(engine, Ages(), now=NOW, max_chunks=2)
    assert (first.runs, first.done) == (10, False)
    clock = [0.0]
    monkeypatch.setattr(retention, "datetime", _Frozen)
    pruner = Pruner(engine, Ages(), every_s=3600, chunks_per_step=2, clock=lambda: clock[0])
    steps = 0
    while pruner.due():
        pruner.step()
        steps += 1
    assert _count(engine, RunRow) == 0 and _count(engine, EventRow) == 0
    assert steps > 1 and not pruner.due()  # the next round is an hour away
    clock[0] = 3600.0
    assert pruner.due()


class _Frozen(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _Frozen:  # type: ignore[override]
        return cls.fromtimestamp(NOW.timestamp(), tz)


def test_calflow_prune_by_hand(tmp_path: Path) -> None:
    home = CalflowHome(tmp_path / "home")
    engine = home.store().engine
    with write_transaction(engine) as conn:  # an hour-old finished run, from the clock now
        conn.execute(insert(RunRow).values(
            id="run-hour", workflow_id="wf", workflow_name="x", event_id="evt_x",
            provider="cal_com", status="succeeded",
            finished_at=datetime.now(UTC) - timedelta(hours=1)))  # fmt: skip
    kept = home.json("prune")
    assert kept["runs"] == 0 and kept["dry_run"] is False
    counted = home.json("prune", "--older-than", "30m", "--dry-run")
    assert counted["runs"] == 1 and _count(engine, RunRow) == 1
    assert home.json("prune", "--older-than", "30m")["runs"] == 1
    assert _count(engine, RunRow) == 0
    bad = home.run("prune", "--older-than", "a while")
    assert bad.code == 2 and "--older-than" in bad.err and "24h" in bad.err, bad.err
    table = home.run("prune", "--dry-run")
    assert table.code == 0 and "would prune" in table.stdout, table.stdout
    assert json.loads(home.run("prune", "--json").stdout)["events"] == 0


async def test_the_dispatching_process_prunes_when_due(tmp_path: Path) -> None:
    store = IntegrationStore.default(Settings(home=tmp_path))
    inbox = Inbox(store.engine)
    old = datetime.now(UTC) - timedelta(days=40)  # ages count back from the clock
    _run(store.engine, "run-old", _event(inbox, "b-old", old), "succeeded", old)
    clock = [0.0]
    pruner = Pruner(store.engine, Ages(), every_s=60, clock=lambda: clock[0])
    svc = Services.for_store(store)
    try:
        dispatcher = Dispatcher(svc, pruner=pruner)
        await dispatcher.dispatch_once()
        assert _count(store.engine, RunRow) == 0 and _count(store.engine, EventRow) == 0
        assert pruner.last is not None and pruner.last.runs == 1
        _run(store.engine, "run-old-2", _event(inbox, "b-old-2", old), "succeeded", old)
        await dispatcher.dispatch_once()  # not due again for a minute
        assert _count(store.engine, RunRow) == 1
        clock[0] = 61.0
        await dispatcher.dispatch_once()
        assert _count(store.engine, RunRow) == 0
    finally:
        await svc.aclose()
