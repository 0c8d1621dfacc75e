"""The engine prunes DBOS's records of finished batches (``calflow.retention``): after a
run's batch finished, ``prune_dbos`` deletes its record and leaves the run's own rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from dbos import DBOS

from calflow.retention import prune_dbos

from .conftest import Harness, booking_event
from .test_engine import get_step


async def test_finished_batches_records_are_pruned_and_runs_stay(any_harness: Harness) -> None:
    h = any_harness
    h.apply({"name": "look-up", "trigger": {"kinds": ["created"]}, "steps": [get_step("get")]})
    h.publish(booking_event())
    (run,) = await h.finished(1)

    def finished() -> int:
        done = DBOS.list_workflows(status=["SUCCESS", "ERROR"], load_input=False,
                                   load_output=False)  # fmt: skip
        return len(done)

    assert await asyncio.to_thread(finished) >= 1
    # not yet a day old: kept
    assert await asyncio.to_thread(prune_dbos, 86400.0) == 0
    later = datetime.now(UTC) + timedelta(days=2)
    pruned = await asyncio.to_thread(lambda: prune_dbos(86400.0, now=later))
    assert pruned >= 1 and await asyncio.to_thread(finished) == 0
    assert h.run(run["id"])["status"] == "succeeded"
